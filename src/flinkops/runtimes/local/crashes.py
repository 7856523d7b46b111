"""Why a local JobManager process exited, read from its log, and the log kept for later.

A JobManager that exits on its own (a non-zero exit code, or an unknown one for a process an earlier controller
started) is told as a ``StartFailed`` fault: the exit code, how long it ran, the exception its last ERROR line
logged and that exception's deepest ``Caused by:`` (both kept short), and where its log was kept. Flink logs
"Could not create application program" when it cannot even build the program from the jar (the entry class or
the jar is missing, the jar has no manifest): no retry of the same files can end otherwise, so that fault is not
retryable. Each failed attempt's log is copied under ``log/crashed/`` before a retry starts a new JobManager
(whose log4j rolls the old file away at start); the first and the newest ``KEEP_NEWEST`` are kept.

Called by: ``runtime.LocalRuntime.observe``. Reads and copies files; decides nothing.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from flinkops.errors import ClusterFault, ErrorReason

__all__ = ["KEEP_NEWEST", "Crash", "exit_fault", "keep_log", "read_crash"]

#: Besides the first failed attempt's, how many of the newest failed attempts' logs are kept.
KEEP_NEWEST = 3
_TAIL_BYTES = 256 * 1024  # what is read (and kept) of a log: its end, where the fatal exception is
_PROGRAM_FAILED = "Could not create application program"
_LEVEL = re.compile(r"^\S+ \S+ (ERROR|FATAL)\s")
_EXCEPTION = re.compile(r'^(?:Exception in thread "[^"]*" )?(?:[\w$]+\.)*([\w$]*(?:Exception|Error|Throwable))\b(.*)$')
_SHORT = 240
_JVM_NOT_CREATED = "Error: Could not create the Java Virtual Machine"
_JVM_INIT_FAILED = "Error occurred during initialization of VM"


@dataclass(frozen=True)
class Crash:
    exception: str  # the exception the last ERROR line logged, without its package
    root_cause: str | None  # its deepest ``Caused by:``, when it has one
    program_failed: bool  # Flink could not build the program from the jar


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as text:
            size = text.seek(0, 2)
            text.seek(max(0, size - _TAIL_BYTES))
            return text.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _short(line: str) -> str:
    """An exception line without the package of its class, at most ``_SHORT`` characters."""
    line = line.strip().removeprefix("Caused by:").strip()
    match = _EXCEPTION.match(line)
    if match is not None:
        line = match.group(1) + match.group(2)
    return line if len(line) <= _SHORT else line[: _SHORT - 1] + "…"


def _exception_after(lines: list[str], start: int) -> Crash | None:
    """The exception logged at or after ``lines[start]`` (an ERROR line), up to the next log line."""
    top: str | None = None
    causes: list[str] = []
    for line in lines[start + 1 :]:
        if _LEVEL.match(line) or re.match(r"^\d{4}-\d\d-\d\d ", line):
            break
        stripped = line.strip()
        if stripped.startswith("Caused by:"):
            causes.append(stripped)
        elif top is None and _EXCEPTION.match(stripped):
            top = stripped
    if top is None:
        return None
    program = _PROGRAM_FAILED in lines[start]
    return Crash(_short(top), _short(causes[-1]) if causes else None, program)


def read_crash(log_dir: Path) -> Crash | None:
    """What the JobManager whose logs are in ``log_dir`` died of: the exception of its last ERROR line in the
    Flink log (``*.log``), else the first exception (or JVM complaint) in its console output (``*.out``)."""
    for path in sorted(log_dir.glob("*.log")):
        lines = _tail(path).splitlines()
        errors = [i for i, line in enumerate(lines) if _LEVEL.match(line)]
        program = [i for i in errors if _PROGRAM_FAILED in lines[i]]
        for index in [*program, *reversed(errors)]:  # Flink's own verdict first, else the last error
            crash = _exception_after(lines, index)
            if crash is not None:
                return crash
    for path in sorted(log_dir.glob("*.out")):
        lines = [line for line in _tail(path).splitlines() if line.strip()]
        jvm = _jvm_refused(lines)
        if jvm is not None:
            return jvm
        for index, line in enumerate(lines):
            if _EXCEPTION.match(line.strip()) or line.startswith("Error:") or "Unrecognized" in line:
                causes = [c for c in lines[index + 1 :] if c.strip().startswith("Caused by:")]
                return Crash(_short(line), _short(causes[-1]) if causes else None, False)
    return None


def _jvm_refused(lines: list[str]) -> Crash | None:
    """The JVM's own refusal to start, with its reason: the line before "Could not create the Java Virtual
    Machine" (a stack size too small, an improperly specified option), or the line after "Error occurred during
    initialization of VM" (a heap too small, an agent that failed)."""
    for index, line in enumerate(lines):
        if line.startswith(_JVM_NOT_CREATED) and index > 0:
            return Crash(_short(line), _short(lines[index - 1]), False)
        if line.startswith(_JVM_INIT_FAILED) and index + 1 < len(lines):
            return Crash(_short(line), _short(lines[index + 1]), False)
    return None


def keep_log(log_dir: Path, crashed_dir: Path, name: str) -> Path:
    """Copy the JobManager's logs (the end of each) to ``crashed_dir/name`` (once), then prune the kept logs to
    the first failed attempt's and the newest ``KEEP_NEWEST``."""
    target = crashed_dir / name
    if not target.exists():
        target.mkdir(parents=True)
        for path in sorted([*log_dir.glob("*.log"), *log_dir.glob("*.out"), *log_dir.glob("*.err")]):
            (target / path.name).write_text(_tail(path))
    kept = sorted((d for d in crashed_dir.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime_ns)
    for old in kept[1 : max(1, len(kept) - KEEP_NEWEST)]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def exit_fault(code: int | None, ran_seconds: float, crash: Crash | None, kept: Path | None) -> ClusterFault:
    """The ``StartFailed`` fault of a JobManager process that exited with ``code`` (None: not known)."""
    how = f"with code {code}" if code is not None else "on its own"
    message = f"JobManager process exited {how} after {ran_seconds:.0f} s"
    if crash is not None:
        message += f": {crash.exception}"
        if crash.root_cause and crash.root_cause != crash.exception:
            message += f" (root cause: {crash.root_cause})"
    if kept is not None:
        message += f"; its log is kept in {kept}"
    retryable = crash is None or not crash.program_failed
    return ClusterFault(ErrorReason.START_FAILED, "jobmanager", message, retryable=retryable)
