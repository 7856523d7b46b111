"""Heavy downloads (Maven jars and classpaths, binaries built with Go), fetched once and cached on this machine.

flinkops never hard-codes a repository address: jars come through ``mvn`` (so the user's ``~/.m2/settings.xml``
mirrors and proxies apply, and ``~/.m2/repository`` is shared with their other builds), binaries through
``go install`` (so ``GOPROXY``/``GOFLAGS`` apply). Layout under :func:`cache_dir`::

    maven/<group>/<artifact>/<version>/<artifact>-<version>[-<classifier>].jar   one jar (maven_jar)
    <name>/lib/*.jar                                                               a runtime classpath (maven_classpath)
    <name>/complete.json                                                           its coordinates, written last
    go/<binary>-<version>/<binary>                                                 a Go-built binary (go_binary)
    logs/<what>.log                                                                output of the last fetch or build

Invariants:

* A path these functions return is complete. A jar or binary is fetched into a temporary directory on the same
  filesystem and renamed into place (``os.replace``), so a crash or a concurrent reader never sees a torn file.
  A classpath directory counts only when ``complete.json`` exists and names the same coordinates; the marker is
  removed before the directory changes and written after it is whole.
* Concurrent callers (two test sessions, a CLI and a test) serialise on an ``fcntl`` lock per artifact, so a
  build of several minutes runs once, and the second caller finds it cached.
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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from flinkops.errors import FlinkopsError

__all__ = [
    "ArtifactError",
    "Progress",
    "cache_dir",
    "go_binary",
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
        with _locked(artifact_dir / ".lock"):
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
    with _locked(root / ".lock"):
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
    go = shutil.which("go")
    if go is None:
        raise ArtifactError(
            f"building {binary} needs the Go toolchain ({_go_min_text()} or newer) on PATH, and `go` was not "
            f"found. Install Go, then run the command again (it builds {module}@{version} once and caches it)."
        )
    found = _go_version(go)
    if found is not None and found < _MIN_GO:
        raise ArtifactError(
            f"building {binary} needs Go {_go_min_text()} or newer; {go} is Go {found[0]}.{found[1]}. Install a "
            "newer Go (flinkops runs it with GOTOOLCHAIN=local, so it never downloads a toolchain itself)."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / ".lock"):
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
            ok, tail = _run(
                [go, "install", "-trimpath", f"{module}@{version}"],
                cwd=tmp,  # outside any go.mod of the caller's
                env=env,
                log_name=f"go-{binary}-{version}",
                what=f"building {binary}",
                progress=progress,
            )
            built = tmp / "bin" / binary
            if not ok:
                hint = ""
                if "requires go >=" in tail or "toolchain not available" in tail:
                    hint = " The module needs a newer Go than the one installed; install it and run again."
                raise ArtifactError(f"`go install {module}@{version}` failed.{hint} Go said:\n{tail}")
            if not _executable(built):
                produced = sorted(p.name for p in (tmp / "bin").glob("*"))
                raise ArtifactError(
                    f"`go install {module}@{version}` produced {produced or 'nothing'}, not a binary named {binary}"
                )
            os.replace(built, target)
        _say(progress, f"built {binary} in {time.monotonic() - started:.0f}s")
    return target


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


def _go_min_text() -> str:
    return f"{_MIN_GO[0]}.{_MIN_GO[1]}"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


# ------------------------------------------------------------------------------------------------ helpers


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
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
