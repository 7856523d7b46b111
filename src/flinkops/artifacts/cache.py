"""The plumbing of flinkops' artifact cache: where it is, locks, atomic writes, tool runs with progress.

:func:`cache_dir` is the cache root; :func:`file_lock` serialises processes on one artifact (and the dev
servers on their state); :func:`scratch` is a temporary directory next to the final place, so a finished file
is moved in with one ``os.replace``; :func:`write_atomic` writes a small file the same way; :func:`run_tool`
runs ``mvn`` or ``go`` with its output in ``logs/<name>.log``, a heartbeat through ``progress`` while it runs,
and the cleaned-up last lines of that output when it fails.

Called by: ``maven.py`` and ``go.py`` of this package, and (``cache_dir``, ``file_lock``, re-exported by
``flinkops.artifacts``) the dev services. Invariants: a reader never sees a torn file (everything lands by
rename on the same filesystem); a lock is released when its holder dies (``flock``); a tool started here is
killed when the caller is interrupted, never left running.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from flinkops.errors import FlinkopsError

__all__ = [
    "ArtifactError",
    "Progress",
    "cache_dir",
    "executable",
    "file_lock",
    "run_tool",
    "say",
    "scratch",
    "write_atomic",
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


def executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


# ------------------------------------------------------------------------------------------------ helpers


def say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


@contextlib.contextmanager
def file_lock(lock_file: Path, waiting: Callable[[], None] | None = None) -> Iterator[None]:
    """An exclusive ``flock`` on ``lock_file`` for the ``with`` block (released when the process dies, too).
    ``waiting`` is called once when another holder makes this one wait (to say so)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (fcntl.LOCK_NB if waiting is not None else 0))
        except BlockingIOError:
            if waiting is not None:
                waiting()
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def scratch(parent: Path) -> Iterator[Path]:
    """A temporary directory inside ``parent`` (same filesystem, so ``os.replace`` out of it is atomic)."""
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def run_tool(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str] | None,
    log_name: str,
    what: str,
    progress: Progress | None,
    missing_hint: str | None = None,
) -> tuple[bool, str]:
    """Run ``argv`` with its output in ``logs/<log_name>.log``; True and "" on success, else False and the
    output's last lines. A missing executable raises ArtifactError (``missing_hint`` says what to install;
    by default that the tool must be on PATH). Reports a heartbeat while it runs."""
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
                        say(progress, f"  ... still {what} ({time.monotonic() - started:.0f}s)")
                        next_beat += _HEARTBEAT_SECONDS
                except BaseException:
                    proc.kill()  # our own child: do not leave a build running behind an interrupted command
                    proc.wait()
                    raise
    except FileNotFoundError as exc:
        tool = Path(argv[0]).name
        hint = missing_hint or f"`{tool}` must be installed and on PATH"
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
