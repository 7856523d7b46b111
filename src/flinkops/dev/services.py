"""The local services behind ``flinkops dev``: Kafka, an S3 store, ZooKeeper and a Kubernetes control plane, each
made of real server processes.

``DevServices(home)`` keeps each service's configuration, data, pid file and log under
``<home>/dev/<service>/`` (``home`` is ``$FLINKOPS_HOME``), so several homes can run side by side on different
ports, and everything of one home goes away with it. The services themselves live in
:mod:`flinkops.dev.kafka` (single-node KRaft broker), :mod:`flinkops.dev.s3` (single-drive MinIO) and
:mod:`flinkops.dev.zookeeper` (the ZooKeeper inside the Flink distribution) and :mod:`flinkops.dev.kubernetes`
(etcd, kube-apiserver and kube-controller-manager; opt-in: ``up`` without names leaves it out), all on the process
plumbing of :mod:`flinkops.dev.process`. On request the control plane gets a real node (:mod:`flinkops.dev.node`:
containerd, kubelet, kube-proxy, kube-scheduler, CoreDNS; one per machine): :meth:`DevServices.up_node`; ``down``
of ``kubernetes`` stops that node first and restores the host settings it changed.

Invariants:

* ``up`` is idempotent: a service that runs and answers is left alone; one that runs on another port than the
  one asked for is an error, never a second instance. Data survives ``down``/``up``.
* Before a start, a port that something else holds is reported with the service and the option that picks
  another port; nothing is started for that service.
* ``up`` and ``down`` of one home serialise on a lock file, so two concurrent commands never start two
  processes for one data directory.
* Reading state (``status``, ``s3_settings``, ``kafka_bootstrap``) starts nothing, builds nothing and downloads
  nothing; the controller calls these on its own schedule.
* Default ports are the usual ones (Kafka 9092, S3 9000, ZooKeeper 2181, Kubernetes API 6443); a port once used
  is kept for later ``up`` calls (clients configured with it stay valid) until another is asked for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flinkops.artifacts import file_lock
from flinkops.dev import DEFAULT_SERVICES, PORT_OPTIONS, SERVICES
from flinkops.dev.kafka import KafkaBroker, kafka_classpath
from flinkops.dev.kubernetes import KubeControlPlane, control_plane_binaries
from flinkops.dev.node.config import BRIDGE_IP as NODE_BRIDGE_IP
from flinkops.dev.process import HOST, ServerProcess, port_in_use, read_record
from flinkops.dev.s3 import MinioServer, ensure_bucket, minio_binary, read_credentials, s3_client
from flinkops.dev.zookeeper import ZooKeeperServer
from flinkops.errors import InvalidInput, Problem, RuntimeFailure
from flinkops.s3 import DevS3

if TYPE_CHECKING:
    from flinkops.dev.node.node import KubeNode

__all__ = [
    "DEFAULT_PORTS",
    "DEFAULT_SERVICES",
    "PORT_OPTIONS",
    "SERVICES",
    "DevServices",
    "NodeStatus",
    "ServiceStatus",
    "port_in_use",
]

DEFAULT_PORTS: Mapping[str, int] = {"kafka": 9092, "s3": 9000, "zookeeper": 2181, "kubernetes": 6443}
START_TIMEOUTS: Mapping[str, float] = {"kafka": 120.0, "s3": 60.0, "zookeeper": 60.0, "kubernetes": 240.0}
_CONFIG_FILES: Mapping[str, str] = {
    "kafka": "server.properties",
    "s3": "server.json",
    "zookeeper": "zoo.cfg",
    "kubernetes": "control-plane.json",
}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class NodeStatus:
    running: bool
    healthy: bool
    pids: dict[str, int | None]
    root: Path

    def to_json(self) -> dict[str, Any]:
        return {"running": self.running, "healthy": self.healthy, "pids": self.pids, "root": str(self.root)}


def _node_status(node: KubeNode) -> NodeStatus:
    pids = node.pids()
    running = any(pid is not None for pid in pids.values())
    return NodeStatus(running, running and node.healthy(), pids, node.root)


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    running: bool
    healthy: bool
    pid: int | None
    endpoint: str | None  # where clients connect (None before the first start)
    data_dir: Path
    log_file: Path

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "running": self.running,
            "healthy": self.healthy,
            "pid": self.pid,
            "endpoint": self.endpoint,
            "dataDir": str(self.data_dir),
            "logFile": str(self.log_file),
        }


def check_names(names: Iterable[str]) -> list[str]:
    """The given service names in canonical order, without duplicates; InvalidInput for an unknown one."""
    given = list(names)
    unknown = [n for n in given if n not in SERVICES]
    if unknown:
        raise InvalidInput(
            [
                Problem(path=n, message="unknown dev service", hint=f"valid services: {', '.join(SERVICES)}")
                for n in unknown
            ]
        )
    return [n for n in SERVICES if n in given]


class DevServices:
    """The dev services of one flinkops home."""

    def __init__(self, home: Path) -> None:
        self.home = home.resolve()
        self.root = self.home / "dev"

    def data_dir(self, name: str) -> Path:
        return self.root / name

    # ------------------------------------------------------------------ reading state (starts nothing)

    def status(self, names: Sequence[str] = SERVICES) -> list[ServiceStatus]:
        return [self._status(name) for name in check_names(names)]

    def s3_settings(self) -> DevS3 | None:
        """Endpoint and root credentials of this home's dev S3 while it runs; None otherwise."""
        server = MinioServer(self.data_dir("s3"))
        credentials = read_credentials(server.data_dir)
        if credentials is None or server.pid() is None:
            return None
        return DevS3(server.endpoint, credentials.access_key, credentials.secret_key)

    def kafka_bootstrap(self) -> str | None:
        """``bootstrap.servers`` of this home's dev Kafka while it runs; None otherwise."""
        broker = self._server("kafka")
        return broker.bootstrap_servers if isinstance(broker, KafkaBroker) and broker.pid() is not None else None

    def zookeeper_connect(self) -> str | None:
        """The connect string of this home's dev ZooKeeper while it runs; None otherwise."""
        server = self._server("zookeeper")
        return server.connect_string if isinstance(server, ZooKeeperServer) and server.pid() is not None else None

    def kubeconfig(self) -> Path | None:
        """The admin kubeconfig of this home's dev Kubernetes control plane while its apiserver runs; None
        otherwise."""
        plane = self._server("kubernetes")
        if isinstance(plane, KubeControlPlane) and plane.pid() is not None and plane.kubeconfig.exists():
            return plane.kubeconfig
        return None

    # ------------------------------------------------------------------ up and down

    def up(
        self,
        names: Sequence[str] = DEFAULT_SERVICES,
        ports: Mapping[str, int] = {},  # read only
        progress: Progress | None = None,
    ) -> list[ServiceStatus]:
        """Start the named services (those not running yet) and wait until each serves. Services start in
        parallel; when some fail, the others still start, and one RuntimeFailure names every failure."""
        wanted = check_names(names)
        bad_ports = [n for n in ports if n not in SERVICES]
        if bad_ports:
            check_names(bad_ports)
        say = progress or (lambda _message: None)
        with file_lock(self.root / ".lock"):
            servers = {name: self._server(name, ports.get(name), say) for name in wanted}
            to_start = {name: server for name, server in servers.items() if not self._serving(name, server, ports)}
            launching = [name for name, server in to_start.items() if server.pid() is None]
            for name in launching:
                self._check_ports(name, to_start[name])
            # Downloads and builds first, one at a time in this thread: their progress reads in order, and
            # Ctrl-C stops a build at once (the parallel starts below only wait for processes).
            if "kafka" in launching:
                kafka_classpath(say)
            if "s3" in launching:
                minio_binary(say)
            if "kubernetes" in launching:
                control_plane_binaries(say)
            failures: dict[str, str] = {}
            lock = threading.Lock()

            def start(name: str, server: ServerProcess) -> None:
                started = time.monotonic()
                say(f"starting {name} on {server.endpoint} (data in {server.data_dir})")
                try:
                    server.start(timeout=START_TIMEOUTS[name])
                except Exception as exc:  # reported below with the other services' outcome
                    with lock:
                        failures[name] = str(exc)
                    return
                say(f"{name} ready in {time.monotonic() - started:.1f}s")

            with ThreadPoolExecutor(max_workers=max(1, len(to_start))) as pool:
                for future in [pool.submit(start, name, server) for name, server in to_start.items()]:
                    future.result()
            if failures:
                detail = "\n".join(f"{name}: {message}" for name, message in failures.items())
                raise RuntimeFailure(f"could not start {', '.join(failures)}:\n{detail}")
        return [self._status(name, servers[name]) for name in wanted]

    def up_node(self, progress: Progress | None = None, usrlib: Mapping[str, Path] = {}) -> NodeStatus:  # read only
        """Start the real node of this home's running control plane (building its binaries and images first, once)
        and wait until it is Ready. The Flink image carries the examples' jar (in a source checkout) and ``usrlib``
        (more job jars baked into /opt/flink/usrlib: file name -> jar)."""
        from flinkops.dev.node.node import KubeNode

        plane = self._server("kubernetes")
        if not isinstance(plane, KubeControlPlane) or plane.pid() is None:
            raise RuntimeFailure("the Kubernetes control plane is not running: `flinkops dev up kubernetes --node`")
        say = progress or (lambda _message: None)
        from flinkops.dev.node.image import example_jars

        node = KubeNode(plane, usrlib={**example_jars(say), **usrlib}, progress=say)
        started = time.monotonic()
        say(f"starting the Kubernetes node on {NODE_BRIDGE_IP} (state in {node.root})")
        node.start()
        say(f"node ready in {time.monotonic() - started:.1f}s")
        return _node_status(node)

    def down_node(self) -> list[str] | None:
        """Stop this home's node and restore the host; None when this home has no node, else what could not be
        restored (empty: everything is back)."""
        node = self._node()
        return None if node is None else node.stop()

    def node_status(self) -> NodeStatus | None:
        """The node of this home's control plane (None when it has none)."""
        node = self._node()
        return None if node is None else _node_status(node)

    def _node(self) -> KubeNode | None:
        """The machine's node when it was last started for this home's control plane."""
        from flinkops.dev.node.node import KubeNode

        plane = self._server("kubernetes")
        if not isinstance(plane, KubeControlPlane):
            return None
        node = KubeNode(plane)
        return node if node.owner() == str(plane.data_dir) else None

    def down(self, names: Sequence[str] = SERVICES) -> list[str]:
        """Stop the named services; their data stays. Returns the names of those that were running. Stopping
        ``kubernetes`` stops its node first (RuntimeFailure when the host could not be fully restored)."""
        wanted = check_names(names)
        if "kubernetes" in wanted:
            problems = self.down_node()
            if problems:
                raise RuntimeFailure(
                    "the Kubernetes node stopped, but the host is not fully restored: " + "; ".join(problems)
                )
        with file_lock(self.root / ".lock"):
            servers = {name: self._server(name) for name in wanted}
            stopped: list[str] = []
            with ThreadPoolExecutor(max_workers=max(1, len(servers))) as pool:
                results = {name: pool.submit(server.stop) for name, server in servers.items()}
                for name, result in results.items():
                    if result.result():
                        stopped.append(name)
        return stopped

    # ------------------------------------------------------------------ using a running service

    def s3(self) -> Any:
        """A boto3 client for the running dev S3."""
        settings = self.s3_settings()
        if settings is None:
            raise RuntimeFailure("the dev S3 server is not running: start it with `flinkops dev up s3`")
        return s3_client(settings.endpoint, settings.access_key, settings.secret_key)

    def create_bucket(self, name: str, *, versioned: bool = False) -> bool:
        """Create a bucket on the running dev S3 (True when it was new)."""
        return ensure_bucket(self.s3(), name, versioned=versioned)

    def create_topic(self, name: str, partitions: int = 1) -> bool:
        """Create a topic on the running dev Kafka (True when it was new)."""
        broker = self._server("kafka")
        if not isinstance(broker, KafkaBroker) or broker.pid() is None:
            raise RuntimeFailure("the dev Kafka broker is not running: start it with `flinkops dev up kafka`")
        return broker.create_topic(name, partitions)

    def log_files(self, name: str) -> list[Path]:
        """The log files of a service, main log last (Kafka also has the JVM's own output)."""
        server = self._server(check_names([name])[0])
        if isinstance(server, KubeControlPlane):
            return [server.etcd.log_file, server.controller_manager.log_file, server.apiserver.log_file]
        files = [server.out_file] if isinstance(server, KafkaBroker) else []
        return [*files, server.log_file]

    # ------------------------------------------------------------------ internals

    def _server(self, name: str, port: int | None = None, progress: Progress | None = None) -> ServerProcess:
        """The server object of ``name``: ``port`` if given, else the port of its last start, else the default."""
        data_dir = self.data_dir(name)
        if port is None and not (data_dir / _CONFIG_FILES[name]).exists():
            port = DEFAULT_PORTS[name]
        if name == "kubernetes":
            return KubeControlPlane(data_dir, port, progress=progress)
        if name == "kafka":
            return KafkaBroker(data_dir, port, progress=progress)
        if name == "s3":
            return MinioServer(data_dir, port, progress=progress)
        return ZooKeeperServer(data_dir, port)

    def _serving(self, name: str, server: ServerProcess, ports: Mapping[str, int]) -> bool:
        """True when ``server`` already runs and serves; an error when it runs on another port than asked."""
        pid = server.pid()
        if pid is None:
            return False
        record = read_record(server.pid_file, ("port",))
        running_port = record["port"] if record is not None else None
        asked = ports.get(name)
        if asked is not None and running_port is not None and asked != running_port:
            raise RuntimeFailure(
                f"{name} already runs on port {running_port} (pid {pid}), not {asked}: "
                f"stop it first with `flinkops dev down {name}`, or leave out {PORT_OPTIONS[name]}"
            )
        return server.healthy()

    def _check_ports(self, name: str, server: ServerProcess) -> None:
        if isinstance(server, KubeControlPlane):
            taken = server.taken_ports()
        else:
            ports = [("port", server.port)]
            if isinstance(server, KafkaBroker):
                ports.append(("controller port", server.controller_port))
            taken = [(what, port) for what, port in ports if port_in_use(port)]
        if not taken:
            return
        what, port = taken[0]
        if port == server.port:
            raise RuntimeFailure(
                f"cannot start {name}: port {port} on {HOST} is already in use by another process. "
                f"Choose another port with `flinkops dev up {name} {PORT_OPTIONS[name]} PORT`, or stop what "
                "listens there"
            )
        raise RuntimeFailure(
            f"cannot start {name}: its {what} {port} on {HOST} is already in use by another process "
            f"(stop what listens there; the port was chosen at the first start in {server.data_dir})"
        )

    def _status(self, name: str, server: ServerProcess | None = None) -> ServiceStatus:
        server = server or self._server(name)
        pid = server.pid()
        configured = server.data_dir.exists() and any(server.data_dir.iterdir())
        return ServiceStatus(
            name=name,
            running=pid is not None,
            healthy=pid is not None and server.healthy(),
            pid=pid,
            endpoint=server.endpoint if configured else None,
            data_dir=server.data_dir,
            log_file=server.log_file,
        )
