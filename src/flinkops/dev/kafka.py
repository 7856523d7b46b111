"""A single-node Apache Kafka broker (KRaft, broker and controller in one JVM) for local development and tests.

The broker runs from Maven Central jars, fetched once by :func:`flinkops.artifacts.maven_classpath`:
``org.apache.kafka:kafka_2.13`` plus ``log4j-slf4j-impl``, which Kafka 4.x leaves out of its POM (without it the
broker logs nothing); its version matches the ``log4j-core`` that Kafka's POM brings in. Everything else lives
in one directory::

    <data_dir>/server.properties   the configuration (ports, log dirs); rewritten at every start
    <data_dir>/log4j2.properties   logging to kafka.log (rolled at 10 MB, 3 kept)
    <data_dir>/data/               the KRaft log dirs (topics, offsets, cluster metadata): kept across stop/start
    <data_dir>/kafka.pid           pid, kernel start time and ports of the running broker
    <data_dir>/kafka.log           the broker's log; kafka.out has the JVM's own stdout and stderr

The storage is formatted (``kafka.tools.StorageTool format`` with a static ``controller.quorum.voters``, so no
``--standalone``) only while ``data/meta.properties`` is absent, so topics and their records survive restarts.
Both listeners bind 127.0.0.1: the client port (default 9092) and the controller port (default: the client port
plus one, or a free port when that is taken). ``port=None`` reuses the ports of an earlier run in the same
directory, so clients configured with them stay valid.

Settings mirror a production cluster where it matters to jobs and differ where one node forces it:
``auto.create.topics.enable=false`` (a missing topic is an error, as in production); replication factors and
min ISR 1; ``group.initial.rebalance.delay.ms=0`` (consumers start at once); internal topics with one partition
(creating 50 on a laptop is slow); ``transaction.max.timeout.ms`` one hour, because Flink's exactly-once Kafka
sink asks for one-hour transactions and the broker default (15 minutes) rejects them.

Starts are sped up by an AppCDS archive of the broker's classes, kept next to the jars (``<cache>/kafka-<version>/
cds/``): the first broker to stop cleanly writes it, later ones map it (see ``_class_data_archive``).

``healthy()`` is protocol-level: an ApiVersions request over a socket (the broker only serves requests once its
startup is complete). The process runs in its own session and outlives its starter; ``stop`` signals only the
recorded pid, and only while it still has the recorded start time (a recycled pid is never signalled): the
process plumbing is :mod:`flinkops.dev.process`.

Called by: ``flinkops.dev.services`` (``flinkops dev``) and tests. Invariant: at most one broker per ``data_dir``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flinkops.artifacts import maven_classpath
from flinkops.dev.process import HOST, ServerProcess, neighbour_port, read_record
from flinkops.errors import RuntimeFailure

__all__ = ["DEFAULT_PORT", "KAFKA_VERSION", "KafkaBroker", "api_versions", "kafka_classpath"]

KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
LOG4J_VERSION = "2.24.3"  # the log4j-core that kafka_2.13 4.1.1 depends on
COORDINATES = (
    f"org.apache.kafka:kafka_{SCALA_VERSION}:{KAFKA_VERSION}",
    f"org.apache.logging.log4j:log4j-slf4j-impl:{LOG4J_VERSION}",
)
DEFAULT_PORT = 9092
NODE_ID = 1
_CONFIG = "server.properties"
_LOG_CONFIG = "log4j2.properties"
_PID_FILE = "kafka.pid"
_LOG_FILE = "kafka.log"
_OUT_FILE = "kafka.out"
_DATA = "data"
_STOP_GRACE_SECONDS = 30.0
_API_VERSIONS_KEY = 18
_CLIENT_LOG = logging.getLogger("flinkops.dev.kafka.client")

_LOG4J = """\
# Written by flinkops; rewritten at every start.
status = warn
appender.file.type = RollingFile
appender.file.name = File
appender.file.fileName = {log}
appender.file.filePattern = {log}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 10MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = File
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.network.name = kafka.network.RequestChannel$
logger.network.level = WARN
"""


def kafka_classpath(progress: Callable[[str], None] | None = None) -> Path:
    """The directory of the broker's jars (fetched with Maven the first time)."""
    return maven_classpath(f"kafka-{KAFKA_VERSION}", COORDINATES, progress=progress)


def api_versions(host: str, port: int, timeout: float = 2.0) -> int:
    """Send a Kafka ApiVersions (v0) request; return how many APIs the broker lists. Raises OSError when
    nothing answers and ValueError when the answer is not a successful ApiVersions response."""
    client_id = b"flinkops"
    correlation = 0x0F1C
    body = struct.pack(">hhih", _API_VERSIONS_KEY, 0, correlation, len(client_id)) + client_id
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _recv_exactly(sock, 4))[0]
        if not 10 <= size <= 1 << 20:
            raise ValueError(f"unexpected ApiVersions response size {size}")
        answer = _recv_exactly(sock, size)
    got_correlation, error_code, count = struct.unpack(">ihi", answer[:10])
    if got_correlation != correlation or error_code != 0:
        raise ValueError(f"ApiVersions answered correlation {got_correlation}, error code {error_code}")
    return int(count)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    while size > 0:
        chunk = sock.recv(size)
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _cluster_id() -> str:
    """A KRaft cluster id as ``StorageTool random-uuid`` makes one (22 url-safe base64 characters), without
    starting a JVM for it. Kafka rejects ids that start with '-'; draw again then."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):
            return text


def _class_data_archive(java: str, lib: Path) -> tuple[Path, Path | None]:
    """The AppCDS archive for this JVM and classpath, and None when it exists; else where this start should
    write it (a pending file, moved into place by ``stop`` once the JVM has exited cleanly and written it).

    Loading Kafka's and Scala's classes dominates the broker's start; a dynamic class-data archive (written by
    ``-XX:ArchiveClassesAtExit`` when a broker exits, mapped by ``-XX:SharedArchiveFile``) roughly halves it.
    The archive is keyed by the java binary and the classpath directory, and a JVM that finds it does not match
    ignores it (``-Xshare:auto``), so a stale one costs nothing but its speed-up.
    """
    real = Path(java).resolve()
    try:
        key = f"{real}:{real.stat().st_mtime_ns}:{lib}:{lib.stat().st_mtime_ns}"
    except OSError:
        key = f"{real}:{lib}"
    archive = lib.parent / "cds" / f"kafka-{hashlib.sha256(key.encode()).hexdigest()[:16]}.jsa"
    if archive.is_file():
        return archive, None
    archive.parent.mkdir(parents=True, exist_ok=True)
    for stale in archive.parent.glob("*.pending"):
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > 3600:  # left by a broker that never stopped cleanly
                stale.unlink()
    return archive, archive.with_name(f"{archive.stem}.{uuid.uuid4().hex[:8]}.pending")


def _promote_archive(pending: Path, *, complete: bool) -> None:
    """Move a class-data archive written at a clean exit into place (first one wins); drop anything else."""
    final = pending.with_name(pending.name.split(".", 1)[0] + ".jsa")
    with contextlib.suppress(OSError):
        if complete and pending.is_file() and pending.stat().st_size > 0 and not final.exists():
            os.replace(pending, final)
        else:
            pending.unlink(missing_ok=True)


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and os.access(Path(home) / "bin" / "java", os.X_OK):
        return str(Path(home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise RuntimeFailure(
            "no `java` on PATH: the Kafka broker needs Java 17 or newer (apt-get install openjdk-17-jre)"
        )
    return java


class KafkaBroker(ServerProcess):
    """One single-node KRaft broker whose state lives in ``data_dir``.

    ``port``/``controller_port`` of None reuse the ports of an earlier run in ``data_dir``; the first time, the
    client port defaults to 9092 and the controller port to the client port plus one (a free port if that is
    taken).
    """

    NAME = "the Kafka broker"
    PID_FILE = _PID_FILE
    LOG_FILE = _LOG_FILE
    POLL_SECONDS = 0.2

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        controller_port: int | None = None,
        *,
        heap: str = "512m",
        progress: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(data_dir, port)
        configured = self._configured_ports()
        self.port = port if port is not None else (configured[0] if configured else DEFAULT_PORT)
        if controller_port is not None:
            self.controller_port = controller_port
        elif configured and configured[1] != self.port:
            self.controller_port = configured[1]
        else:
            self.controller_port = neighbour_port(self.port)
        self.heap = heap
        self.progress = progress

    # ------------------------------------------------------------------ where things are

    @property
    def bootstrap_servers(self) -> str:
        """What clients put in ``bootstrap.servers``."""
        return f"{HOST}:{self.port}"

    @property
    def endpoint(self) -> str:
        return self.bootstrap_servers

    @property
    def config_file(self) -> Path:
        return self.data_dir / _CONFIG

    @property
    def out_file(self) -> Path:
        return self.data_dir / _OUT_FILE

    @property
    def log_dirs(self) -> Path:
        return self.data_dir / _DATA

    def _configured_ports(self) -> tuple[int, int] | None:
        """(client, controller) ports from the ``listeners`` line of an earlier run's server.properties."""
        try:
            lines = self.config_file.read_text().splitlines()
        except OSError:
            return None
        ports: dict[str, int] = {}
        for line in lines:
            key, _, value = line.partition("=")
            if key.strip() != "listeners":
                continue
            for listener in value.split(","):
                name, _, address = listener.strip().partition("://")
                port_text = address.rpartition(":")[2]
                if port_text.isdigit():
                    ports[name] = int(port_text)
        if "PLAINTEXT" in ports and "CONTROLLER" in ports:
            return ports["PLAINTEXT"], ports["CONTROLLER"]
        return None

    # ------------------------------------------------------------------ state

    def healthy(self) -> bool:
        """True when the broker answers an ApiVersions request on its client port."""
        try:
            return api_versions(HOST, self.port) > 0
        except (OSError, ValueError):
            return False

    # ------------------------------------------------------------------ start and stop

    def start(self, timeout: float = 90.0) -> None:
        """Start the broker (or adopt the one already running for ``data_dir``) and wait until it serves.
        The first start fetches the jars with Maven (reported through ``progress``); ``timeout`` counts from
        the launch."""
        self._start(timeout)

    def stop(self, timeout: float = _STOP_GRACE_SECONDS) -> bool:
        """Stop the recorded broker (SIGTERM: a controlled shutdown; SIGKILL after ``timeout``). Its data stays.
        False when none was running."""
        return self._stop(timeout)

    def _adopt(self) -> None:
        """Serve from the running broker: take both ports it recorded, unless another client port was asked for."""
        record = read_record(self.pid_file, ("port", "controller_port"))
        if record is not None:
            self._adopt_port(record["port"])
            self.controller_port = record["controller_port"]

    def _exited(self, *, killed: bool) -> None:
        """Promote the class-data archive that this broker wrote at a clean exit (a killed one wrote none)."""
        pending = self._pending_archive()
        if pending is not None:
            _promote_archive(pending, complete=not killed)

    def _pending_archive(self) -> Path | None:
        try:
            value = json.loads(self.pid_file.read_text()).get("cds_pending")
        except (OSError, ValueError, AttributeError):
            return None
        return Path(value) if isinstance(value, str) and value else None

    def _launch(self) -> None:
        self._check_port(self.port, "its client port")
        self._check_port(self.controller_port, "its controller port")
        java = _java()
        lib = kafka_classpath(self.progress)
        # Explicit and sorted (not lib/*): a class-data archive is only valid for the exact same classpath.
        classpath = os.pathsep.join(sorted(str(jar) for jar in lib.glob("*.jar")))
        archive, pending = _class_data_archive(java, lib)
        cds = [f"-XX:SharedArchiveFile={archive}"] if pending is None else [f"-XX:ArchiveClassesAtExit={pending}"]
        cds.append("-Xlog:cds*=off")  # the archive dump lists every class it skips; none of that matters here
        self.log_dirs.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(self._config_text())
        (self.data_dir / _LOG_CONFIG).write_text(_LOG4J.format(log=self.log_file))
        if not (self.log_dirs / "meta.properties").exists():
            self._format(java, classpath)
        argv = [
            java,
            f"-Xmx{self.heap}",
            "-Xms64m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",  # faster start; throughput is plenty for development
            *cds,
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / _LOG_CONFIG}",
            "-Dlog4j2.shutdownHookEnabled=false",  # the file appender flushes every line; no late-shutdown noise
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            classpath,
            "kafka.Kafka",
            str(self.config_file),
        ]
        fields: dict[str, int | str] = {"controller_port": self.controller_port}
        if pending is not None:
            fields["cds_pending"] = str(pending)
        with self.out_file.open("ab") as out:
            self._spawn(argv, out, fields=fields)

    def _format(self, java: str, classpath: str) -> None:
        """Format the (empty) log dirs for a new single-node cluster."""
        argv = [
            java,
            "-Xmx256m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            f"-Dlog4j2.configurationFile={self.data_dir / _LOG_CONFIG}",
            "-cp",
            classpath,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            _cluster_id(),
            "-c",
            str(self.config_file),
        ]
        with self.out_file.open("ab") as out:
            done = subprocess.run(
                argv, cwd=self.data_dir, stdin=subprocess.DEVNULL, stdout=out, stderr=out, check=False
            )
        if done.returncode != 0:
            raise RuntimeFailure(
                f"formatting the Kafka storage in {self.log_dirs} failed (exit code {done.returncode}): "
                f"{self._log_tail()}"
            )

    def _config_text(self) -> str:
        settings = {
            "process.roles": "broker,controller",
            "node.id": str(NODE_ID),
            "controller.quorum.voters": f"{NODE_ID}@{HOST}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.log_dirs),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.num.partitions": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.max.timeout.ms": "3600000",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.num.partitions": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "log.retention.hours": "168",
        }
        header = "# Written by flinkops for a local single-node KRaft broker; rewritten at every start.\n"
        return header + "".join(f"{key}={value}\n" for key, value in settings.items())

    def _log_files(self) -> tuple[Path, ...]:
        return (self.out_file, self.log_file)

    # ------------------------------------------------------------------ topics (needs confluent-kafka)

    def create_topic(self, name: str, partitions: int = 1, *, timeout: float = 30.0) -> bool:
        """Create ``name`` with ``partitions`` partitions (replication factor 1); False when it already existed.
        Needs the ``confluent-kafka`` package (``pip install 'flinkops[kafka]'``)."""
        module = _confluent_admin()
        admin = module.AdminClient(self._client_config())
        futures = admin.create_topics(
            [module.NewTopic(name, num_partitions=partitions, replication_factor=1)],
            request_timeout=timeout,
            operation_timeout=timeout,
        )
        failure = ""
        try:
            futures[name].result(timeout=timeout)
        except Exception as exc:
            code = getattr(exc.args[0], "code", None) if exc.args else None  # a KafkaException's KafkaError
            if callable(code) and code() == module.KafkaError.TOPIC_ALREADY_EXISTS:
                return False
            failure = str(exc)
        finally:
            # The failed future's traceback refers to this frame: drop both now, or the client (and its
            # reconnect attempts) lives until the garbage collector finds the cycle.
            futures.clear()
            del admin
        if failure:
            raise RuntimeFailure(f"could not create topic {name!r} on {self.bootstrap_servers}: {failure}")
        return True

    def topics(self, *, timeout: float = 10.0) -> dict[str, int]:
        """Topic name -> partition count (internal topics such as ``__consumer_offsets`` left out)."""
        admin = _confluent_admin().AdminClient(self._client_config())
        try:
            metadata = admin.list_topics(timeout=timeout)
        except Exception as exc:
            failure = str(exc)
        else:
            return {
                name: len(topic.partitions)
                for name, topic in sorted(metadata.topics.items())
                if not name.startswith("__")
            }
        finally:
            del admin
        raise RuntimeFailure(f"could not list topics on {self.bootstrap_servers}: {failure}")

    def _client_config(self) -> dict[str, Any]:
        # librdkafka's own log lines (connection refused while the broker restarts...) go to Python logging.
        return {"bootstrap.servers": self.bootstrap_servers, "logger": _CLIENT_LOG}


def _confluent_admin() -> Any:
    """``confluent_kafka.admin``, imported here so that flinkops works without the optional package."""
    try:
        from confluent_kafka import admin
    except ImportError as exc:
        raise RuntimeFailure(
            "managing Kafka topics needs the confluent-kafka package: pip install 'flinkops[kafka]'"
        ) from exc
    return admin
