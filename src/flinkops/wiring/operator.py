"""The in-cluster operator: the same controller as the local daemon, on the Kubernetes store and runtime.

``Operator.run()``:

1. serves ``/metrics``, ``/healthz`` and ``/readyz`` (``wiring.metrics``), and when configured the validating
   admission webhook over TLS (``wiring.webhook``; on every replica, leader or standby);
2. with leader election on (the default), waits as a standby until it holds the Lease (``kube.leader``), then
   keeps renewing it; losing it ends ``run`` with exit code 1 so the pod restarts clean rather than act without
   the Lease;
3. starts the informers of the custom resources and of the children, and waits until they are synced;
4. loops: resources whose spec changed, that appeared or are being deleted (from the store's watch), and
   clusters whose Deployments changed (from the runtime's watch; with the session jobs that run on them) are due
   at once; everything else comes up when its last pass asked (``requeue_after``: a STABLE resource with nothing
   pending after the reconcile interval; no sooner than ``min_requeue`` unless a snapshot is in flight), with the
   controller's exponential backoff after a failure.

The process's threads share two malloc arenas, and the loop hands the heap's free pages back to the kernel every
few seconds (``wiring.memory``): the passes' bursts of parsing and rendering would otherwise leave each thread's
arena at its own high-water mark.

Passes run on a few worker threads (``workers``), each owning a fixed share of the resources (by a hash of the
key), so two passes never act on the same resource at once (per-resource serialisation) while different
resources progress in parallel; the API server sees at most the client's rate limit. A resource the models
cannot read gets an error in its status and a Warning event, and the loop goes on with the others.

Called by: ``flinkops operator run``.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from flinkops.api.durations import parse_duration_ms
from flinkops.api.models import is_canary_document
from flinkops.clock import SystemClock
from flinkops.controller import Controller
from flinkops.controller.canary import DEFAULT_CANARY_TIMEOUT, CanaryMonitor
from flinkops.core.cost import DEFAULT_PRICES, Prices
from flinkops.errors import ErrorReason, FlinkopsError, InvalidInput, Problem
from flinkops.flink.figures import FiguresReader
from flinkops.kube.client import KubeClient
from flinkops.kube.leader import LeaderElector, LeaseSettings
from flinkops.ports import Clock, ClusterKey, ResourceKey
from flinkops.provisioning.pods import PodProvisioner
from flinkops.runtimes.kubernetes.runtime import REST_ADDRESS_DNS, REST_ADDRESSES, KubernetesRuntime
from flinkops.stores.kubernetes import KubernetesStore, to_model
from flinkops.wiring.kubernetes import build_controller
from flinkops.wiring.memory import TRIM_INTERVAL, release_free_memory
from flinkops.wiring.metrics import MetricsServer, OperatorMetrics
from flinkops.wiring.webhook import WebhookServer, WebhookSettings, start_webhook, webhook_settings_from_env

__all__ = [
    "DEFAULT_PROGRESS_CHECK",
    "PROGRESS_CHECK_ENV",
    "Operator",
    "OperatorSettings",
    "progress_check_from_env",
    "rest_address_from_env",
    "settings_from_env",
]

log = logging.getLogger("flinkops.operator")

_POLL = 1.0
#: Seconds between progress checks unless configured (the reference operator's default).
DEFAULT_PROGRESS_CHECK = 10.0
PROGRESS_CHECK_ENV = "FLINKOPS_PROGRESS_CHECK_INTERVAL"


@dataclass(frozen=True)
class OperatorSettings:
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    identity: str = field(default_factory=lambda: os.environ.get("POD_NAME") or f"{os.uname().nodename}-{os.getpid()}")
    leader_election: bool = True
    lease: LeaseSettings = field(default_factory=lambda: LeaseSettings(namespace="default"))
    http_address: str = "127.0.0.1"
    http_port: int = 8085
    resync: float = 300.0
    #: The shortest wait before a resource's next pass unless something changes: the watches wake a resource at
    #: once when its spec or its Deployments change, so polling only covers what Kubernetes cannot see (the
    #: job inside Flink), as often as the reference operator's progress checks
    #: (``kubernetes.operator.observer.progress-check.interval``, 10 s; a resource may set its own). A savepoint
    #: or checkpoint in flight is followed at the planner's cadence instead (``Controller._requeue``).
    min_requeue: float = DEFAULT_PROGRESS_CHECK
    #: Passes that may run at once, each on its own resources (a resource always goes to the same worker).
    workers: int = 4
    #: How JobManagers' REST APIs are reached (``runtimes.kubernetes.runtime.REST_ADDRESSES``): the REST Service's
    #: cluster DNS name in a pod, its ClusterIP from outside the cluster (``cluster-ip``).
    rest_address: str = REST_ADDRESS_DNS
    #: How soon a canary resource must be reconciled before /healthz fails (the reference's
    #: ``kubernetes.operator.health.canary.resource.timeout``, 1 min).
    canary_timeout: float = DEFAULT_CANARY_TIMEOUT
    #: The validating admission webhook this process serves (every replica, leader or not); None: none.
    webhook: WebhookSettings | None = None


def progress_check_from_env(option: str | None = None) -> float:
    """Seconds between progress checks: ``option``, else ``FLINKOPS_PROGRESS_CHECK_INTERVAL``, else 10 s; a
    duration in Flink's syntax (``2 s``, ``500 ms``); ``InvalidInput`` for one that is not, or is 0."""
    raw = option or os.environ.get(PROGRESS_CHECK_ENV) or ""
    if not raw.strip():
        return DEFAULT_PROGRESS_CHECK
    try:
        seconds = parse_duration_ms(raw) / 1000
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        where = "--progress-check-interval" if option else PROGRESS_CHECK_ENV
        raise InvalidInput([Problem(where, f"{raw[:40]!r} is not a positive duration", "e.g. '10 s' or '500 ms'")])
    return seconds


def rest_address_from_env(option: str | None = None) -> str:
    """How JobManagers are reached: ``option``, else ``FLINKOPS_REST_ADDRESS``, else their Services' DNS names;
    ``InvalidInput`` for a value that is none of ``REST_ADDRESSES``."""
    address = option or os.environ.get("FLINKOPS_REST_ADDRESS") or REST_ADDRESS_DNS
    if address not in REST_ADDRESSES:
        raise InvalidInput([Problem("--rest-address", f"{address!r} is not one of {', '.join(REST_ADDRESSES)}")])
    return address


def settings_from_env(
    *,
    namespaces: tuple[str, ...] | None = None,
    leader_election: bool = True,
    lease_name: str = "flinkops-operator",
    lease_namespace: str | None = None,
    lease_duration: float = 15.0,
    http_address: str | None = None,
    http_port: int = 8085,
    default_namespace: str = "default",
    workers: int = 4,
    rest_address: str | None = None,
    progress_check: str | None = None,
    webhook_port: int | None = None,
) -> OperatorSettings:
    """Settings from options, falling back to the environment the Helm chart sets: ``WATCH_NAMESPACES``
    (comma-separated; empty = all), ``OPERATOR_NAMESPACE`` (where the Lease lives), ``POD_NAME`` (identity),
    ``FLINKOPS_REST_ADDRESS`` (:func:`rest_address_from_env`), ``FLINKOPS_PROGRESS_CHECK_INTERVAL``
    (:func:`progress_check_from_env`) and ``FLINKOPS_WEBHOOK_*`` (``wiring.webhook``)."""
    if namespaces is None:
        namespaces = tuple(n.strip() for n in os.environ.get("WATCH_NAMESPACES", "").split(",") if n.strip())
    lease_ns = lease_namespace or os.environ.get("OPERATOR_NAMESPACE") or default_namespace
    if http_address is None:
        # In a pod the kubelet probes the pod IP; outside one, stay on loopback.
        http_address = "0.0.0.0" if os.environ.get("KUBERNETES_SERVICE_HOST") else "127.0.0.1"
    renew = max(2.0, lease_duration * 2 / 3)
    lease = LeaseSettings(
        namespace=lease_ns,
        name=lease_name,
        lease_duration=lease_duration,
        renew_deadline=renew,
        retry_period=max(0.5, min(2.0, renew / 3)),
    )
    return OperatorSettings(
        namespaces=namespaces,
        leader_election=leader_election,
        lease=lease,
        http_address=http_address,
        http_port=http_port,
        workers=workers,
        rest_address=rest_address_from_env(rest_address),
        min_requeue=progress_check_from_env(progress_check),
        webhook=webhook_settings_from_env(lease_ns, webhook_port),
    )


class Operator:
    def __init__(
        self,
        client: KubeClient,
        settings: OperatorSettings,
        clock: Clock | None = None,
        prices: Prices = DEFAULT_PRICES,
    ) -> None:
        self.client = client
        self.settings = settings
        self.clock = clock or SystemClock()
        self.stop = threading.Event()
        self.store = KubernetesStore(client, settings.namespaces, resync=settings.resync)
        # Once the caches are synced (on the leader), the scrape reads the resources from the store's cache and
        # their jobs' live figures from Flink; before, it would list them from the API server at every scrape.
        self.metrics = OperatorMetrics(figures=FiguresReader(), prices=prices)  # prices: the cost series' table
        self.metrics.kube_requests = client.request_counts
        self.runtime = KubernetesRuntime(
            client,
            settings.namespaces,
            resync=settings.resync,
            wakeup=self.store.wakeup,
            rest_address=settings.rest_address,
        )
        work = Path(tempfile.gettempdir()) / "flinkops-operator"  # job jars fetched for session jobs
        # One provisioner for all shards: it keeps one S3 client per endpoint and credentials (thread-safe), and a
        # client is megabytes.
        provisioner = PodProvisioner(work)
        # One canary monitor for all shards: /healthz asks it whether every canary was reconciled in time.
        self.canaries = CanaryMonitor(settings.canary_timeout)
        self.metrics.canary_problems = lambda: self.canaries.problems(self.clock.now())
        # One controller per shard: a controller keeps per-pass and per-resource state (backoff) that one thread
        # owns, and a resource always goes to the same shard, so its passes never overlap.
        self.shards = [
            _Shard(
                i,
                build_controller(
                    self.store,
                    self.runtime,
                    self.clock,
                    work,
                    min_requeue=settings.min_requeue,
                    provisioner=provisioner,
                    canaries=self.canaries,
                ),
            )
            for i in range(max(1, settings.workers))
        ]
        self.metrics.queue_depth = lambda: sum(shard.depth(self.clock.now()) for shard in self.shards)
        self.elector: LeaderElector | None = None
        self.http: MetricsServer | None = None
        self.webhook: WebhookServer | None = None
        self._reported_invalid: dict[ResourceKey, str] = {}

    def install_signal_handlers(self) -> None:
        def _stop(signum: int, frame: object) -> None:
            self.stop.set()
            self.store.wakeup.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)

    def run(self) -> int:
        """Run until stopped (0) or until leadership is lost (1)."""
        self.http = MetricsServer(self.metrics, self.settings.http_address, self.settings.http_port).start()
        log.info(
            "operator %s serving /metrics /healthz /readyz on %s:%d; watching %s",
            self.settings.identity,
            self.settings.http_address,
            self.http.port,
            ", ".join(self.settings.namespaces) or "all namespaces",
        )
        try:
            if self.settings.webhook is not None:  # before the election: standbys answer admission reviews too
                self.webhook = start_webhook(self.client, self.settings.webhook)
            if self.settings.leader_election:
                self.elector = LeaderElector(self.client, self.settings.lease, self.settings.identity)
                self.metrics.ready = True  # a standby is healthy and ready; it just does not act
                if not self._wait_for_leadership():
                    return 0
                self.metrics.leader = True
                self.elector.keep_renewing(self.stop)
            else:
                self.metrics.leader = True
            self.metrics.ready = False
            self.store.start()
            self.runtime.start()
            while not (self.store.wait_synced(1.0) and self.runtime.wait_synced(1.0)):
                self.metrics.tick()
                if self.stop.is_set():
                    return 0
            self.metrics.ready = True
            self.metrics.store = self.store
            log.info("caches synced: %d resource(s)", len(self.store.resource_keys()))
            return self._loop()
        finally:
            self.store.stop()
            self.runtime.stop()
            if self.elector is not None:
                self.elector.release()
            self.metrics.leader = False
            if self.webhook is not None:
                self.webhook.stop()
            self.http.stop()
            log.info("operator stopped")

    def _wait_for_leadership(self) -> bool:
        assert self.elector is not None
        log.info("waiting to become the leader (lease %s/%s)", self.settings.lease.namespace, self.settings.lease.name)
        while not self.stop.is_set():
            self.metrics.tick()
            if self.elector.try_acquire_or_renew():
                return True
            self.stop.wait(self.settings.lease.retry_period)
        return False

    def _lost_leadership(self) -> bool:
        return self.elector is not None and self.elector.lost.is_set()

    def _shard(self, key: ResourceKey) -> _Shard:
        return self.shards[zlib.crc32(str(key).encode()) % len(self.shards)]

    def _loop(self) -> int:
        """Route work to the shards until stopped; each shard runs its resources' passes on its own thread."""
        now = self.clock.now()
        for key in self.store.resource_keys():
            self._shard(key).mark(key, now)
        self.store.changed_keys()  # everything is due already
        threads = [
            threading.Thread(target=self._work, args=(shard,), name=f"reconcile-{shard.index}", daemon=True)
            for shard in self.shards
        ]
        for thread in threads:
            thread.start()
        code = 0
        trimmed = time.monotonic()
        while not self.stop.is_set():
            self.metrics.tick()
            if time.monotonic() - trimmed >= TRIM_INTERVAL:
                release_free_memory()  # what the passes' bursts freed goes back to the kernel (wiring.memory)
                trimmed = time.monotonic()
            if self._lost_leadership():
                log.error("lost the leadership; exiting so that only the leader acts")
                code = 1
                break
            now = self.clock.now()
            for key in self.store.changed_keys():
                self._note_canary(key, now)
                self._shard(key).mark(key, now)
            for cluster in self.runtime.changed_clusters():
                for key in self._on_cluster(cluster):
                    self._shard(key).mark(key, now)
            if self.store.wakeup.wait(_POLL):
                self.store.wakeup.clear()
        self.stop.set()
        for shard in self.shards:
            shard.wakeup.set()
        for thread in threads:
            thread.join(timeout=60)
        return code

    def _note_canary(self, key: ResourceKey, now: float) -> None:
        """A watch delivered a canary's (new) generation: from now on it must be reconciled within the timeout."""
        raw = self.store.raw(key)
        if raw is not None and is_canary_document(raw):
            generation = (raw.get("metadata") or {}).get("generation")
            self.canaries.seen(key, generation if isinstance(generation, int) else 1, now)

    def _on_cluster(self, cluster: ClusterKey) -> list[ResourceKey]:
        """The resources to look at when a cluster's children changed: its FlinkDeployment and the session jobs
        that run on it (a STABLE one is otherwise looked at only once per reconcile interval)."""
        keys = [ResourceKey("FlinkDeployment", cluster.namespace, cluster.name)]
        for obj in self.store.list_raw("FlinkSessionJob", cluster.namespace):
            spec = obj.get("spec")
            if isinstance(spec, dict) and spec.get("deploymentName") == cluster.name:
                keys.append(ResourceKey("FlinkSessionJob", cluster.namespace, str(obj["metadata"]["name"])))
        return keys

    def _work(self, shard: _Shard) -> None:
        while not self.stop.is_set() and not self._lost_leadership():
            for key in shard.ready(self.clock.now()):
                if self.stop.is_set() or self._lost_leadership():
                    return
                requeue = self._pass(key, shard.controller)
                shard.done(key, None if requeue is None else self.clock.now() + requeue)
            shard.wait(self.clock.now(), _POLL)

    def _pass(self, key: ResourceKey, controller: Controller) -> float | None:
        started = time.monotonic()
        raw = self.store.raw(key)
        if raw is None:
            self.metrics.set_lifecycle(key.kind, f"{key.namespace}/{key.name}", None)
            self._reported_invalid.pop(key, None)
            return None
        try:
            resource = to_model(raw)
        except InvalidInput as exc:
            self._report_invalid(key, exc)
            self.metrics.observe_reconcile(key.kind, "invalid", time.monotonic() - started, "InvalidInput")
            return None  # an unreadable resource waits for its next spec change
        self._reported_invalid.pop(key, None)
        try:
            if resource.metadata.deletion_timestamp is None:
                self.store.ensure_finalizer(key)
            outcome = controller.reconcile(key)
            requeue, error = outcome.requeue_after, outcome.error
            result = "error" if error else "ok"
        except FlinkopsError as exc:  # the store itself failed outside the pass's own handling
            log.warning("%s: %s", key, exc)
            requeue, result, error = max(5.0, self.settings.min_requeue), "error", type(exc).__name__
        self.metrics.observe_reconcile(key.kind, result, time.monotonic() - started, error)
        current = self.store.raw(key)
        state = ((current or {}).get("status") or {}).get("lifecycleState")
        self.metrics.set_lifecycle(key.kind, f"{key.namespace}/{key.name}", state if current else None)
        return requeue

    def _report_invalid(self, key: ResourceKey, exc: InvalidInput) -> None:
        message = f"the resource does not fit the FlinkDeployment/FlinkSessionJob schema: {exc}"
        if self._reported_invalid.get(key) == message:
            return
        log.warning("%s: %s", key, message)
        try:
            self.store.record_event(key, "Warning", "InvalidResource", message)
            self.store.write_raw_status(key, {"error": message, "errorReason": ErrorReason.INVALID_RESOURCE.value})
            self._reported_invalid[key] = message
        except FlinkopsError as record_exc:
            log.error("%s: could not record that it is invalid: %s", key, record_exc)


class _Shard:
    """The resources one worker owns: when each is due next. ``mark`` (from the routing loop) makes a resource
    due now; a pass that is running when it is marked runs again right after."""

    def __init__(self, index: int, controller: Controller) -> None:
        self.index = index
        self.controller = controller
        self._due: dict[ResourceKey, float] = {}
        self._lock = threading.Lock()
        self.wakeup = threading.Event()

    def mark(self, key: ResourceKey, when: float) -> None:
        with self._lock:
            self._due[key] = min(when, self._due.get(key, when))
        self.wakeup.set()

    def depth(self, now: float) -> int:
        """Resources due (or running) that have not finished their pass."""
        with self._lock:
            return sum(1 for when in self._due.values() if when <= now or when == float("inf"))

    def ready(self, now: float) -> list[ResourceKey]:
        with self._lock:
            keys = [k for k, t in self._due.items() if t <= now]
            for key in keys:
                self._due[key] = float("inf")  # running: a mark during the pass brings it forward again
        return sorted(keys, key=str)

    def done(self, key: ResourceKey, next_due: float | None) -> None:
        with self._lock:
            marked = self._due.get(key, float("inf"))
            if marked != float("inf"):
                return  # marked while running: keep the earlier time
            if next_due is None:
                self._due.pop(key, None)
            else:
                self._due[key] = next_due

    def wait(self, now: float, longest: float) -> None:
        with self._lock:
            next_due = min(self._due.values(), default=now + longest)
        timeout = max(0.0, min(longest, next_due - now))
        if timeout > 0 and self.wakeup.wait(timeout):
            self.wakeup.clear()
