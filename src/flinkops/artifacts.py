"""Heavy downloads (Maven jars and classpaths, binaries built with Go), fetched once and cached on this machine.

flinkops never hard-codes a repository address: jars come through ``mvn`` (so the user's ``~/.m2/settings.xml``
mirrors and proxies apply, and ``~/.m2/repository`` is shared with their other builds), binaries through
``go install`` or ``go build`` in a generated wrapper module (so ``GOPROXY``/``GOFLAGS`` apply, and the module and
build caches are the user's own). Layout under :func:`cache_dir`::

    maven/<group>/<artifact>/<version>/<artifact>-<version>[-<classifier>].jar   one jar (maven_jar)
    <name>/lib/*.jar                                                               a runtime classpath (maven_classpath)
    <name>/complete.json                                                           its coordinates, written last
    go/<binary>-<version>/<binary>                                                 a Go-built binary (go_binary,
                                                                                   go_wrapper_binaries: Kubernetes,
                                                                                   etcd)
    logs/<what>.log                                                                output of the last fetch or build

Invariants:

* A path these functions return is complete. A jar or binary is fetched into a temporary directory on the same
  filesystem and renamed into place (``os.replace``), so a crash or a concurrent reader never sees a torn file.
  A classpath directory counts only when ``complete.json`` exists and names the same coordinates; the marker is
  removed before the directory changes and written after it is whole.
* Concurrent callers (two test sessions, a CLI and a test) serialise on an ``fcntl`` lock per artifact (per
  module and version for a wrapper build), so a build of several minutes runs once, and the second caller finds
  it cached.
* A present artifact is returned without running ``mvn`` or ``go`` (no network, no startup cost).

Long operations report through ``progress`` (what is fetched or built, that it is cached for next time, and a
heartbeat while it runs). Failures raise :class:`ArtifactError` with the coordinates tried, what to install, and
the last lines of the tool's output (the full output stays in ``logs/``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from flinkops.errors import FlinkopsError

__all__ = [
    "ArtifactError",
    "Progress",
    "cache_dir",
    "etcd_binary",
    "file_lock",
    "go_binary",
    "go_wrapper_binaries",
    "kubernetes_binaries",
    "maven_classpath",
    "maven_jar",
    "parse_coordinate",
]

Progress = Callable[[str], None]

_HEARTBEAT_SECONDS = 30.0
_OUTPUT_TAIL_LINES = 15
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Maven's generic advice after every failure; dropped from error messages so the real cause stays visible.
_NOISE = re.compile(
    r"^\[ERROR\]\s*$|Try downloading the file manually|install:install-file|deploy:deploy-file|Then, install it|"
    r"Alternatively, if you host|re-run Maven|Re-run Maven|For more information about the errors|\[Help 1\]"
)
# `go install` needs Go 1.16+ for module@version; GOTOOLCHAIN=local (which stops Go from fetching a newer
# toolchain behind the user's back) means something only from Go 1.21 on.
_MIN_GO = (1, 21)
_MVN_HINT = "Maven (`mvn`, 3.6 or newer, with a JDK) must be installed and able to reach a Maven repository"


class ArtifactError(FlinkopsError):
    """A jar or binary could not be fetched or built (tool missing, not found, network, compile error)."""


def cache_dir() -> Path:
    """``$FLINKOPS_CACHE``, else ``$XDG_CACHE_HOME/flinkops``, else ``~/.cache/flinkops``."""
    explicit = os.environ.get("FLINKOPS_CACHE")
    if explicit:
        return Path(explicit).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return (Path(xdg).expanduser() / "flinkops").resolve()
    return (Path.home() / ".cache" / "flinkops").resolve()


# ------------------------------------------------------------------------------------------------ Maven


def parse_coordinate(coordinate: str) -> tuple[str, str, str, str, str | None]:
    """Split ``group:artifact:version[:type[:classifier]]`` (Maven's ``-Dartifact`` form) into its parts;
    the type defaults to ``jar``. Raises ArtifactError for anything else."""
    parts = coordinate.strip().split(":")
    if len(parts) not in (3, 4, 5) or not all(parts):
        raise ArtifactError(f"bad Maven coordinate {coordinate!r}: expected group:artifact:version[:type[:classifier]]")
    group, artifact, version = parts[:3]
    kind = parts[3] if len(parts) > 3 else "jar"
    classifier = parts[4] if len(parts) > 4 else None
    return group, artifact, version, kind, classifier


def maven_jar(
    group: str,
    artifact: str,
    version: str,
    *,
    classifier: str | None = None,
    fallback_versions: Sequence[str] = (),
    progress: Progress | None = None,
) -> Path:
    """One jar (no dependencies), cached under ``cache_dir()/maven/``.

    ``version`` is tried first, then each of ``fallback_versions`` in order (for a release that Maven Central
    does not carry yet, say). Any of them already cached is returned at once, in that order of preference.
    """
    versions = [version, *(v for v in fallback_versions if v != version)]
    targets = {v: _jar_path(group, artifact, v, classifier) for v in versions}
    for v in versions:
        if targets[v].is_file():
            return targets[v]
    failures: list[str] = []
    for v in versions:
        spec = f"{group}:{artifact}:{v}" + (f":jar:{classifier}" if classifier else "")
        target = targets[v]
        artifact_dir = target.parent.parent  # one lock and scratch area per artifact, across its versions
        with file_lock(artifact_dir / ".lock"):
            if target.is_file():  # another process fetched it while we waited
                return target
            _say(progress, f"fetching {spec} with Maven (cached in {target.parent} for next time)")
            started = time.monotonic()
            with _scratch(artifact_dir) as tmp:
                out = tmp / "out"
                ok, tail = _run(
                    [
                        "mvn",
                        "-q",
                        "-B",
                        "-Dstyle.color=never",
                        "dependency:copy",
                        f"-Dartifact={spec}",
                        f"-DoutputDirectory={out}",
                        "-Dmdep.overWriteReleases=true",
                    ],
                    cwd=tmp,  # an empty directory: no pom.xml of the caller's may be picked up
                    env=None,
                    log_name=f"maven-{artifact}-{v}",
                    what=f"fetching {spec}",
                    progress=progress,
                )
                jars = sorted(out.glob("*.jar")) if ok else []
                if ok and jars:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(jars[0], target)
                    _say(progress, f"fetched {target.name} in {time.monotonic() - started:.0f}s")
                    return target
                failures.append(f"{spec}: " + (tail or "Maven finished but wrote no jar"))
    tried = ", ".join(f"{group}:{artifact}:{v}" + (f" ({classifier})" if classifier else "") for v in versions)
    raise ArtifactError(f"could not fetch {tried} with Maven. {_MVN_HINT}. Maven said:\n" + "\n\n".join(failures))


def _jar_path(group: str, artifact: str, version: str, classifier: str | None) -> Path:
    name = f"{artifact}-{version}" + (f"-{classifier}" if classifier else "") + ".jar"
    return cache_dir() / "maven" / group / artifact / version / name


def maven_classpath(name: str, coordinates: Sequence[str], *, progress: Progress | None = None) -> Path:
    """A directory ``cache_dir()/<name>/lib`` holding ``coordinates`` and all their compile- and runtime-scope
    dependencies (Maven resolves versions as for a project that declares these dependencies); use it as
    ``-cp '<dir>/*'``. Rebuilt when ``coordinates`` differ from the ones it was built from."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ArtifactError(f"bad classpath name {name!r}: use letters, digits, '.', '_' and '-'")
    if not coordinates:
        raise ArtifactError(f"classpath {name!r}: no coordinates given")
    wanted = [c.strip() for c in coordinates]
    parsed = [parse_coordinate(c) for c in wanted]
    root = cache_dir() / name
    lib, marker = root / "lib", root / "complete.json"
    if _classpath_complete(marker, wanted) and lib.is_dir():
        return lib
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / ".lock"):
        if _classpath_complete(marker, wanted) and lib.is_dir():
            return lib
        _say(
            progress,
            f"fetching {', '.join(wanted)} and their dependencies with Maven (once; cached in {lib} for next time)",
        )
        started = time.monotonic()
        with _scratch(root) as tmp:
            (tmp / "pom.xml").write_text(_pom(name, parsed))
            ok, tail = _run(
                [
                    "mvn",
                    "-q",
                    "-B",
                    "-Dstyle.color=never",
                    "dependency:copy-dependencies",
                    "-DincludeScope=runtime",
                    f"-DoutputDirectory={tmp / 'lib'}",
                ],
                cwd=tmp,
                env=None,
                log_name=f"maven-{name}",
                what=f"fetching the {name} classpath",
                progress=progress,
            )
            jars = sorted((tmp / "lib").glob("*.jar")) if ok else []
            if not ok or not jars:
                raise ArtifactError(
                    f"could not fetch the {name} classpath ({', '.join(wanted)}) with Maven. {_MVN_HINT}. "
                    f"Maven said:\n{tail or 'it finished but copied no jar'}"
                )
            marker.unlink(missing_ok=True)
            if lib.exists():
                old = root / f".old-{os.getpid()}-{time.monotonic_ns()}"
                os.replace(lib, old)
                shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp / "lib", lib)
        _write_atomic(marker, json.dumps({"coordinates": wanted, "jars": len(jars)}, indent=1) + "\n")
        _say(progress, f"fetched {len(jars)} jars for {name} in {time.monotonic() - started:.0f}s")
    return lib


def _classpath_complete(marker: Path, wanted: list[str]) -> bool:
    try:
        return bool(json.loads(marker.read_text()).get("coordinates") == wanted)
    except (OSError, ValueError, AttributeError):
        return False


def _pom(name: str, parsed: Sequence[tuple[str, str, str, str, str | None]]) -> str:
    deps = []
    for group, artifact, version, kind, classifier in parsed:
        fields = [("groupId", group), ("artifactId", artifact), ("version", version)]
        if kind != "jar":
            fields.append(("type", kind))
        if classifier:
            fields.append(("classifier", classifier))
        inner = "".join(f"<{tag}>{escape(value)}</{tag}>" for tag, value in fields)
        deps.append(f"    <dependency>{inner}</dependency>\n")
    return (
        "<project>\n"
        "  <modelVersion>4.0.0</modelVersion>\n"
        f"  <groupId>flinkops.local</groupId><artifactId>{escape(name)}</artifactId><version>1</version>\n"
        "  <packaging>pom</packaging>\n"
        f"  <dependencies>\n{''.join(deps)}  </dependencies>\n"
        "</project>\n"
    )


# ------------------------------------------------------------------------------------------------ Go


def go_binary(module: str, version: str, binary: str, *, progress: Progress | None = None) -> Path:
    """A binary built by ``go install -trimpath module@version`` (static: ``CGO_ENABLED=0``; with the local
    Go only: ``GOTOOLCHAIN=local``), cached at ``cache_dir()/go/<binary>-<version>/<binary>``. The Go build and
    module caches are the user's usual ones, so a rebuild after a cache wipe is fast."""
    if not module or "@" in module or not version or "/" in binary or not binary:
        raise ArtifactError(f"bad Go install request: module={module!r} version={version!r} binary={binary!r}")
    target = cache_dir() / "go" / f"{binary}-{version}" / binary
    if _executable(target):
        return target
    go, _ = _require_go(binary, f"{module}@{version}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.parent / ".lock"):
        if _executable(target):
            return target
        _say(
            progress,
            f"building {binary} from {module}@{version} with Go (once: this can take several minutes and a few GB "
            f"of memory; cached in {target.parent} for next time)",
        )
        started = time.monotonic()
        with _scratch(target.parent) as tmp:
            env = dict(os.environ, GOTOOLCHAIN="local", CGO_ENABLED="0", GOBIN=str(tmp / "bin"))
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
            if not _executable(built):
                produced = sorted(p.name for p in (tmp / "bin").glob("*"))
                raise ArtifactError(
                    f"`go install {module}@{version}` produced {produced or 'nothing'}, not a binary named {binary}"
                )
            os.replace(built, target)
        _say(progress, f"built {binary} in {time.monotonic() - started:.0f}s")
    return target


# ------------------------------------------------------------------------------------------------ Go wrapper modules


def go_wrapper_binaries(
    module: str,
    version: str,
    binaries: Mapping[str, str],
    *,
    pin_local_replaces: Callable[[str], str | None] | None = None,
    ldflags: Sequence[str] = (),
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
    ``cache_dir()/go/<name>-<version>/<name>``. Built one after the other (one big link at a time) with
    ``CGO_ENABLED=0 GOTOOLCHAIN=local GOWORK=off -trimpath -ldflags '-s -w <ldflags>'``; the user's GOMODCACHE,
    GOCACHE, GOPROXY and other GOFLAGS apply, so a rebuild after a cache wipe mostly links. ``min_go`` is checked
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
    root = cache_dir() / "go"
    targets = {name: root / f"{name}-{version}" / name for name in binaries}
    if all(_executable(path) for path in targets.values()):
        return targets
    go, go_version = _require_go(", ".join(binaries), f"{module}@{version}", min_go)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", module)
    with file_lock(root / f".{slug}-{version}.lock"):
        missing = {name: package for name, package in binaries.items() if not _executable(targets[name])}
        if not missing:  # another process built them while we waited
            return targets
        _say(
            progress,
            f"building {', '.join(missing)} {version} from {module} with Go (once: several minutes and a few GB "
            f"of memory; cached in {root} for next time)",
        )
        with _scratch(root) as tmp:
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
            for name, package in missing.items():
                _say(progress, f"building {name} {version} ... (once, several minutes)")
                started = time.monotonic()
                built = tmp / "bin" / name
                _run_go(
                    [go, "build", "-trimpath", f"-ldflags={flags}", "-o", str(built), package],
                    cwd=tmp,
                    env=env,
                    log_name=f"go-{name}-{version}",
                    what=f"building {name}",
                    failed=f"building {name} from {package}@{version}",
                    progress=progress,
                )
                if not _executable(built):
                    raise ArtifactError(f"`go build {package}` (at {version}) produced no executable {name}")
                targets[name].parent.mkdir(parents=True, exist_ok=True)
                os.replace(built, targets[name])
                _say(progress, f"built {name} in {time.monotonic() - started:.0f}s")
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


def _wrapper_env() -> dict[str, str]:
    """The user's environment (GOPROXY, GOMODCACHE, GOCACHE...) with the settings a wrapper build needs."""
    flags = [flag for flag in os.environ.get("GOFLAGS", "").split() if not flag.startswith("-mod=")]
    return dict(os.environ, GOTOOLCHAIN="local", CGO_ENABLED="0", GOWORK="off", GOFLAGS=" ".join([*flags, "-mod=mod"]))


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
    """:func:`_run` for a Go command; ArtifactError ``"<failed> failed."`` with Go's last lines (and a hint when
    the module needs a newer Go) when it fails."""
    ok, tail = _run(argv, cwd=cwd, env=env, log_name=log_name, what=what, progress=progress)
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
            env=dict(os.environ, GOTOOLCHAIN="local"),
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.match(r"go(\d+)\.(\d+)", text.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def _go_min_text(minimum: tuple[int, int] = _MIN_GO) -> str:
    return f"{minimum[0]}.{minimum[1]}"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


# ------------------------------------------------------------------------------------------------ helpers


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


@contextlib.contextmanager
def file_lock(lock_file: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``lock_file`` for the ``with`` block (released when the process dies, too)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def _scratch(parent: Path) -> Iterator[Path]:
    """A temporary directory inside ``parent`` (same filesystem, so ``os.replace`` out of it is atomic)."""
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _run(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str] | None,
    log_name: str,
    what: str,
    progress: Progress | None,
) -> tuple[bool, str]:
    """Run ``argv`` with its output in ``logs/<log_name>.log``; True and "" on success, else False and the
    output's last lines. A missing executable raises ArtifactError. Reports a heartbeat while it runs."""
    logs = cache_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{log_name}.log"
    started = time.monotonic()
    next_beat = started + _HEARTBEAT_SECONDS
    try:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
            while True:
                try:
                    code = proc.wait(timeout=1.0)
                    break
                except subprocess.TimeoutExpired:
                    if time.monotonic() >= next_beat:
                        _say(progress, f"  ... still {what} ({time.monotonic() - started:.0f}s)")
                        next_beat += _HEARTBEAT_SECONDS
                except BaseException:
                    proc.kill()  # our own child: do not leave a build running behind an interrupted command
                    proc.wait()
                    raise
    except FileNotFoundError as exc:
        tool = Path(argv[0]).name
        hint = _MVN_HINT if tool == "mvn" else f"`{tool}` must be installed and on PATH"
        raise ArtifactError(f"{what}: {hint} ({tool} was not found)") from exc
    if code == 0:
        return True, ""
    return False, f"(exit code {code}; full output in {log})\n" + _tail(log)


def _tail(log: Path, lines: int = _OUTPUT_TAIL_LINES) -> str:
    try:
        text = _ANSI.sub("", log.read_text(errors="replace"))
    except OSError:
        return ""
    kept = [line.rstrip() for line in text.splitlines() if line.strip() and not _NOISE.search(line)]
    return "\n".join(kept[-lines:])
