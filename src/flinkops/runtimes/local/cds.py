"""Class-data sharing (AppCDS) for the JVMs of the local runtime: Flink's classes mapped from an archive instead
of parsed from jars at every start.

Java 17 cannot create an archive on the fly (``-XX:+AutoCreateSharedArchive`` came with 19), so the first
process of a kind *records* one: it runs with ``-XX:ArchiveClassesAtExit=<key>.<token>.tmp`` and the JVM writes
the classes it loaded when it exits (a normal stop; a SIGKILLed process records nothing). The next start of the
same kind finds the recording, checks it once (``java -Xshare:on -XX:SharedArchiveFile=... -version`` must
map it with this classpath), renames it to ``<key>.jsa`` and from then on every start of that kind runs with
``-XX:SharedArchiveFile=<key>.jsa``. A kind is keyed by the Java binary and version, the Flink version, the main
class and the classpath with each jar's size and modification time, so any change there makes a new archive
and never a mismatched one. While a recording process lives, other starts of its kind run without CDS; after
three recordings that gave no usable archive, the kind is given up on.

The archives live under ``$FLINKOPS_CACHE/cds`` (default ``~/.cache/flinkops/cds``), shared by every flinkops
home on the machine. ``FLINKOPS_CDS=off`` disables all of this (read when the runtime is created).

Called by: ``runtimes/local/launch.py``.

Invariant: CDS only ever changes how fast classes load. An archive the JVM would reject is never passed
(checked before first use), and the JVM runs with ``-Xshare:auto``, so a problem costs the speed-up, not the
process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flinkops.artifacts import cache_dir
from flinkops.runtimes.local.proc import start_ticks

__all__ = ["CDS_ENV", "CdsPlan", "ClassDataSharing"]

log = logging.getLogger("flinkops.runtimes.local")

CDS_ENV = "FLINKOPS_CDS"
_MAX_FAILED_RECORDINGS = 3
_KEEP_ARCHIVES = 6
# A claim written by a start that has not told its pid yet (it is between claim and exec) counts as alive
# this long.
_UNSTARTED_CLAIM_SECONDS = 60.0
# Keep the JVM quiet about classes it cannot archive (e.g. ones from Flink's plugin and user class loaders).
_QUIET = "-Xlog:cds=off,cds+dynamic=off"


@dataclass(frozen=True)
class CdsPlan:
    key: str
    flags: tuple[str, ...]
    recording: Path | None = None  # the archive this process writes at exit, if it records one


class ClassDataSharing:
    def __init__(self, directory: Path | None, *, enabled: bool = True) -> None:
        self.directory = directory
        self.enabled = enabled and directory is not None

    @classmethod
    def from_environment(cls) -> ClassDataSharing:
        setting = os.environ.get(CDS_ENV, "on").strip().lower()
        return cls(cache_dir() / "cds", enabled=setting not in ("off", "0", "false", "no"))

    @classmethod
    def disabled(cls) -> ClassDataSharing:
        return cls(None, enabled=False)

    def plan(
        self, java: str, java_version: int, flink_version: str, main: str, classpath: Sequence[str]
    ) -> CdsPlan | None:
        """The CDS flags for one start, or None (disabled, being recorded elsewhere, given up on)."""
        if not self.enabled or self.directory is None or java_version < 13:  # dynamic archives: Java 13+
            return None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            key = _key(java, java_version, flink_version, main, classpath)
            archive = self.directory / f"{key}.jsa"
            if not archive.is_file():
                self._settle(key, java, classpath)
            if archive.is_file():
                os.utime(archive)  # its modification time says when it was last used (see _prune)
                return CdsPlan(key, (f"-XX:SharedArchiveFile={archive}", "-Xshare:auto", _QUIET))
            return self._claim(key)
        except OSError as exc:
            log.warning("class-data sharing unavailable: %s", exc)
            return None

    def started(self, plan: CdsPlan, pid: int, ticks: int) -> None:
        """Record which process writes ``plan.recording`` (a claim is taken before the process exists)."""
        if plan.recording is None or self.directory is None:
            return
        claim = self.directory / f"{plan.key}.claim"
        with contextlib.suppress(OSError):
            data = json.loads(claim.read_text())
            if data.get("recording") == str(plan.recording):
                data.update(pid=pid, ticks=ticks)
                _write_json(claim, data)

    def is_recording(self, pid: int, ticks: int) -> bool:
        """Whether that process writes an archive when it exits (stopping it then takes a few seconds more)."""
        if self.directory is None or not self.directory.is_dir():
            return False
        for claim in self.directory.glob("*.claim"):
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(claim.read_text())
                if data.get("pid") == pid and data.get("ticks") == ticks:
                    return True
        return False

    # ------------------------------------------------------------------ recording

    def _claim(self, key: str) -> CdsPlan | None:
        assert self.directory is not None
        failures = _read_int(self.directory / f"{key}.failed")
        if failures >= _MAX_FAILED_RECORDINGS:
            return None
        recording = self.directory / f"{key}.{secrets.token_hex(4)}.tmp"
        claim = self.directory / f"{key}.claim"
        try:
            fd = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return None  # another start records this kind right now
        with os.fdopen(fd, "w") as handle:
            json.dump({"recording": str(recording), "pid": 0, "ticks": 0}, handle)
        return CdsPlan(key, (f"-XX:ArchiveClassesAtExit={recording}", _QUIET), recording)

    def _settle(self, key: str, java: str, classpath: Sequence[str]) -> None:
        """Turn a finished recording into the archive (or count it as failed) once its process is gone."""
        assert self.directory is not None
        claim = self.directory / f"{key}.claim"
        try:
            age = time.time() - claim.stat().st_mtime
            text = claim.read_text()
        except FileNotFoundError:
            return
        try:
            data = json.loads(text)
        except ValueError:
            data = {}  # being written: young, so left alone below
        pid, ticks = int(data.get("pid", 0)), int(data.get("ticks", 0))
        if pid and start_ticks(pid) == ticks:
            return  # still running: it writes the archive when it exits
        if not pid and age < _UNSTARTED_CLAIM_SECONDS:
            return  # claimed a moment ago: the process is about to start
        recording = Path(str(data.get("recording", "")))
        if recording.name and recording.is_file() and _usable(java, recording, classpath):
            os.replace(recording, self.directory / f"{key}.jsa")
            log.info("class-data sharing archive ready for %s", key)
            self._prune()
        else:
            failed = self.directory / f"{key}.failed"
            failed.write_text(str(_read_int(failed) + 1))
            if recording.name:
                recording.unlink(missing_ok=True)
        claim.unlink(missing_ok=True)

    def _prune(self) -> None:
        """Keep the most recently used archives (each is tens of megabytes); drop recordings nobody claims."""
        assert self.directory is not None
        archives = sorted(self.directory.glob("*.jsa"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in archives[_KEEP_ARCHIVES:]:
            old.unlink(missing_ok=True)
        claimed = {p.name.split(".")[0] for p in self.directory.glob("*.claim")}
        for orphan in self.directory.glob("*.tmp"):
            if orphan.name.split(".")[0] not in claimed:
                orphan.unlink(missing_ok=True)


def _key(java: str, java_version: int, flink_version: str, main: str, classpath: Sequence[str]) -> str:
    jars = []
    for entry in classpath:
        with contextlib.suppress(OSError):
            stat = os.stat(entry)
            jars.append([entry, stat.st_size, stat.st_mtime_ns])
    identity = [str(Path(java).resolve()), java_version, flink_version, main, jars]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:24]


def _usable(java: str, archive: Path, classpath: Sequence[str]) -> bool:
    """Whether the JVM maps ``archive`` with this classpath (``-Xshare:on`` fails the start if it cannot)."""
    try:
        check = subprocess.run(
            [java, "-Xshare:on", f"-XX:SharedArchiveFile={archive}", "-cp", os.pathsep.join(classpath), "-version"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return check.returncode == 0


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)
