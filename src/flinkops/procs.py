"""Processes this machine runs for flinkops, identified beyond their pid.

A pid is recycled by the kernel; the pair (pid, kernel start time) is not. Every record of a process flinkops
started (Flink JVMs, the controller daemon, the ``flinkops dev`` servers) keeps both, and a process counts as ours
only while both match, so a stop never signals a stranger.

``ProcessWatch`` answers "which of these still run" for many processes at once and cheaply enough to ask twice a
second: it holds a pidfd per process (opened once, then checked against the recorded start time, so it names
that very process) and one ``poll(2)`` tells which of them exited. Where pidfds are not available it reads
``/proc`` like ``same_process``.

Called by: the local runtime, the daemon's process management and ``flinkops.dev``.
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Iterable
from pathlib import Path

__all__ = ["ProcessWatch", "same_process", "start_ticks"]

#: A process as its records name it: (pid, kernel start time in clock ticks).
Proc = tuple[int, int]


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


class ProcessWatch:
    """Which of many recorded processes still run, for the cost of one ``poll(2)`` once each is watched.

    A process is alive exactly when ``same_process`` says so: a pidfd becomes readable when its process exits
    (a zombie included), and a pid that was recycled before its pidfd was opened fails the start-time check.
    A process seen dead stays dead (its pid and start time never come back). ``watch`` starts watching
    processes and forgets (closing their pidfds) the ones no longer recorded anywhere; ``exited`` tells which
    watched processes died since it was last asked, however their death was noticed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._poll = select.poll()
        self._fds: dict[Proc, int] = {}
        self._by_fd: dict[int, Proc] = {}
        self._dead: set[Proc] = set()
        self._exited: set[Proc] = set()  # seen alive, then dead: not told to ``exited`` yet
        self._unwatchable: set[Proc] = set()  # no pidfd for these (none on this system, or no fd left): read /proc

    def alive(self, processes: Iterable[Proc]) -> set[Proc]:
        """The ones of ``processes`` that still run (those not watched yet are watched from now on)."""
        wanted = set(processes)
        with self._lock:
            self._add(wanted)
            self._check()
            return {proc for proc in wanted if proc in self._fds or proc in self._unwatchable}

    def watch(self, processes: Iterable[Proc]) -> None:
        """Watch exactly ``processes`` from now on: start on the new ones, forget the others."""
        keep = set(processes)
        with self._lock:
            for proc in [p for p in self._fds if p not in keep]:
                self._drop(proc)
            self._dead &= keep
            self._exited &= keep
            self._unwatchable &= keep
            self._add(keep)

    def exited(self) -> set[Proc]:
        """The watched processes that died since the last call."""
        with self._lock:
            self._check()
            found, self._exited = self._exited, set()
            return found

    def close(self) -> None:
        self.watch(())

    def _add(self, processes: set[Proc]) -> None:
        for proc in processes - self._fds.keys() - self._dead - self._unwatchable:
            self._open(proc)

    def _check(self) -> None:
        """Move the processes that exited to the dead (one poll over every pidfd; /proc for the unwatchable)."""
        if self._fds:
            for fd, _events in self._poll.poll(0):  # any event on a pidfd means its process exited
                proc = self._by_fd[fd]
                self._drop(proc)
                self._died(proc)
        for proc in [p for p in self._unwatchable if not same_process(*p)]:
            self._unwatchable.discard(proc)
            self._died(proc)

    def _died(self, proc: Proc) -> None:
        self._dead.add(proc)
        self._exited.add(proc)

    def _open(self, proc: Proc) -> None:
        pid, ticks = proc
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._dead.add(proc)
            return
        except (AttributeError, OSError):  # no pidfds here (old kernel, other OS, sandbox) or no fd left
            if same_process(pid, ticks):
                self._unwatchable.add(proc)
            else:
                self._dead.add(proc)
            return
        if start_ticks(pid) != ticks:  # the pid is someone else's now (or a zombie): ours is gone
            os.close(fd)
            self._dead.add(proc)
            return
        self._fds[proc] = fd
        self._by_fd[fd] = proc
        self._poll.register(fd, select.POLLIN)

    def _drop(self, proc: Proc) -> None:
        fd = self._fds.pop(proc)
        del self._by_fd[fd]
        self._poll.unregister(fd)
        os.close(fd)
