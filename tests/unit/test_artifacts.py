"""flinkops.artifacts with stand-in `mvn` and `go` executables: where things are cached, that a cached artifact
is returned without running the tool, fallbacks, the complete-marker of a classpath, and the errors a user sees
when a tool is missing or a coordinate does not exist."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flinkops.artifacts import ArtifactError, cache_dir, go_binary, maven_classpath, maven_jar, parse_coordinate
from flinkops.errors import FlinkopsError

# A stand-in for `mvn`: records its argv, then copies "artifacts" from FAKE_REPO (files named
# group:artifact:version[:type:classifier]) or fails as Maven does for a missing one.
FAKE_MVN = """
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
with open(os.environ["FAKE_CALLS"], "a") as calls:
    calls.write(json.dumps({"tool": "mvn", "args": args, "cwd": os.getcwd()}) + "\\n")
props = dict(a[2:].split("=", 1) for a in args if a.startswith("-D") and "=" in a)
out = Path(props["outputDirectory"])
repo = Path(os.environ["FAKE_REPO"])
if "dependency:copy" in args:
    coordinate = props["artifact"]
    if not (repo / coordinate).exists():
        print("[ERROR] Failed to execute goal: Could not find artifact " + coordinate)
        print("[ERROR] ")
        print("[ERROR] Try downloading the file manually from the project website.")
        sys.exit(1)
    g, a, v = coordinate.split(":")[:3]
    out.mkdir(parents=True)
    (out / f"{a}-{v}.jar").write_text(coordinate)
elif "dependency:copy-dependencies" in args:
    pom = Path("pom.xml").read_text()
    if "broken" in pom:
        print("[ERROR] Could not resolve dependencies for project flinkops.local")
        sys.exit(1)
    out.mkdir(parents=True)
    for name in ("lib-a-1.jar", "lib-b-2.jar"):
        (out / name).write_text(pom)
"""

FAKE_GO = """
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
with open(os.environ["FAKE_CALLS"], "a") as calls:
    env = {k: os.environ.get(k) for k in ("GOTOOLCHAIN", "CGO_ENABLED", "GOBIN")}
    calls.write(json.dumps({"tool": "go", "args": args, "env": env}) + "\\n")
if args[:2] == ["env", "GOVERSION"]:
    print(os.environ.get("FAKE_GO_VERSION", "go1.26.1"))
    sys.exit(0)
if args[0] == "install":
    if os.environ.get("FAKE_GO_FAIL"):
        print("go: go.mod requires go >= 1.99.0 (running go 1.26.1; GOTOOLCHAIN=local)")
        sys.exit(1)
    module = args[-1].split("@")[0]
    binary = Path(os.environ["GOBIN"]) / module.rsplit("/", 1)[-1]
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_text("#!/bin/sh\\necho built\\n")
    binary.chmod(0o755)
"""


def _script(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private cache, a fake repository, and a PATH that holds only the stand-in tools."""
    bin_dir, repo = tmp_path / "bin", tmp_path / "repo"
    bin_dir.mkdir()
    repo.mkdir()
    _script(bin_dir, "mvn", FAKE_MVN)
    _script(bin_dir, "go", FAKE_GO)
    monkeypatch.setenv("FLINKOPS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FAKE_REPO", str(repo))
    monkeypatch.setenv("FAKE_CALLS", str(tmp_path / "calls.jsonl"))
    monkeypatch.setenv("PATH", str(bin_dir))
    yield tmp_path


def calls(root: Path) -> list[dict[str, object]]:
    path = root / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FLINKOPS_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_dir() == (Path.home() / ".cache" / "flinkops").resolve()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "flinkops"
    monkeypatch.setenv("FLINKOPS_CACHE", str(tmp_path / "explicit"))
    assert cache_dir() == tmp_path / "explicit"


def test_parse_coordinate() -> None:
    assert parse_coordinate("g:a:1") == ("g", "a", "1", "jar", None)
    assert parse_coordinate("g:a:1:jar:tests") == ("g", "a", "1", "jar", "tests")
    for bad in ("g:a", "g::1", "a:b:c:d:e:f"):
        with pytest.raises(ArtifactError, match="bad Maven coordinate"):
            parse_coordinate(bad)


def test_artifact_error_is_a_flinkops_error() -> None:
    assert issubclass(ArtifactError, FlinkopsError)


def test_maven_jar_is_fetched_once_into_the_cache(env: Path) -> None:
    (env / "repo" / "org.example:thing:1.0").write_text("x")
    messages: list[str] = []
    jar = maven_jar("org.example", "thing", "1.0", progress=messages.append)
    assert jar == env / "cache" / "maven" / "org.example" / "thing" / "1.0" / "thing-1.0.jar"
    assert jar.read_text() == "org.example:thing:1.0"
    assert any("fetching org.example:thing:1.0" in m and "cached" in m for m in messages)
    (mvn_call,) = calls(env)
    assert "-B" in mvn_call["args"]  # type: ignore[operator]
    assert not Path(str(mvn_call["cwd"]), "pom.xml").exists()  # ran where no pom.xml is picked up
    assert maven_jar("org.example", "thing", "1.0") == jar
    assert len(calls(env)) == 1  # the second call did not run Maven
    assert not [p for p in jar.parent.parent.iterdir() if p.name.startswith(".tmp-")]


def test_maven_jar_falls_back_in_order_and_prefers_a_cached_fallback(env: Path) -> None:
    (env / "repo" / "org.example:plugin:2.2.0").write_text("x")
    jar = maven_jar("org.example", "plugin", "2.2.1", fallback_versions=["2.2.0"])
    assert jar.name == "plugin-2.2.0.jar"
    tried = [c["args"] for c in calls(env)]
    assert ["-Dartifact=org.example:plugin:2.2.1" in a for a in tried] == [True, False]  # type: ignore[operator]
    assert maven_jar("org.example", "plugin", "2.2.1", fallback_versions=["2.2.0"]) == jar
    assert len(calls(env)) == 2


def test_maven_jar_with_classifier(env: Path) -> None:
    (env / "repo" / "org.gaul:s3proxy:3.3.0:jar:jar-with-dependencies").write_text("x")
    jar = maven_jar("org.gaul", "s3proxy", "3.3.0", classifier="jar-with-dependencies")
    assert jar.name == "s3proxy-3.3.0-jar-with-dependencies.jar"


def test_maven_jar_not_found_names_every_coordinate_and_what_maven_said(env: Path) -> None:
    with pytest.raises(ArtifactError) as caught:
        maven_jar("org.example", "gone", "1", fallback_versions=["0.9"])
    text = str(caught.value)
    assert "org.example:gone:1, org.example:gone:0.9" in text
    assert "Maven" in text and "must be installed" in text
    assert "Could not find artifact org.example:gone:1" in text
    assert "Try downloading the file manually" not in text  # Maven's boilerplate is left out


def test_maven_missing_is_a_clear_error(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(env / "nothing-here"))
    with pytest.raises(ArtifactError, match=r"Maven \(`mvn`.*must be installed"):
        maven_jar("org.example", "thing", "1.0")


def test_maven_classpath_is_complete_or_absent(env: Path) -> None:
    coordinates = ["org.example:server:1.0", "org.example:binding:2.0"]
    lib = maven_classpath("server-1.0", coordinates)
    assert lib == env / "cache" / "server-1.0" / "lib"
    assert sorted(p.name for p in lib.iterdir()) == ["lib-a-1.jar", "lib-b-2.jar"]
    pom = (lib / "lib-a-1.jar").read_text()
    assert "<artifactId>server</artifactId><version>1.0</version>" in pom
    marker = json.loads((lib.parent / "complete.json").read_text())
    assert marker["coordinates"] == coordinates
    (mvn_call,) = calls(env)
    assert "dependency:copy-dependencies" in mvn_call["args"]  # type: ignore[operator]
    assert "-DincludeScope=runtime" in mvn_call["args"]  # type: ignore[operator]

    assert maven_classpath("server-1.0", coordinates) == lib
    assert len(calls(env)) == 1  # cached

    # Other coordinates under the same name are fetched anew; a failed fetch leaves the complete old
    # directory and its marker as they were (the new one is built aside and swapped in only when whole).
    with pytest.raises(ArtifactError, match=r"could not fetch the server-1\.0 classpath"):
        maven_classpath("server-1.0", ["org.example:broken:1"])
    assert json.loads((lib.parent / "complete.json").read_text())["coordinates"] == coordinates
    assert sorted(p.name for p in lib.iterdir()) == ["lib-a-1.jar", "lib-b-2.jar"]
    assert maven_classpath("server-1.0", coordinates) == lib
    assert len(calls(env)) == 2
    other = maven_classpath("server-1.0", ["org.example:server:1.1"])
    assert other == lib and "<version>1.1</version>" in (lib / "lib-a-1.jar").read_text()
    assert not [p for p in lib.parent.iterdir() if p.name.startswith((".tmp-", ".old-"))]


def test_maven_classpath_rejects_bad_names(env: Path) -> None:
    with pytest.raises(ArtifactError, match="bad classpath name"):
        maven_classpath("../escape", ["g:a:1"])
    with pytest.raises(ArtifactError, match="no coordinates"):
        maven_classpath("empty", [])


def test_go_binary_is_built_once_with_the_local_toolchain(env: Path) -> None:
    messages: list[str] = []
    binary = go_binary("github.com/example/tool", "v1.2.3", "tool", progress=messages.append)
    assert binary == env / "cache" / "go" / "tool-v1.2.3" / "tool"
    assert os.access(binary, os.X_OK)
    install = next(c for c in calls(env) if c["args"][0] == "install")  # type: ignore[index]
    assert install["args"] == ["install", "-trimpath", "github.com/example/tool@v1.2.3"]
    assert install["env"]["GOTOOLCHAIN"] == "local"  # type: ignore[index]
    assert install["env"]["CGO_ENABLED"] == "0"  # type: ignore[index]
    assert any("building tool" in m and "cached" in m for m in messages)
    count = len(calls(env))
    assert go_binary("github.com/example/tool", "v1.2.3", "tool") == binary
    assert len(calls(env)) == count  # cached: go did not run


def test_go_missing_or_too_old_or_failing(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_GO_VERSION", "go1.19.4")
    with pytest.raises(ArtifactError, match=r"needs Go 1\.21 or newer; .* is Go 1\.19"):
        go_binary("github.com/example/tool", "v1", "tool")
    monkeypatch.setenv("FAKE_GO_VERSION", "go1.26.1")
    monkeypatch.setenv("FAKE_GO_FAIL", "1")
    with pytest.raises(ArtifactError, match="needs a newer Go") as caught:
        go_binary("github.com/example/tool", "v1", "tool")
    assert "requires go >= 1.99.0" in str(caught.value)
    monkeypatch.setenv("PATH", str(env / "nothing-here"))
    with pytest.raises(ArtifactError, match="needs the Go toolchain"):
        go_binary("github.com/example/tool", "v1", "tool")


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("https://proxy.invalid,direct", "https://proxy.invalid"),
        ("https://a.invalid|https://b.invalid,direct", "https://a.invalid,https://b.invalid"),
        ("direct", "direct"),  # no proxy at all: left as it is (the build then says what it could not fetch)
        ("off", "off"),
    ],
)
def test_go_commands_ask_only_the_module_proxies(monkeypatch: pytest.MonkeyPatch, given: str, used: str) -> None:
    """`direct` would send a module the proxy lacks to its source host: a lookup and a connection off the machine."""
    from flinkops.artifacts.go import go_environment

    monkeypatch.setenv("GOPROXY", given)
    env = go_environment()
    assert env["GOPROXY"] == used and env["GOTOOLCHAIN"] == "local"
