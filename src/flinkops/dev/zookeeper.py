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
pid, and only when that pid still has the recorded start time (a recycled pid is never signalled): the process
plumbing is :mod:`flinkops.dev.process`.

Called by: tests and ``flinkops dev`` commands. Invariant: at most one server per ``data_dir``.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from flinkops.dev.process import HOST, ServerProcess, free_port
from flinkops.errors import RuntimeFailure
from flinkops.flink.distribution import FlinkDistribution, find_distribution

__all__ = ["ZooKeeperServer", "four_letter_word"]

MAIN_CLASS = "org.apache.flink.shaded.zookeeper3.org.apache.zookeeper.server.ZooKeeperServerMain"
FOUR_LETTER_WORDS = "srvr,ruok,mntr,cons,stat,conf"
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


class ZooKeeperServer(ServerProcess):
    """One standalone ZooKeeper server whose state lives in ``data_dir``.

    ``port=None`` reuses the port of an earlier run in the same ``data_dir`` (so the connect string that
    clusters were configured with stays valid), or picks a free one the first time.
    """

    NAME = "ZooKeeper"
    PID_FILE = _PID_FILE
    LOG_FILE = _LOG_FILE

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        distribution: FlinkDistribution | None = None,
        tick_ms: int = 500,
        heap: str = "256m",
    ) -> None:
        super().__init__(data_dir, port)
        self.port = port if port is not None else (self._configured_port() or free_port())
        self.tick_ms = tick_ms
        self.heap = heap
        self._distribution = distribution

    # ------------------------------------------------------------------ where things are

    @property
    def connect_string(self) -> str:
        """What clients put in ``high-availability.zookeeper.quorum``."""
        return f"{HOST}:{self.port}"

    @property
    def endpoint(self) -> str:
        return self.connect_string

    @property
    def config_file(self) -> Path:
        return self.data_dir / _CONFIG

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
        self._start(timeout)

    def stop(self, timeout: float = _STOP_GRACE_SECONDS) -> bool:
        """Stop the recorded server (SIGTERM, then SIGKILL after ``timeout``); False when none was running."""
        return self._stop(timeout)

    def _launch(self) -> None:
        self._check_port(self.port)
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
            self._spawn(argv, out)

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
