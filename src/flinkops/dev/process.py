"""Process plumbing shared by the local dev servers (ZooKeeper, Kafka, MinIO): ports, pid files, start and stop.

Each server is one process in its own session (it outlives its starter) with its state in one directory. The
pid file there records the pid, the kernel start time of that pid (:func:`flinkops.runtimes.local.runtime.
start_ticks`) and the port the server was started on; a server's own fields (Kafka's controller port...) may
follow. :class:`ServerProcess` implements what the servers share on top of that record; the module functions
are the pieces that other code (``flinkops.dev.services``) uses too.

Invariants:

* Only the recorded pid is ever signalled, and only while it still has the recorded start time: a server that
  exited and whose pid was recycled is never touched. Stopping is SIGTERM, then SIGKILL after a grace period.
* Servers bind 127.0.0.1 (:data:`HOST`), and port checks look at that address only.
* The pid file is written atomically (a temporary file and a rename) once the process runs, so a reader sees no
  record or a complete one.
* A handle on a directory whose server already runs adopts it, and the port it recorded, rather than starting a
  second server; asking for another port than the running one is an error.

Called by: :mod:`flinkops.dev.zookeeper`, :mod:`flinkops.dev.kafka`, :mod:`flinkops.dev.s3`,
:mod:`flinkops.dev.services`, and (:class:`CommandServer`) :mod:`flinkops.dev.kubernetes` and
:mod:`flinkops.dev.node.components`.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, ClassVar

from flinkops.errors import RuntimeFailure
from flinkops.procs import start_ticks

__all__ = [
    "HOST",
    "CommandServer",
    "ServerProcess",
    "free_port",
    "neighbour_port",
    "port_in_use",
    "read_record",
    "recorded_pid",
    "signal_recorded",
    "write_private",
    "write_record",
]

HOST = "127.0.0.1"


# ------------------------------------------------------------------------------------------------ ports


def port_in_use(port: int) -> bool:
    """True when something listens on (or holds) 127.0.0.1:``port``. The servers bind with SO_REUSEADDR, so
    this check does too (a port in TIME_WAIT counts as free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def free_port() -> int:
    """A port on 127.0.0.1 that nothing holds right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def neighbour_port(port: int) -> int:
    """``port`` plus one when that is free (a server's second port next to its first), else a free port."""
    return port + 1 if not port_in_use(port + 1) else free_port()


# ------------------------------------------------------------------------------------------------ pid files


def read_record(pid_file: Path, fields: Sequence[str] = ("pid", "start_ticks")) -> dict[str, int] | None:
    """The integer ``fields`` of a pid file; None when it is missing, unreadable or lacks one of them."""
    try:
        data = json.loads(pid_file.read_text())
        return {key: int(data[key]) for key in fields}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_record(pid_file: Path, record: Mapping[str, int | str]) -> None:
    """Write a pid file atomically (a temporary file next to it, then a rename)."""
    tmp = pid_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(record)))
    os.replace(tmp, pid_file)


def recorded_pid(pid_file: Path) -> int | None:
    """The recorded pid while it still has the recorded start time; None otherwise (gone, recycled, no file)."""
    record = read_record(pid_file)
    if record is None:
        return None
    return record["pid"] if start_ticks(record["pid"]) == record["start_ticks"] else None


def signal_recorded(pid_file: Path, timeout: float, poll: Callable[[], None] = lambda: None) -> bool | None:
    """Stop the process recorded in ``pid_file``: SIGTERM, then SIGKILL once ``timeout`` seconds have passed;
    return when it is gone. None when it was not running (nothing is signalled), else whether it had to be
    killed. ``poll`` runs while waiting (a starter reaps its child there, or the pid stays a zombie)."""
    pid = recorded_pid(pid_file)
    if pid is None:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while recorded_pid(pid_file) is not None and time.monotonic() < deadline:
        poll()
        time.sleep(0.05)
    killed = recorded_pid(pid_file) is not None
    if killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while recorded_pid(pid_file) is not None:
            poll()
            time.sleep(0.02)
    return killed


# ------------------------------------------------------------------------------------------------ servers


class ServerProcess(abc.ABC):
    """A local server process whose data, pid file and log live in ``data_dir``.

    A subclass sets the class attributes, sets ``port`` in its ``__init__``, implements ``endpoint``,
    ``healthy`` and ``_launch`` (which prepares the directory and calls :meth:`_spawn`), and exposes
    :meth:`_start`/:meth:`_stop` as ``start``/``stop`` with its own default timeouts.
    """

    NAME: ClassVar[str]  # how messages name the server: "ZooKeeper", "the Kafka broker"
    PID_FILE: ClassVar[str]
    LOG_FILE: ClassVar[str]
    POLL_SECONDS: ClassVar[float] = 0.1  # how often a start checks whether the server serves

    port: int

    def __init__(self, data_dir: Path, requested_port: int | None) -> None:
        self.data_dir = data_dir.resolve()
        self._requested_port = requested_port
        self._child: subprocess.Popen[bytes] | None = None

    @property
    def pid_file(self) -> Path:
        return self.data_dir / self.PID_FILE

    @property
    def log_file(self) -> Path:
        return self.data_dir / self.LOG_FILE

    @property
    @abc.abstractmethod
    def endpoint(self) -> str:
        """Where clients connect."""

    @abc.abstractmethod
    def healthy(self) -> bool:
        """True when the server answers on its port as a serving server."""

    @abc.abstractmethod
    def start(self, timeout: float = ...) -> None: ...

    @abc.abstractmethod
    def stop(self, timeout: float = ...) -> bool: ...

    @abc.abstractmethod
    def _launch(self) -> None:
        """Start a new server process (nothing of ``data_dir`` runs)."""

    def pid(self) -> int | None:
        """The pid of this directory's server when it runs (the recorded pid with its recorded start time)."""
        return recorded_pid(self.pid_file)

    # ------------------------------------------------------------------ start and stop

    def _start(self, timeout: float) -> None:
        """Start the server (or adopt the one already running for ``data_dir``) and wait until it serves;
        ``timeout`` counts from the launch. A server that does not serve in time is stopped."""
        if self.pid() is None:
            self._launch()
        else:
            self._adopt()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy():
                return
            if self.pid() is None:
                self._reap(wait=True)
                raise RuntimeFailure(f"{self.NAME} exited at start: {self._log_tail()}")
            time.sleep(self.POLL_SECONDS)
        self.stop()
        raise RuntimeFailure(f"{self.NAME} did not serve on {self.endpoint} within {timeout:.0f}s: {self._log_tail()}")

    def _adopt(self) -> None:
        """Serve from the running server: take the port it recorded, unless another port was asked for."""
        record = read_record(self.pid_file, ("port",))
        if record is not None:
            self._adopt_port(record["port"])

    def _adopt_port(self, recorded: int) -> None:
        if recorded == self.port:
            return
        if self._requested_port is not None:
            raise RuntimeFailure(
                f"{self.NAME} of {self.data_dir} already runs on port {recorded}, not {self.port}: stop it first"
            )
        self.port = recorded

    def _stop(self, timeout: float) -> bool:
        """Stop the recorded server (SIGTERM, then SIGKILL after ``timeout``); False when none was running."""
        killed = signal_recorded(self.pid_file, timeout, poll=lambda: self._reap(wait=False))
        if killed is None:
            self._reap(wait=False)
            self.pid_file.unlink(missing_ok=True)
            return False
        self._reap(wait=True)
        self._exited(killed=killed)
        self.pid_file.unlink(missing_ok=True)
        return True

    def _exited(self, *, killed: bool) -> None:  # noqa: B027  (a hook: most servers need nothing here)
        """Called by ``_stop`` once the server is gone, while its pid file is still there."""

    def _check_port(self, port: int, which: str = "port") -> None:
        """A RuntimeFailure when something else holds ``port`` (``which`` names it in the message)."""
        if port_in_use(port):
            raise RuntimeFailure(
                f"cannot start {self.NAME}: {which} {port} on {HOST} is already in use by another process "
                "(choose another port, or stop what listens there)"
            )

    def _spawn(
        self,
        argv: Sequence[str],
        output: IO[bytes],
        *,
        env: Mapping[str, str] | None = None,
        fields: Mapping[str, int | str] | None = None,
    ) -> None:
        """Run ``argv`` in ``data_dir`` in a new session, stdout and stderr to ``output``, and record its pid,
        start time and ``port`` (plus ``fields``) in the pid file."""
        proc = subprocess.Popen(
            list(argv),
            cwd=self.data_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._child = proc
        ticks = start_ticks(proc.pid)
        if ticks is None:
            raise RuntimeFailure(f"{self.NAME} exited at once: {self._log_tail()}")
        write_record(self.pid_file, {"pid": proc.pid, "start_ticks": ticks, "port": self.port, **(fields or {})})

    def _reap(self, wait: bool) -> None:
        """Collect the exit status of the process this handle started (if any), so it does not stay a zombie."""
        child = self._child
        if child is None:
            return
        if wait:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=5)
        if child.poll() is not None:
            self._child = None

    # ------------------------------------------------------------------ logs

    def _log_files(self) -> tuple[Path, ...]:
        """The files whose tails explain a failed start."""
        return (self.log_file,)

    def _log_tail(self, lines: int = 15) -> str:
        parts = []
        for path in self._log_files():
            try:
                text = path.read_text(errors="replace").splitlines()
            except OSError:
                continue
            if text:
                parts.append(f"see {path}:\n" + "\n".join(text[-lines:]))
        return "\n".join(parts) or f"no log in {self.data_dir}"


class CommandServer(ServerProcess):
    """A server whose command line its owner makes (``argv`` is called at each launch, so it may name binaries
    built after the handle was made): the processes of the dev Kubernetes control plane and node. A subclass
    sets the class attributes and implements ``endpoint`` and ``healthy``."""

    STOP_GRACE_SECONDS: ClassVar[float] = 10.0

    def __init__(
        self, data_dir: Path, port: int, argv: Callable[[], list[str]], *, env: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(data_dir, port)
        self.port = port
        self._argv = argv
        self._env = env

    def start(self, timeout: float = 60.0) -> None:
        self._start(timeout)

    def stop(self, timeout: float | None = None) -> bool:
        return self._stop(self.STOP_GRACE_SECONDS if timeout is None else timeout)

    def _launch(self) -> None:
        with self.log_file.open("ab") as out:
            self._spawn(self._argv(), out, env=self._env)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only (credentials, kubeconfigs)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
