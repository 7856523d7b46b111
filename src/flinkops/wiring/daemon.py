"""The local controller daemon's process: start, stop and status.

The loop itself is ``controller.loop.run_loop`` on the controller ``wiring.local`` builds: it polls the store's
change counter (one cheap query) every ``poll`` seconds; a change marks every resource due now, otherwise each
resource comes up again when its planner asked (``requeue_after``). Work is keyed by resource name, never by
event, so a missed wake-up only delays a pass.

``start`` launches ``python -m flinkops controller run`` detached (its own session, output in
``<home>/controller.log``) and records pid + kernel start time in ``<home>/controller.pid``, so ``stop`` and
``status`` never act on a recycled pid. Flink processes are not children of the CLI and outlive the daemon;
a new daemon adopts them from the runtime's records.

Called by: the CLI (``flinkops controller ...`` and implicitly by ``apply``) and tests.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from flinkops.errors import RuntimeFailure
from flinkops.procs import same_process, start_ticks
from flinkops.settings import default_home

__all__ = [
    "DaemonState",
    "daemon_state",
    "default_home",
    "hold_controller_lock",
    "start_daemon",
    "stop_daemon",
    "write_pid_file",
]

log = logging.getLogger("flinkops.controller")

PID_FILE = "controller.pid"
LOG_FILE = "controller.log"
LOCK_FILE = "controller.lock"  # held by the running controller for its whole life
START_LOCK_FILE = "controller.start.lock"  # held while a daemon is being started


# ---------------------------------------------------------------------------------- process management


@dataclass(frozen=True)
class DaemonState:
    running: bool
    pid: int | None
    started_at: float | None
    log_file: Path


@dataclass(frozen=True)
class _PidRecord:
    pid: int
    start_ticks: int


def _read_pid(home: Path) -> _PidRecord | None:
    try:
        data = json.loads((home / PID_FILE).read_text())
        return _PidRecord(int(data["pid"]), int(data["start_ticks"]))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def process_alive(record: _PidRecord) -> bool:
    return same_process(record.pid, record.start_ticks)


def daemon_state(home: Path) -> DaemonState:
    record = _read_pid(home)
    running = record is not None and process_alive(record)
    started = None
    if record is not None and running:
        with contextlib.suppress(OSError):
            started = (home / PID_FILE).stat().st_mtime
    return DaemonState(
        running=running,
        pid=record.pid if record and running else None,
        started_at=started,
        log_file=home / LOG_FILE,
    )


def hold_controller_lock(home: Path) -> IO[bytes] | None:
    """Take the home's controller lock (``<home>/controller.lock``, an exclusive ``flock``) for as long as the
    returned file stays open, or None when another process holds it. One controller per home, whichever way it
    was started (a daemon, ``controller run`` in a terminal, several ``apply`` at once): two would each deploy
    the same job. The kernel drops the lock when its holder dies, so a killed controller never blocks the next."""
    home.mkdir(parents=True, exist_ok=True)
    handle = (home / LOCK_FILE).open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def start_daemon(home: Path, timeout: float = 15.0) -> DaemonState:
    """Start the home's controller daemon unless one runs; the running one either way. Callers at the same
    moment (tasks of a scheduler applying at once) take turns, so only the first one starts a process."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / START_LOCK_FILE).open("ab") as starting:
        fcntl.flock(starting, fcntl.LOCK_EX)
        return _start_daemon(home, timeout)


def _start_daemon(home: Path, timeout: float) -> DaemonState:
    state = daemon_state(home)
    if state.running:
        return state
    held = hold_controller_lock(home)
    if held is None:  # a controller runs without a pid file (`flinkops controller run` in a terminal): it serves
        return DaemonState(running=True, pid=None, started_at=None, log_file=state.log_file)
    held.close()
    env = dict(os.environ, FLINKOPS_HOME=str(home))
    with (home / LOG_FILE).open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flinkops", "controller", "run", "--pid-file"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=home,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = daemon_state(home)
        if state.running:  # ours, or one started in a terminal meanwhile: either way the home has its controller
            return state
        if proc.poll() is not None:
            held = hold_controller_lock(home)
            if held is None:  # it found another controller holding the home (one started meanwhile): that one serves
                return DaemonState(running=True, pid=None, started_at=None, log_file=state.log_file)
            held.close()
            raise RuntimeFailure(f"the controller exited at start; see {home / LOG_FILE}")
        time.sleep(0.05)
    raise RuntimeFailure(f"the controller did not start within {timeout:.0f}s; see {home / LOG_FILE}")


def stop_daemon(home: Path, timeout: float = 20.0) -> bool:
    """Stop the daemon (Flink clusters keep running). Returns False when none was running."""
    record = _read_pid(home)
    if record is None or not process_alive(record):
        return False
    os.kill(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while process_alive(record):
        if time.monotonic() > deadline:
            os.kill(record.pid, signal.SIGKILL)
        time.sleep(0.05)
    with contextlib.suppress(FileNotFoundError):
        (home / PID_FILE).unlink()
    return True


def write_pid_file(home: Path) -> None:
    ticks = start_ticks(os.getpid())
    record = {
        "role": "controller",
        "index": 0,
        "pid": os.getpid(),
        "start_ticks": ticks,
        "log_dir": str(home),
    }
    tmp = home / (PID_FILE + ".tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, home / PID_FILE)
