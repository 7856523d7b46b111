"""Binaries built with the user's own Go toolchain, once, and cached: ``go install`` or a generated wrapper module.

:func:`go_binary` runs ``go install -trimpath module@version`` (static, local toolchain only) into
``cache_dir()/go/<binary>-<version>/``. :func:`go_wrapper_binaries` builds main packages of a module that
``go install`` rejects (its go.mod has replace directives) through a wrapper module that requires it, copies
its ``go`` and ``godebug`` lines and pins its local replaces to published versions; :func:`kubernetes_binaries`
and :func:`etcd_binary` are its two uses. :func:`go_program` builds a small program whose ``main`` is
flinkops' own source (a CoreDNS with only the plugins the dev node needs, the pause program of its pods).
``GOPROXY``, ``GOFLAGS`` and the user's module and build caches apply; ``GOTOOLCHAIN=local`` keeps Go from
fetching a toolchain behind the user's back.

Called by: the dev services (Kubernetes control plane, etcd, S3, Helm) through ``flinkops.artifacts``.
Invariants: a returned path is an executable that landed by rename; a cached binary is returned without
running Go; one lock per binary (``go_binary``) or per module and version (wrapper builds); a Go that is too
old is reported before anything is fetched (``min_go``) or right after the module's go.mod is read.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from flinkops.artifacts.cache import (
    ArtifactError,
    Progress,
    cache_dir,
    executable,
    file_lock,
    run_tool,
    say,
    scratch,
)

__all__ = ["etcd_binary", "go_binary", "go_environment", "go_program", "go_wrapper_binaries", "kubernetes_binaries"]

# `go install` needs Go 1.16+ for module@version; GOTOOLCHAIN=local (which stops Go from fetching a newer
# toolchain behind the user's back) means something only from Go 1.21 on.
_MIN_GO = (1, 21)


def go_binary(module: str, version: str, binary: str, *, progress: Progress | None = None) -> Path:
    """A binary built by ``go install -trimpath module@version`` (static: ``CGO_ENABLED=0``; with the local
    Go only: ``GOTOOLCHAIN=local``), cached at ``cache_dir()/go/<binary>-<version>/<binary>``. The Go build and
    module caches are the user's usual ones, so a rebuild after a cache wipe is fast."""
    if not module or "@" in module or not version or "/" in binary or not binary:
        raise ArtifactError(f"bad Go install request: module={module!r} version={version!r} binary={binary!r}")
    target = cache_dir() / "go" / f"{binary}-{version}" / binary
    if executable(target):
        return target
    go, _ = _require_go(binary, f"{module}@{version}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.parent / ".lock"):
        if executable(target):
            return target
        say(
            progress,
            f"building {binary} from {module}@{version} with Go (once: this can take several minutes and a few GB "
            f"of memory; cached in {target.parent} for next time)",
        )
        started = time.monotonic()
        with scratch(target.parent) as tmp:
            env = dict(go_environment(), CGO_ENABLED="0", GOBIN=str(tmp / "bin"))
            _run_go(
                [go, "install", "-trimpath", f"{module}@{version}"],
                cwd=tmp,  # outside any go.mod of the caller's
                env=env,
                log_name=f"go-{binary}-{version}",
                what=f"building {binary}",
                failed=f"`go install {module}@{version}`",
                progress=progress,
            )
            built = tmp / "bin" / binary
            if not executable(built):
                produced = sorted(p.name for p in (tmp / "bin").glob("*"))
                raise ArtifactError(
                    f"`go install {module}@{version}` produced {produced or 'nothing'}, not a binary named {binary}"
                )
            os.replace(built, target)
        say(progress, f"built {binary} in {time.monotonic() - started:.0f}s")
    return target


def go_wrapper_binaries(
    module: str,
    version: str,
    binaries: Mapping[str, str],
    *,
    pin_local_replaces: Callable[[str], str | None] | None = None,
    ldflags: Sequence[str] = (),
    tags: Sequence[str] = (),
    min_go: tuple[int, int] = _MIN_GO,
    progress: Progress | None = None,
) -> dict[str, Path]:
    """Binaries built from main packages of ``module@version`` through a generated *wrapper module*: for modules
    that ``go install`` rejects because their go.mod has replace directives (Kubernetes, etcd).

    The wrapper's go.mod requires ``module@version`` and copies its ``go`` and ``godebug`` lines, so the binaries
    get upstream's language and GODEBUG defaults. Go ignores the replace directives of a dependency, so a module
    that points its own sub-modules at local directories (``k8s.io/api => ./staging/src/k8s.io/api``) needs
    them pinned to published versions: ``pin_local_replaces(path)`` gives the version for each such path (None
    leaves it alone). ``binaries`` maps each binary's name to its main package; each is cached at
    ``cache_dir()/go/<name>-<version>/<name>`` (``<name>-<version>+<tag>+.../<name>`` when built with build
    ``tags``, which leave out parts of a big program: Prometheus' service discoveries, say). Built one after the
    other (one big link at a time) with ``CGO_ENABLED=0 GOTOOLCHAIN=local GOWORK=off -trimpath -ldflags '-s -w
    <ldflags>'`` (and ``-tags``); the user's GOMODCACHE, GOCACHE, GOPROXY and other GOFLAGS apply, so a rebuild
    after a cache wipe mostly links. ``min_go`` is checked
    before anything is fetched (say it when known: a missing Go then names the right release), the ``go``
    directive of ``module``'s go.mod once that is fetched.
    """
    if (
        not module
        or "@" in module
        or not _GO_VERSION.fullmatch(version)
        or not binaries
        or any(not name or "/" in name or not package for name, package in binaries.items())
    ):
        raise ArtifactError(
            f"bad Go wrapper build request: module={module!r} version={version!r} binaries={dict(binaries)!r}"
        )
    if any(not re.fullmatch(r"[A-Za-z0-9_.]+", tag) for tag in tags):
        raise ArtifactError(f"bad Go build tags {list(tags)!r}: each is letters, digits, '_' or '.'")
    root = cache_dir() / "go"
    flavour = "".join(f"+{tag}" for tag in sorted(tags))
    targets = {name: root / f"{name}-{version}{flavour}" / name for name in binaries}
    if all(executable(path) for path in targets.values()):
        return targets
    go, go_version = _require_go(", ".join(binaries), f"{module}@{version}", min_go)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", module)
    with file_lock(root / f".{slug}-{version}.lock"):
        missing = {name: package for name, package in binaries.items() if not executable(targets[name])}
        if not missing:  # another process built them while we waited
            return targets
        say(
            progress,
            f"building {', '.join(missing)} {version} from {module} with Go (once: several minutes and a few GB "
            f"of memory; cached in {root} for next time)",
        )
        with scratch(root) as tmp:
            env = _wrapper_env()
            upstream = _upstream_go_mod(go, module, version, env, tmp)
            _check_go_directive(go, go_version, module, version, upstream)
            (tmp / "go.mod").write_text(_wrapper_go_mod(module, version, upstream, pin_local_replaces))
            _run_go(
                [go, "get", *(f"{package}@{version}" for package in missing.values())],
                cwd=tmp,
                env=env,
                log_name=f"go-{slug}-{version}-get",
                what=f"resolving the dependencies of {module}@{version}",
                failed=f"resolving the dependencies of {module}@{version} in a wrapper module",
                progress=progress,
            )
            flags = " ".join(["-s", "-w", *ldflags])
            tagged = [f"-tags={','.join(sorted(tags))}"] if tags else []
            for name, package in missing.items():
                say(progress, f"building {name} {version} ... (once, several minutes)")
                started = time.monotonic()
                built = tmp / "bin" / name
                _run_go(
                    [go, "build", "-trimpath", *tagged, f"-ldflags={flags}", "-o", str(built), package],
                    cwd=tmp,
                    env=env,
                    log_name=f"go-{name}-{version}",
                    what=f"building {name}",
                    failed=f"building {name} from {package}@{version}",
                    progress=progress,
                )
                if not executable(built):
                    raise ArtifactError(f"`go build {package}` (at {version}) produced no executable {name}")
                targets[name].parent.mkdir(parents=True, exist_ok=True)
                os.replace(built, targets[name])
                say(progress, f"built {name} in {time.monotonic() - started:.0f}s")
    return targets


def kubernetes_binaries(
    version: str,
    names: Sequence[str] = ("kube-apiserver", "kube-controller-manager"),
    *,
    min_go: tuple[int, int] = _MIN_GO,
    progress: Progress | None = None,
) -> dict[str, Path]:
    """Kubernetes server binaries (``kube-apiserver``, ``kube-controller-manager``, ``kube-scheduler``, ...) of
    release ``version`` (``v1.Y.Z``), built from ``k8s.io/kubernetes/cmd/<name>`` with the staging modules
    (``k8s.io/api``, ``k8s.io/client-go``, ...) pinned at their published ``v0.Y.Z`` and the version stamped in
    (without it they report ``v0.0.0-master``, which clients parse)."""
    match = re.fullmatch(r"v1\.(\d+)\.(\d+)", version)
    if match is None:
        raise ArtifactError(f"bad Kubernetes version {version!r}: expected a release such as v1.35.4")
    minor = match.group(1)
    staging = f"v0.{minor}.{match.group(2)}"
    stamps = {
        "k8s.io/component-base/version": {"gitVersion": version, "gitMajor": "1", "gitMinor": minor},
        "k8s.io/client-go/pkg/version": {"gitVersion": version, "gitMajor": "1", "gitMinor": minor},
    }
    ldflags = [
        f"-X {package}.{key}={value}"
        for package, values in stamps.items()
        for key, value in {**values, "gitTreeState": "clean"}.items()
    ]
    return go_wrapper_binaries(
        "k8s.io/kubernetes",
        version,
        {name: f"k8s.io/kubernetes/cmd/{name}" for name in names},
        pin_local_replaces=lambda path: staging if path.startswith("k8s.io/") else None,
        ldflags=ldflags,
        min_go=min_go,
        progress=progress,
    )


def etcd_binary(version: str, *, min_go: tuple[int, int] = _MIN_GO, progress: Progress | None = None) -> Path:
    """The etcd server of release ``version`` (``v3.Y.Z``), built from ``go.etcd.io/etcd/server/v3`` (whose
    go.mod requires published versions of etcd's other modules, so their local replaces can be ignored)."""
    if not re.fullmatch(r"v3\.\d+\.\d+", version):
        raise ArtifactError(f"bad etcd version {version!r}: expected a release such as v3.6.16")
    module = "go.etcd.io/etcd/server/v3"
    return go_wrapper_binaries(module, version, {"etcd": module}, min_go=min_go, progress=progress)["etcd"]


def go_program(
    name: str,
    sources: Mapping[str, str],
    *,
    requires: Mapping[str, str] = {},  # read only
    go_directive: str = "1.21",
    ldflags: Sequence[str] = (),
    min_go: tuple[int, int] = _MIN_GO,
    progress: Progress | None = None,
) -> Path:
    """A binary built from flinkops' own Go ``sources`` (file name -> text, package main) in a generated module
    that requires ``requires`` (module path -> version; their dependencies are resolved by ``go mod tidy``
    through the user's GOPROXY). Cached at ``cache_dir()/go/<name>-<digest>/<name>``, the digest covering the
    sources, requirements and flags, so an edit rebuilds and nothing else does. Static, local toolchain only."""
    if not name or "/" in name or not sources or any("/" in file or not file.endswith(".go") for file in sources):
        raise ArtifactError(f"bad Go program request: name={name!r} sources={sorted(sources)!r}")
    identity = json.dumps(
        {"sources": dict(sources), "requires": dict(requires), "go": go_directive, "ldflags": list(ldflags)},
        sort_keys=True,
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    target = cache_dir() / "go" / f"{name}-{digest}" / name
    if executable(target):
        return target
    go, _ = _require_go(name, f"flinkops' {name} sources", min_go)
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.parent / ".lock"):
        if executable(target):
            return target
        what = f"{name} (with {', '.join(f'{m}@{v}' for m, v in requires.items())})" if requires else name
        say(progress, f"building {what} with Go (once; cached in {target.parent} for next time)")
        started = time.monotonic()
        with scratch(target.parent) as tmp:
            lines = [f"module flinkops.local/{name}", "", f"go {go_directive}", ""]
            lines += [f"require {module} {version}" for module, version in sorted(requires.items())]
            (tmp / "go.mod").write_text("\n".join(lines) + "\n")
            for file, text in sources.items():
                (tmp / file).write_text(text)
            env = _wrapper_env()
            if requires:
                _run_go(
                    [go, "mod", "tidy"],
                    cwd=tmp,
                    env=env,
                    log_name=f"go-{name}-tidy",
                    what=f"resolving the dependencies of {name}",
                    failed=f"resolving the dependencies of {name}",
                    progress=progress,
                )
            built = tmp / "bin" / name
            _run_go(
                [go, "build", "-trimpath", f"-ldflags={' '.join(['-s', '-w', *ldflags])}", "-o", str(built), "."],
                cwd=tmp,
                env=env,
                log_name=f"go-{name}",
                what=f"building {name}",
                failed=f"building {name}",
                progress=progress,
            )
            if not executable(built):
                raise ArtifactError(f"`go build` of {name} produced no executable")
            os.replace(built, target)
        say(progress, f"built {name} in {time.monotonic() - started:.0f}s")
    return target


def go_environment() -> dict[str, str]:
    """The user's environment for a ``go`` command (GOMODCACHE, GOCACHE... apply) with the local toolchain, and with
    GOPROXY reduced to its module proxies: ``direct`` (Go's default fallback) would send a module the proxy does not
    serve to its source host, a DNS lookup and a connection off this machine; without it such a module fails with
    the proxy's answer. A GOPROXY naming no proxy at all is left as it is."""
    env = dict(os.environ, GOTOOLCHAIN="local")
    current = env.get("GOPROXY")
    if current is None:
        try:
            asked = subprocess.run(["go", "env", "GOPROXY"], capture_output=True, text=True, check=False, timeout=60)
            current = asked.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            current = ""  # no go: the command that needs it says so
    proxies = [p for p in re.split(r"[,|]", current) if p and p not in ("direct", "off")]
    if proxies:
        env["GOPROXY"] = ",".join(proxies)
    return env


def _wrapper_env() -> dict[str, str]:
    """:func:`go_environment` with the settings a wrapper build needs."""
    flags = [flag for flag in os.environ.get("GOFLAGS", "").split() if not flag.startswith("-mod=")]
    return dict(go_environment(), CGO_ENABLED="0", GOWORK="off", GOFLAGS=" ".join([*flags, "-mod=mod"]))


def _upstream_go_mod(go: str, module: str, version: str, env: Mapping[str, str], cwd: Path) -> str:
    """The text of ``module@version``'s own go.mod (fetched into the module cache by ``go mod download``)."""
    try:
        proc = subprocess.run(
            [go, "mod", "download", "-json", f"{module}@{version}"],
            cwd=cwd,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        info = json.loads(proc.stdout or "{}")
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise ArtifactError(f"`go mod download {module}@{version}` failed: {exc}") from exc
    if proc.returncode != 0 or not info.get("GoMod"):
        said = info.get("Error") or proc.stderr.strip() or f"exit code {proc.returncode}"
        raise ArtifactError(
            f"could not fetch {module}@{version} from the Go module proxy (is the version published? "
            f"`go list -m -versions {module}` lists them). Go said: {said}"
        )
    try:
        return Path(info["GoMod"]).read_text()
    except OSError as exc:
        raise ArtifactError(f"cannot read the go.mod of {module}@{version}: {exc}") from exc


_GO_VERSION = re.compile(r"v\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?")
_GO_DIRECTIVE = re.compile(r"^go\s+(\S+)\s*$", re.M)
_GODEBUG = re.compile(r"^godebug[ \t]*\((.*?)^\)|^godebug[ \t]+([^\s(][^\n]*)$", re.M | re.S)
_LOCAL_REPLACE = re.compile(r"^\s*(?:replace\s+)?(\S+)(?:\s+v\S+)?\s+=>\s+\.\.?/\S*\s*$", re.M)


def _wrapper_go_mod(
    module: str, version: str, upstream: str, pin_local_replaces: Callable[[str], str | None] | None
) -> str:
    """go.mod of a wrapper module for ``module@version``, from the text of ``module``'s own go.mod."""
    lines = ["module flinkops.local/wrapper", ""]
    directive = _GO_DIRECTIVE.search(upstream)
    if directive:
        lines += [f"go {directive.group(1)}", ""]
    godebug = []
    for block, single in _GODEBUG.findall(upstream):
        godebug += [line.split("//")[0].strip() for line in (block.splitlines() if block else [single])]
    godebug = [setting for setting in godebug if setting]
    if godebug:
        lines += ["godebug (", *(f"\t{setting}" for setting in godebug), ")", ""]
    lines += [f"require {module} {version}", ""]
    pins: dict[str, str] = {}
    if pin_local_replaces is not None:
        for path in _LOCAL_REPLACE.findall(upstream):
            pinned = pin_local_replaces(path)
            if pinned is not None:
                pins[path] = pinned
    if pins:
        lines += ["replace (", *(f"\t{path} => {path} {pin}" for path, pin in sorted(pins.items())), ")", ""]
    return "\n".join(lines)


def _check_go_directive(go: str, found: tuple[int, int] | None, module: str, version: str, upstream: str) -> None:
    """ArtifactError when the local Go (``go``, version ``found``) is older than the ``go`` line of ``module``'s
    go.mod (GOTOOLCHAIN=local would fail later, with a less direct message)."""
    directive = _GO_DIRECTIVE.search(upstream)
    wanted = re.match(r"(\d+)\.(\d+)", directive.group(1)) if directive else None
    if directive is None or wanted is None or found is None or found >= (int(wanted[1]), int(wanted[2])):
        return
    raise ArtifactError(
        f"{module}@{version} needs Go {directive.group(1)} or newer (the go line of its go.mod); {go} is Go "
        f"{found[0]}.{found[1]}. Install a newer Go (flinkops runs it with GOTOOLCHAIN=local, so it never "
        "downloads a toolchain itself)."
    )


def _run_go(
    argv: list[str], *, cwd: Path, env: dict[str, str], log_name: str, what: str, failed: str, progress: Progress | None
) -> None:
    """:func:`run_tool` for a Go command; ArtifactError ``"<failed> failed."`` with Go's last lines (and a hint when
    the module needs a newer Go) when it fails."""
    ok, tail = run_tool(argv, cwd=cwd, env=env, log_name=log_name, what=what, progress=progress)
    if ok:
        return
    hint = ""
    if "requires go >=" in tail or "toolchain not available" in tail:
        hint = " The module needs a newer Go than the one installed; install it and run again."
    raise ArtifactError(f"{failed} failed.{hint} Go said:\n{tail}")


def _require_go(binary: str, source: str, minimum: tuple[int, int] = _MIN_GO) -> tuple[str, tuple[int, int] | None]:
    """The ``go`` executable on PATH and its version (None when it cannot tell), at least Go ``minimum``;
    ArtifactError saying what to install otherwise."""
    go = shutil.which("go")
    if go is None:
        raise ArtifactError(
            f"building {binary} needs the Go toolchain ({_go_min_text(minimum)} or newer) on PATH, and `go` was "
            f"not found. Install Go, then run the command again (it builds {source} once and caches it)."
        )
    found = _go_version(go)
    if found is not None and found < minimum:
        raise ArtifactError(
            f"building {binary} needs Go {_go_min_text(minimum)} or newer; {go} is Go {found[0]}.{found[1]}. "
            "Install a newer Go (flinkops runs it with GOTOOLCHAIN=local, so it never downloads a toolchain itself)."
        )
    return go, found


def _go_version(go: str) -> tuple[int, int] | None:
    try:
        text = subprocess.run(
            [go, "env", "GOVERSION"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=go_environment(),
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.match(r"go(\d+)\.(\d+)", text.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def _go_min_text(minimum: tuple[int, int] = _MIN_GO) -> str:
    return f"{minimum[0]}.{minimum[1]}"
