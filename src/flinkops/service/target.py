"""Where the service layer acts: one target's resource store and the adapters that go with it.

``LocalTarget`` keeps resources in SQLite under the flinkops home; the controller daemon (started on demand)
reconciles them into Flink processes on this machine. ``KubernetesTarget`` works on the custom resources of a
kubeconfig context's API server, where the operator reconciles; nothing is started locally.

This is the only module of the service layer that constructs adapters: the resource store, the snapshot store and
S3 access for a deployment's configuration, the controller that previews a plan, the controller daemon and the
local runtime (for log files and metrics endpoints). They come from ``flinkops.wiring`` (``local`` builds the
controller and storage access, ``daemon`` runs its process) and ``flinkops.runtimes.local``.

Import-light on purpose: every adapter loads when first asked for, so ``flinkops get`` pays for its store only.

Called by: every ``flinkops.service`` module, and whoever picks a target (``cli.target``, tests, an Airflow hook).
Invariant: a target never decides anything; it hands out adapters and reads stored objects.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from flinkops.errors import InvalidInput, Problem, RuntimeFailure
from flinkops.ports import Clock, ClusterKey, MetricsEndpoint, ResourceKey, ResourceStore, SnapshotStore
from flinkops.settings import default_home, store_path

if TYPE_CHECKING:
    from flinkops.api.models import FlinkDeployment, FlinkSessionJob
    from flinkops.core.planner import Plan
    from flinkops.flink.config import RenderInputs
    from flinkops.gateway.config import GatewayConfig
    from flinkops.gateway.server import Pages
    from flinkops.ports.flink import JobFigures
    from flinkops.provisioning.local import DataPlane
    from flinkops.provisioning.preflight import LocalFiles
    from flinkops.s3 import S3Access
    from flinkops.stores.kubernetes import KubernetesStore
    from flinkops.stores.sqlite import SqliteStore
    from flinkops.wiring.daemon import DaemonState

__all__ = ["KubernetesTarget", "LocalTarget", "Previewer", "Target", "local_only"]


def _system_clock() -> Clock:
    from flinkops.clock import SystemClock

    return SystemClock()


log = logging.getLogger("flinkops.controller")


class Previewer(Protocol):
    """What ``plan`` needs of a controller: one pass for a desired resource, deciding without acting."""

    def preview(self, resource: FlinkDeployment | FlinkSessionJob) -> Plan: ...


class Target(Protocol):
    """The resource store of one place where Flink jobs run, and the adapters the operations need there."""

    @property
    def local(self) -> bool:
        """True when clusters run on this machine (state then defaults to directories under ``home``)."""
        ...

    @property
    def home(self) -> Path: ...

    @property
    def clock(self) -> Clock: ...

    def store(self) -> ResourceStore: ...

    def documents(self, kind: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        """Stored resources in their CRD shape (what ``-o json`` prints), without building models where possible."""
        ...

    def document(self, key: ResourceKey) -> dict[str, Any] | None: ...

    def render_inputs(self, deployment: FlinkDeployment) -> RenderInputs:
        """What this target adds to a deployment's rendered Flink configuration."""
        ...

    def snapshot_store(self, config: Mapping[str, str]) -> SnapshotStore:
        """Checkpoint and savepoint storage as a deployment with ``config`` reaches it (local paths, S3)."""
        ...

    def s3_access(self, config: Mapping[str, str]) -> S3Access: ...

    def ensure_controller(self) -> None:
        """Make sure something reconciles what was just written."""
        ...

    def previewer(self) -> Previewer: ...

    def log_files(self, key: ClusterKey, component: str | None = None) -> Sequence[Path]: ...

    def metrics_endpoints(self, key: ClusterKey) -> Sequence[MetricsEndpoint]:
        """Where each process of a cluster on this machine serves Flink's Prometheus reporter (none elsewhere:
        pods are found through their annotations)."""
        ...

    def metrics_discovery_file(self) -> Path | None:
        """The Prometheus file-based service-discovery file listing every local process's reporter, if any."""
        ...

    def local_files(self, resources: Sequence[FlinkDeployment | FlinkSessionJob], *, fetch: bool = True) -> LocalFiles:
        """The preflight of the jobs' local files (jar, Main-Class, Python scripts and interpreters), with what
        each ``/opt/flink/...`` path is here; nothing to check where clusters do not run on this machine."""
        ...

    def run_gateway(self, config: Path | None = None, pages: Pages | None = None) -> None:
        """Serve the gateway in this process until SIGTERM or Ctrl-C (``flinkops gateway run``); ``pages`` adds
        the fleet page behind it."""
        ...


_FIGURES_READER: Any = None


def live_figures(
    resources: Sequence[FlinkDeployment | FlinkSessionJob], keys: Iterable[ResourceKey] | None = None
) -> dict[ResourceKey, JobFigures | None]:
    """The live figures of the jobs of ``resources`` (of ``keys`` among them, when given) that run
    (``wiring.figures``: session jobs find their cluster among ``resources``), read concurrently by one reader per
    process (``flink.figures``: short timeouts, answers reused for a few seconds); None for a job whose JobManager
    did not answer."""
    from flinkops.flink.figures import FiguresReader
    from flinkops.wiring import figures

    global _FIGURES_READER
    if _FIGURES_READER is None:
        _FIGURES_READER = FiguresReader()
    return figures.live_figures(resources, _FIGURES_READER, keys)


def local_only(target: Target, command: str, instead: str = "") -> None:
    """Refuse ``command`` on a Kubernetes target (``InvalidInput``), saying what to use there instead."""
    if not target.local:
        raise _not_here(command, instead)


def _not_here(command: str, instead: str = "") -> InvalidInput:
    hint = f"on Kubernetes: {instead}" if instead else "it needs clusters on this machine"
    return InvalidInput([Problem(command, "works on local clusters only", hint)])


def _dataplane(home: Path) -> DataPlane:
    from flinkops.wiring.local import data_plane

    plane: DataPlane = data_plane(home)
    return plane


class LocalTarget:
    """Resources in ``<home>/flinkops.db``; the controller daemon of ``home`` reconciles them."""

    local = True

    def __init__(self, home: Path | None = None, clock: Clock | None = None) -> None:
        self.home = home if home is not None else default_home()
        self.clock: Clock = clock or _system_clock()
        self._store: SqliteStore | None = None
        self._dataplane: DataPlane | None = None

    def __repr__(self) -> str:
        return f"LocalTarget({str(self.home)!r})"

    def store(self) -> SqliteStore:
        if self._store is None:
            from flinkops.stores.sqlite import SqliteStore

            self._store = SqliteStore(store_path(self.home))
        return self._store

    def documents(self, kind: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.store().documents(kind, namespace)

    def document(self, key: ResourceKey) -> dict[str, Any] | None:
        return self.store().document(key)

    def render_inputs(self, deployment: FlinkDeployment) -> RenderInputs:
        from flinkops.flink.config import render_inputs

        # The distribution's JVM flags are left out: they decide nothing about where state lives, and finding
        # them means loading the distribution.
        return render_inputs(deployment, self.home, sys.executable)

    def _plane(self) -> DataPlane:
        if self._dataplane is None:
            self._dataplane = _dataplane(self.home)
        return self._dataplane

    def snapshot_store(self, config: Mapping[str, str]) -> SnapshotStore:
        return self._plane().snapshot_store(config)

    def s3_access(self, config: Mapping[str, str]) -> S3Access:
        return self._plane().s3_access(config)

    def ensure_controller(self) -> None:
        self.start_controller()

    def previewer(self) -> Previewer:
        from flinkops.wiring.local import build_controller

        controller, _ = build_controller(self.home, self.clock)
        previewer: Previewer = controller
        return previewer

    def log_files(self, key: ClusterKey, component: str | None = None) -> Sequence[Path]:
        from flinkops.flink.distribution import find_distribution
        from flinkops.runtimes.local.runtime import LocalRuntime

        return LocalRuntime(self.home, find_distribution()).log_files(key, component)

    def metrics_endpoints(self, key: ClusterKey) -> Sequence[MetricsEndpoint]:
        from flinkops.runtimes.local.reporters import endpoints

        return endpoints(self.home, key)

    def metrics_discovery_file(self) -> Path | None:
        from flinkops.runtimes.local.reporters import sd_path

        return sd_path(self.home)

    def local_files(self, resources: Sequence[FlinkDeployment | FlinkSessionJob], *, fetch: bool = True) -> LocalFiles:
        from flinkops.errors import FlinkopsError
        from flinkops.flink.distribution import find_distribution
        from flinkops.provisioning.preflight import LocalFiles, check_local_files

        if not any(r.spec.job is not None for r in resources):
            return LocalFiles()
        try:
            dist = find_distribution()
        except FlinkopsError as exc:  # no local Flink: the controller reports it; nothing to map files against
            log.debug("no preflight of local files: %s", exc)
            return LocalFiles()
        return check_local_files(resources, dist, fetch=fetch)

    # ------------------------------------------------------------------ the controller daemon

    def start_controller(self) -> DaemonState:
        """Start the daemon of this home unless it runs (it outlives this process)."""
        from flinkops.wiring.daemon import start_daemon

        state: DaemonState = start_daemon(self.home)
        return state

    def stop_controller(self) -> bool:
        """Stop the daemon; False when none was running. Flink clusters keep running."""
        from flinkops.wiring.daemon import stop_daemon

        stopped: bool = stop_daemon(self.home)
        return stopped

    def controller_state(self) -> DaemonState:
        from flinkops.wiring.daemon import daemon_state

        state: DaemonState = daemon_state(self.home)
        return state

    def run_controller(
        self, should_stop: Callable[[], bool], poll: float, pid_file: bool = False, metrics_port: int | None = None
    ) -> None:
        """Reconcile in this process until ``should_stop()``; with ``pid_file`` this process is the daemon. With
        ``metrics_port`` it serves ``/metrics`` (the operator's families) and ``/healthz`` on 127.0.0.1."""
        from flinkops.controller import run_loop
        from flinkops.service.prices import home_prices
        from flinkops.wiring import daemon
        from flinkops.wiring.gateway import beside_the_controller
        from flinkops.wiring.local import build_controller
        from flinkops.wiring.metrics import local_metrics

        self.home.mkdir(parents=True, exist_ok=True)
        lock = daemon.hold_controller_lock(self.home)
        if lock is None:
            running = daemon.daemon_state(self.home)
            raise RuntimeFailure(
                f"another flinkops controller already runs for {self.home}"
                + (f" (pid {running.pid})" if running.pid else "")
                + "; one per home: stop it first (flinkops controller stop) or use another FLINKOPS_HOME"
            )
        with lock:
            if pid_file:
                daemon.write_pid_file(self.home)
            controller, store = build_controller(self.home, self.clock)
            log.info("controller started; home %s", self.home)
            prices = home_prices(self.home)  # the metrics' cost series: the home's price table
            with beside_the_controller(self.home), local_metrics(store, metrics_port, prices=prices) as hooks:
                on_pass, on_queue = hooks if hooks is not None else (None, None)
                run_loop(controller, store, self.clock, should_stop, poll=poll, on_pass=on_pass, on_queue=on_queue)
            log.info("controller stopped")

    def run_gateway(self, config: Path | None = None, pages: Pages | None = None) -> None:
        """Serve the gateway (``config``, default ``<home>/gateway.yaml``) in this process until SIGTERM or
        Ctrl-C; ``InvalidInput`` when the settings are bad."""
        from flinkops.wiring.gateway import audit_path, serve

        settings = gateway_settings(self.home, config)
        store = self.store()  # opened once (its readers are per thread): not for each lookup
        serve(settings, lambda: store, audit_path(settings, self.home), pages=pages)


def gateway_namespaces() -> tuple[str, ...]:
    """The namespaces the gateway serves on Kubernetes: ``WATCH_NAMESPACES`` (comma-separated, as the operator's;
    the chart sets both alike), empty meaning every namespace."""
    return tuple(n.strip() for n in os.environ.get("WATCH_NAMESPACES", "").split(",") if n.strip())


def gateway_settings(home: Path, config: Path | None = None) -> GatewayConfig:
    """The gateway's checked settings, ``config`` or ``<home>/gateway.yaml`` (``InvalidInput`` with each field's
    path)."""
    from flinkops.gateway.config import load_config
    from flinkops.wiring.gateway import config_path

    path = config or config_path(home)
    if not path.is_file():
        hint = "write the gateway's settings there (see `flinkops gateway --help`)"
        raise InvalidInput([Problem("", f"{path} does not exist", hint)])
    return load_config(path)


class KubernetesTarget:
    """The custom resources of a kubeconfig context's API server (every call goes to the server); the operator
    in the cluster reconciles them. ``home`` is only where this machine keeps its ``flinkops dev`` settings."""

    local = False

    def __init__(
        self,
        context: str | None = None,
        kubeconfig: str | None = None,
        home: Path | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.context = context
        self.kubeconfig = kubeconfig
        self.home = home if home is not None else default_home()
        self.clock: Clock = clock or _system_clock()
        self._store: KubernetesStore | None = None

    def __repr__(self) -> str:
        return f"KubernetesTarget(context={self.context!r})"

    def store(self) -> KubernetesStore:
        if self._store is None:
            from flinkops.kube.client import KubeClient, load_config
            from flinkops.stores.kubernetes import KubernetesStore

            client = KubeClient(load_config(self.context, self.kubeconfig))
            self._store = KubernetesStore(client, component="flinkops-cli")
        return self._store

    def run_gateway(self, config: Path | None = None, pages: Pages | None = None) -> None:
        """Serve the gateway in this process (in the operator chart's gateway Deployment), reading the
        FlinkDeployments' REST addresses from the API server; ``config`` default ``<home>/gateway.yaml``."""
        from flinkops.wiring.gateway import audit_path, serve

        settings = gateway_settings(self.home, config)
        store = self.store()
        serve(settings, lambda: store, audit_path(settings, self.home), gateway_namespaces(), pages)

    def documents(self, kind: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        from flinkops.api.loader import dump_resource

        return [dump_resource(r) for r in self.store().list_resources(kind, namespace)]

    def document(self, key: ResourceKey) -> dict[str, Any] | None:
        from flinkops.api.loader import dump_resource

        found = self.store().get(key)
        return dump_resource(found) if found is not None else None

    def render_inputs(self, deployment: FlinkDeployment) -> RenderInputs:
        from flinkops.flink.config import render_inputs

        return render_inputs(deployment, None)

    def snapshot_store(self, config: Mapping[str, str]) -> SnapshotStore:
        return _dataplane(self.home).snapshot_store(config)

    def s3_access(self, config: Mapping[str, str]) -> S3Access:
        return _dataplane(self.home).s3_access(config)

    def ensure_controller(self) -> None:
        """The operator runs in the cluster already."""

    def previewer(self) -> Previewer:
        raise _not_here("plan")

    def log_files(self, key: ClusterKey, component: str | None = None) -> Sequence[Path]:
        raise _not_here("logs")

    def metrics_endpoints(self, key: ClusterKey) -> Sequence[MetricsEndpoint]:
        return ()

    def metrics_discovery_file(self) -> Path | None:
        return None

    def local_files(self, resources: Sequence[FlinkDeployment | FlinkSessionJob], *, fetch: bool = True) -> LocalFiles:
        from flinkops.provisioning.preflight import LocalFiles

        return LocalFiles()  # the image holds the files; the pods report what is missing
