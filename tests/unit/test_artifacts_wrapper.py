"""flinkops.artifacts' wrapper-module builds (Kubernetes, etcd) with a stand-in `go`: the generated go.mod (the
upstream ``go``/``godebug`` lines, staging modules pinned at v0.Y.Z, other local replaces left alone), the
version stamp, the environment, the cache, and the errors a user sees. The real build is exercised by
``tests/kubernetes``."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flinkops.artifacts import ArtifactError, etcd_binary, go_wrapper_binaries, kubernetes_binaries

# Serves `go mod download -json` from FAKE_MODS/<module with / as _>@<version>.mod, records the wrapper's go.mod
# at `go get`, and "builds" `go build -o OUT PKG` into a shell script.
FAKE_GO = """
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
record = {"args": args, "env": {k: os.environ.get(k) for k in ("GOTOOLCHAIN", "CGO_ENABLED", "GOWORK", "GOFLAGS")}}
if args[:1] == ["get"]:
    record["go.mod"] = Path("go.mod").read_text()
with open(os.environ["FAKE_CALLS"], "a") as calls:
    calls.write(json.dumps(record) + "\\n")
if args[:2] == ["env", "GOVERSION"]:
    print(os.environ.get("FAKE_GO_VERSION", "go1.26.1"))
elif args[:3] == ["mod", "download", "-json"]:
    module, version = args[3].split("@")
    mod = Path(os.environ["FAKE_MODS"]) / (module.replace("/", "_") + "@" + version + ".mod")
    if not mod.exists():
        error = module + "@" + version + ": invalid version: unknown revision " + version
        print(json.dumps({"Path": module, "Version": version, "Error": error}))
        sys.exit(1)
    print(json.dumps({"Path": module, "Version": version, "GoMod": str(mod)}))
elif args[:1] == ["get"]:
    pass
elif args[:1] == ["build"]:
    if os.environ.get("FAKE_GO_FAIL"):
        print("go: go.etcd.io/etcd/server/v3@v3.6.16 requires go >= 1.26.0 (running go 1.25.3; GOTOOLCHAIN=local)")
        sys.exit(1)
    out = Path(args[args.index("-o") + 1])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("#!/bin/sh\\necho built\\n")
    out.chmod(0o755)
"""

KUBERNETES_GO_MOD = """\
// This is a generated file. Do not edit directly.

module k8s.io/kubernetes

go 1.25.0

godebug default=go1.25

require (
\tgithub.com/kylelemons/godebug v1.1.0 // indirect
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
)

replace k8s.io/kubectl => ./staging/src/k8s.io/kubectl
"""

ETCD_GO_MOD = """\
module go.etcd.io/etcd/server/v3

go 1.26.0

godebug (
\tdefault=go1.26
\tx509negativeserial=1 // old certificates
)

require go.etcd.io/etcd/api/v3 v3.6.16

replace (
\tgo.etcd.io/etcd/api/v3 => ../api
\tgo.etcd.io/etcd/client/v3 v3.6.16 => ../client/v3
)
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    bin_dir, mods = tmp_path / "bin", tmp_path / "mods"
    bin_dir.mkdir()
    mods.mkdir()
    go = bin_dir / "go"
    go.write_text(f"#!{sys.executable}\n{FAKE_GO}")
    go.chmod(go.stat().st_mode | stat.S_IXUSR)
    (mods / "k8s.io_kubernetes@v1.35.4.mod").write_text(KUBERNETES_GO_MOD)
    (mods / "go.etcd.io_etcd_server_v3@v3.6.16.mod").write_text(ETCD_GO_MOD)
    monkeypatch.setenv("FLINKOPS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FAKE_MODS", str(mods))
    monkeypatch.setenv("FAKE_CALLS", str(tmp_path / "calls.jsonl"))
    monkeypatch.setenv("GOFLAGS", "-buildvcs=false -mod=vendor")
    monkeypatch.setenv("PATH", str(bin_dir))
    yield tmp_path


def calls(root: Path) -> list[dict[str, object]]:
    path = root / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_kubernetes_wrapper_pins_staging_modules_and_stamps_the_version(env: Path) -> None:
    messages: list[str] = []
    built = kubernetes_binaries("v1.35.4", ("kube-apiserver", "kube-controller-manager"), progress=messages.append)
    cache = env / "cache" / "go"
    assert built == {
        "kube-apiserver": cache / "kube-apiserver-v1.35.4" / "kube-apiserver",
        "kube-controller-manager": cache / "kube-controller-manager-v1.35.4" / "kube-controller-manager",
    }
    assert all(os.access(path, os.X_OK) for path in built.values())

    get = next(c for c in calls(env) if c["args"][0] == "get")  # type: ignore[index]
    go_mod = str(get["go.mod"])
    assert "\ngo 1.25.0\n" in go_mod
    assert "\tdefault=go1.25\n" in go_mod
    assert "require k8s.io/kubernetes v1.35.4" in go_mod
    for module in ("k8s.io/api", "k8s.io/client-go", "k8s.io/kubectl"):
        assert f"\t{module} => {module} v0.35.4\n" in go_mod
    assert "./staging" not in go_mod and "kylelemons" not in go_mod
    assert get["args"] == [
        "get",
        "k8s.io/kubernetes/cmd/kube-apiserver@v1.35.4",
        "k8s.io/kubernetes/cmd/kube-controller-manager@v1.35.4",
    ]
    assert get["env"] == {
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
        "GOWORK": "off",
        "GOFLAGS": "-buildvcs=false -mod=mod",
    }

    builds = [c["args"] for c in calls(env) if c["args"][0] == "build"]  # type: ignore[index]
    assert [b[-1] for b in builds] == [
        "k8s.io/kubernetes/cmd/kube-apiserver",
        "k8s.io/kubernetes/cmd/kube-controller-manager",
    ]  # type: ignore[index]
    ldflags = next(a for a in builds[0] if str(a).startswith("-ldflags="))  # type: ignore[union-attr]
    assert "-X k8s.io/component-base/version.gitVersion=v1.35.4" in ldflags
    assert "-X k8s.io/component-base/version.gitMinor=35" in ldflags
    assert "-X k8s.io/client-go/pkg/version.gitVersion=v1.35.4" in ldflags
    assert any("building kube-apiserver" in m and "cached" in m for m in messages)
    assert any(m.startswith("built kube-controller-manager") for m in messages)

    count = len(calls(env))
    assert kubernetes_binaries("v1.35.4", ("kube-apiserver", "kube-controller-manager")) == built
    assert len(calls(env)) == count  # cached: go did not run


def test_etcd_wrapper_keeps_upstream_godebug_and_ignores_local_replaces(env: Path) -> None:
    binary = etcd_binary("v3.6.16")
    assert binary == env / "cache" / "go" / "etcd-v3.6.16" / "etcd"
    get = next(c for c in calls(env) if c["args"][0] == "get")  # type: ignore[index]
    go_mod = str(get["go.mod"])
    assert "\ngo 1.26.0\n" in go_mod
    assert "\tdefault=go1.26\n\tx509negativeserial=1\n" in go_mod
    assert "replace" not in go_mod
    build = next(c["args"] for c in calls(env) if c["args"][0] == "build")  # type: ignore[index]
    assert build[-3:] == ["-o", build[-2], "go.etcd.io/etcd/server/v3"]  # type: ignore[index]
    assert str(build[-2]).endswith("/bin/etcd")  # type: ignore[index]


def test_build_tags_reach_go_build_and_get_a_cache_entry_of_their_own(env: Path) -> None:
    untagged = go_wrapper_binaries("go.etcd.io/etcd/server/v3", "v3.6.16", {"etcd": "go.etcd.io/etcd/server/v3"})
    tagged = go_wrapper_binaries(
        "go.etcd.io/etcd/server/v3", "v3.6.16", {"etcd": "go.etcd.io/etcd/server/v3"}, tags=("b_tag", "a.tag")
    )
    assert untagged["etcd"] == env / "cache" / "go" / "etcd-v3.6.16" / "etcd"
    assert tagged["etcd"] == env / "cache" / "go" / "etcd-v3.6.16+a.tag+b_tag" / "etcd"  # not the untagged binary
    builds = [c["args"] for c in calls(env) if c["args"][0] == "build"]  # type: ignore[index]
    assert not any(str(a).startswith("-tags") for a in builds[0])  # type: ignore[union-attr]
    assert "-tags=a.tag,b_tag" in builds[1]  # type: ignore[operator]
    with pytest.raises(ArtifactError, match="bad Go build tags"):
        go_wrapper_binaries("go.etcd.io/etcd/server/v3", "v3.6.16", {"etcd": "x"}, tags=("a b",))


def test_wrapper_errors_name_the_cause(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ArtifactError, match=r"is the version published\?.*unknown revision v1\.35\.99"):
        kubernetes_binaries("v1.35.99")
    with pytest.raises(ArtifactError, match="bad Kubernetes version"):
        kubernetes_binaries("1.35.4")
    with pytest.raises(ArtifactError, match="bad Go wrapper build request"):
        go_wrapper_binaries("k8s.io/kubernetes", "v1.35.4", {"a/b": "k8s.io/kubernetes/cmd/x"})
    monkeypatch.setenv("FAKE_GO_FAIL", "1")
    with pytest.raises(ArtifactError, match="needs a newer Go") as caught:
        etcd_binary("v3.6.16")
    assert "requires go >= 1.26.0" in str(caught.value)
    assert not (env / "cache" / "go" / "etcd-v3.6.16" / "etcd").exists()
    monkeypatch.delenv("FAKE_GO_FAIL")
    gets = sum(c["args"][0] == "get" for c in calls(env))  # type: ignore[index]
    monkeypatch.setenv("FAKE_GO_VERSION", "go1.25.3")
    with pytest.raises(
        ArtifactError, match=r"needs Go 1\.26\.0 or newer \(the go line of its go.mod\); .* is Go 1\.25"
    ):
        etcd_binary("v3.6.16")
    with pytest.raises(ArtifactError, match=r"needs Go 1\.26 or newer; .* is Go 1\.25"):
        etcd_binary("v3.6.16", min_go=(1, 26))
    assert sum(c["args"][0] == "get" for c in calls(env)) == gets  # type: ignore[index]  (stopped before building)
    monkeypatch.setenv("PATH", str(env / "nothing-here"))
    with pytest.raises(ArtifactError, match=r"needs the Go toolchain \(1\.26 or newer\)"):
        etcd_binary("v3.6.16", min_go=(1, 26))
