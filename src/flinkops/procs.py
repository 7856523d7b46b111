"""Processes this machine runs for flinkops, identified beyond their pid.

A pid is recycled by the kernel; the pair (pid, kernel start time) is not. Every record of a process flinkops
started (Flink JVMs, the controller daemon, the ``flinkops dev`` servers) keeps both, and a process counts as ours
only while both match, so a stop never signals a stranger.

Called by: the local runtime, the daemon's process management and ``flinkops.dev``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["same_process", "start_ticks"]


def start_ticks(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if it is gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; everything after the last ')' is fixed-format.
    fields = raw[raw.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def same_process(pid: int, ticks: int) -> bool:
    """Whether ``pid`` is still the process that started at ``ticks``."""
    return start_ticks(pid) == ticks
