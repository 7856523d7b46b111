"""A standalone ZooKeeper server for local high availability, run from the Flink distribution itself.

``lib/flink-dist-*.jar`` carries a complete (shaded) ZooKeeper server, so no separate download is needed:
``ZooKeeperServerMain`` reads a ``zoo.cfg`` that this module writes. Everything lives in one directory::

    <data_dir>/zoo.cfg            the configuration (client port, data directory, timeouts)
    <data_dir>/data/              snapshots and transaction logs: kept across stop/start
    <data_dir>/zookeeper.pid      pid and kernel start time of the running server
    <data_dir>/zookeeper.log      the server's log

The server binds 127.0.0.1 only and enables the ``srvr``/``ruok``/``mntr``/``cons`` four-letter commands,
which ``healthy()`` uses for a protocol-level check (a listening socket alone does not mean it serves). The
session timeout bounds are wide (``minSessionTimeout`` 1 s) so clients such as Flink get the short timeouts
they ask for. The process runs in its own session and outlives its starter; ``stop`` acts only on the recorded
pid, and only when that pid still has the recorded start time (a recycled pid is never signalled).

Called by: tests and ``flinkops dev`` commands. Invariant: at most one server per ``data_dir``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from flinkops.errors import RuntimeFailure
from flinkops.flink.distribution import FlinkDistribution, find_distribution
from flinkops.runtimes.local.runtime import start_ticks

__all__ = ["ZooKeeperServer", "four_letter_word"]

MAIN_CLASS = "org.apache.flink.shaded.zookeeper3.org.apache.zookeeper.server.ZooKeeperServerMain"
FOUR_LETTER_WORDS = "srvr,ruok,mntr,cons,stat,conf"
HOST = "127.0.0.1"
_CONFIG = "zoo.cfg"
_PID_FILE = "zookeeper.pid"
_LOG_FILE = "zookeeper.log"
_LOG_CONFIG = "log4j2.properties"
_STOP_GRACE_SECONDS = 10.0

_LOG4J = """\
rootLogger.level = INFO
rootLogger.appenderRef.console.ref = ConsoleAppender
appender.console.name = ConsoleAppender
appender.console.type = CONSOLE
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yyyy-MM-dd HH:mm:ss,SSS} %-5p %-60c %x - %m%n
"""


def four_letter_word(host: str, port: int, word: str, timeout: float = 2.0) -> str:
    """Send a ZooKeeper four-letter command and return the whole answer (the server closes after it)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(word.encode("ascii"))
        chunks: list[bytes] = []
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def _port_in_use(port: int) -> bool:
    """True when something listens on 127.0.0.1:``port`` (ZooKeeper binds with SO_REUSEADDR, so do we)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class ZooKeeperServer:
    """One standalone ZooKeeper server whose state lives in ``data_dir``.

    ``port=None`` reuses the port of an earlier run in the same ``data_dir`` (so the connect string that
    clusters were configured with stays valid), or picks a free one the first time.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        distribution: FlinkDistribution | None = None,
        tick_ms: int = 500,
        heap: str = "256m",
    ) -> None:
        self.data_dir = data_dir.resolve()
        self._requested_port = port
        self.port = port if port is not None else (self._configured_port() or _free_port())
        self.tick_ms = tick_ms
        self.heap = heap
        self._distribution = distribution
        self._child: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ where things are

    @property
    def connect_string(self) -> str:
        """What clients put in ``high-availability.zookeeper.quorum``."""
        return f"{HOST}:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.data_dir / _CONFIG

    @property
    def pid_file(self) -> Path:
        return self.data_dir / _PID_FILE

    @property
    def log_file(self) -> Path:
        return self.data_dir / _LOG_FILE

    def _configured_port(self) -> int | None:
        try:
            lines = (self.data_dir / _CONFIG).read_text().splitlines()
        except OSError:
            return None
        for line in lines:
            key, _, value = line.partition("=")
            if key.strip() == "clientPort" and value.strip().isdigit():
                return int(value.strip())
        return None

    # ------------------------------------------------------------------ state

    def pid(self) -> int | None:
        """The pid of this directory's server when it runs (the recorded pid with its recorded start time)."""
        try:
            data = json.loads(self.pid_file.read_text())
            pid, ticks = int(data["pid"]), int(data["start_ticks"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return pid if start_ticks(pid) == ticks else None

    def _recorded_port(self) -> int | None:
        try:
            return int(json.loads(self.pid_file.read_text())["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def healthy(self) -> bool:
        """True when the server answers ``srvr`` as a serving server (standalone, leader or follower)."""
        try:
            answer = four_letter_word(HOST, self.port, "srvr")
        except OSError:
            return False
        return "Mode: " in answer

    # ------------------------------------------------------------------ start and stop

    def start(self, timeout: float = 30.0) -> None:
        """Start the server (or adopt the one already running for ``data_dir``) and wait until it serves."""
        deadline = time.monotonic() + timeout
        if self.pid() is None:
            self._launch()
        else:
            recorded = self._recorded_port()
            if recorded is not None and recorded != self.port:
                if self._requested_port is not None:
                    raise RuntimeFailure(
                        f"the ZooKeeper of {self.data_dir} already runs on port {recorded}, not {self.port}: "
                        "stop it first"
                    )
                self.port = recorded
        while time.monotonic() < deadline:
            if self.healthy():
                return
            if self.pid() is None:
                raise RuntimeFailure(f"ZooKeeper exited at start: {self._log_tail()}")
            time.sleep(0.1)
        self.stop()
        raise RuntimeFailure(
            f"ZooKeeper did not serve on {self.connect_string} within {timeout:.0f}s: {self._log_tail()}"
        )

    def stop(self, timeout: float = _STOP_GRACE_SECONDS) -> bool:
        """Stop the recorded server (SIGTERM, then SIGKILL after ``timeout``); False when none was running."""
        pid = self.pid()
        if pid is None:
            self._reap(wait=False)
            self.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.pid() is not None and time.monotonic() < deadline:
            self._reap(wait=False)
            time.sleep(0.05)
        if self.pid() is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while self.pid() is not None:
                self._reap(wait=False)
                time.sleep(0.02)
        self._reap(wait=True)
        self.pid_file.unlink(missing_ok=True)
        return True

    def _launch(self) -> None:
        if _port_in_use(self.port):
            raise RuntimeFailure(
                f"cannot start ZooKeeper: port {self.port} on {HOST} is already in use by another process "
                "(choose another port, or stop what listens there)"
            )
        dist = self._distribution or find_distribution()
        dist_jars = sorted(dist.lib.glob("flink-dist-*.jar"))
        if not dist_jars:
            raise RuntimeFailure(f"no flink-dist jar in {dist.lib}: cannot run ZooKeeper from the distribution")
        classpath = [*dist_jars, *sorted(dist.lib.glob("log4j-*.jar"))]
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(self._config_text())
        (self.data_dir / _LOG_CONFIG).write_text(_LOG4J)
        argv = [
            dist.java,
            f"-Xmx{self.heap}",
            "-XX:+UseSerialGC",
            f"-Dlog4j.configurationFile={self.data_dir / _LOG_CONFIG}",
            "-Dzookeeper.admin.enableServer=false",
            f"-Dzookeeper.4lw.commands.whitelist={FOUR_LETTER_WORDS}",
            "-cp",
            os.pathsep.join(str(jar) for jar in classpath),
            MAIN_CLASS,
            str(self.config_file),
        ]
        with self.log_file.open("ab") as out:
            proc = subprocess.Popen(
                argv,
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._child = proc
        ticks = start_ticks(proc.pid)
        if ticks is None:
            raise RuntimeFailure(f"ZooKeeper exited at once: {self._log_tail()}")
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": proc.pid, "start_ticks": ticks, "port": self.port}))
        os.replace(tmp, self.pid_file)

    def _config_text(self) -> str:
        settings = {
            "tickTime": str(self.tick_ms),
            "dataDir": str(self.data_dir / "data"),
            "clientPort": str(self.port),
            "clientPortAddress": HOST,
            # Let clients choose short sessions (Flink's HA failover time is bounded by the session timeout).
            "minSessionTimeout": "1000",
            "maxSessionTimeout": "120000",
            "maxClientCnxns": "0",  # every client is on 127.0.0.1: no per-address cap
            "admin.enableServer": "false",
            "4lw.commands.whitelist": FOUR_LETTER_WORDS,
            "autopurge.snapRetainCount": "3",
            "autopurge.purgeInterval": "1",
        }
        header = "# Written by flinkops for a local standalone ZooKeeper; rewritten at every start.\n"
        return header + "".join(f"{key}={value}\n" for key, value in settings.items())

    def _reap(self, wait: bool) -> None:
        child = self._child
        if child is None:
            return
        if wait:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=5)
        if child.poll() is not None:
            self._child = None

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return f"no log at {self.log_file}"
        tail = "\n".join(text[-lines:])
        return f"see {self.log_file}:\n{tail}"
