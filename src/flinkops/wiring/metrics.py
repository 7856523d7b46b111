"""The controller's and the operator's Prometheus metrics, and their HTTP endpoint (``/metrics``, ``/healthz``,
``/readyz``).

The loop records what happened in plain Python objects (cheap under its lock); at each scrape custom
``prometheus_client`` collectors turn them, the resources in the store and the jobs' live figures into metric
families, and the library writes the exposition format. One scrape gives three groups.

**The control loop's health** (flinkops' own names):

* ``flinkops_reconcile_total{kind,result}``: passes by outcome (``ok``, ``conflict``, ``error``, ``invalid``);
* ``flinkops_reconcile_duration_seconds{kind}``: a histogram of pass durations;
* ``flinkops_reconcile_errors_total{kind,error}``: failures by error type;
* ``flinkops_reconcile_queue_depth``: resources due for a pass that wait for one;
* ``flinkops_resources{kind,lifecycle_state}``: resources by lifecycle state, as last seen by a pass;
* ``flinkops_kube_requests_total{verb,code}``: API server calls, taken from the client at scrape time;
* ``flinkops_leader``: 1 while this replica leads, else 0;
* ``flinkops_canaries_unhealthy``: canary resources not reconciled within their timeout.

**The reference operator's names**, as its Flink Prometheus reporter writes them, so that existing dashboards and
alerts keep working. The reporter joins the metric group names and the metric name with ``_`` after a ``flink_``
prefix, and turns the groups' variables into labels: ``host``, ``namespace`` and ``name`` (the operator's pod
host, namespace and name: ``OPERATOR_NAMESPACE``, ``flinkops``), and on namespace-level metrics ``resourcens``
(the resources' namespace) and ``resourcetype`` (``FlinkDeployment``, ``FlinkSessionJob``, ``FlinkStateSnapshot``).
Flink counters and gauges are Prometheus gauges; its histograms are summaries (quantiles 0.5 to 0.999 of the last
1000 values, and ``_count``). So the reference's

* ``<Kind>.Count`` is ``flink_k8soperator_namespace_Count``;
* ``<Kind>.Lifecycle.State.<S>.Count`` is ``flink_k8soperator_namespace_Lifecycle_State_<S>_Count``;
* ``<Kind>.Lifecycle.State.<S>.TimeSeconds`` is ``flink_k8soperator_namespace_Lifecycle_State_<S>_TimeSeconds``
  per namespace and ``flink_k8soperator_<Kind>_Lifecycle_State_<S>_TimeSeconds`` for the system;
* ``<Kind>.Lifecycle.Transition.<T>.TimeSeconds`` (``Upgrade``, ``Resume``, ``Suspend``, ``Stabilization``,
  ``Rollback``, ``Submission``) likewise, ``..._Lifecycle_Transition_<T>_TimeSeconds``;
* ``FlinkDeployment.JmDeploymentStatus.<S>.Count`` is ``flink_k8soperator_namespace_JmDeploymentStatus_<S>_Count``;
* ``FlinkDeployment.FlinkVersion.<v>.Count`` is ``flink_k8soperator_namespace_FlinkVersion_Count{FlinkVersion=v}``
  (``FlinkMinorVersion`` likewise), from the version the JobManager reported;
* ``FlinkDeployment.ResourceUsage.Cpu|Memory`` is ``flink_k8soperator_namespace_ResourceUsage_Cpu|Memory``: cores
  and bytes its running clusters asked for (JobManagers and TaskManagers, from their specs);
* ``FlinkStateSnapshot.Checkpoint|Savepoint.Count`` is ``flink_k8soperator_namespace_Checkpoint|Savepoint_Count``
  (``resourcetype="FlinkStateSnapshot"``): flinkops keeps no snapshot resources, so these count the savepoints
  recorded in the resources' status (``savepointHistory``) and the completed checkpoints Flink reports for the
  namespace's running jobs (those whose JobManager answered);
* ``KubeClient.HttpRequest[.<METHOD>].Count``, ``KubeClient.HttpRequest.Failed.Count``,
  ``KubeClient.HttpResponse[.<code>].Count`` are ``flink_k8soperator_KubeClient_HttpRequest_Count`` and so on.

Lifecycle times follow the reference's tracker: each pass reports a resource's state; a state's time runs from
when the resource entered it to the last pass that saw it there, and is recorded when the resource next reaches a
terminal state (SUSPENDED, STABLE, ROLLED_BACK, FAILED, DELETED); a transition's time is recorded when the
resource enters its target state (Upgrade: STABLE to STABLE again; Resume: SUSPENDED to STABLE; Suspend: to
SUSPENDED or UPGRADING; Stabilization: DEPLOYED to STABLE; Rollback: DEPLOYED to ROLLED_BACK; Submission:
UPGRADING to DEPLOYED). The times live in the process: a restarted controller starts them afresh, as the
reference does.

**Per resource, kube-state-metrics style** (``flinkops_flinkdeployment_*`` and ``flinkops_flinksessionjob_*``,
labels ``namespace`` and ``name``; one-hot state sets carry every possible state, 1 for the current one):
``_info`` (flink version, mode, upgrade mode, job name; session jobs: the session deployment), ``_lifecycle_state
{state}``, ``_job_state{state}``, ``_jobmanager_deployment_status{status}`` (deployments), ``_runs{reason}`` (starts
recorded in ``deploymentHistory``), ``_parallelism`` (the spec's), ``_savepoints``, ``_last_checkpoint_age_seconds``,
``_last_savepoint_age_seconds``, and, read live from Flink's REST API for a job that runs (``flink.figures``):
``_flink_up`` (1: the JobManager answered, 0: it did not), ``_records_in_per_second``, ``_records_out_per_second``,
``_busy_ratio``, ``_backpressure_ratio``, ``_kafka_lag_records`` (jobs that read Kafka), ``_restarts`` (Flink's
``numRestarts``), ``_running_parallelism``, ``_checkpoints{result}``. A figure Flink did not give is left out,
never written as 0 or NaN.

**What each resource cost**, counters over the runs its status keeps (``status.deploymentHistory``, the newest 20;
``core.cost.resource_cost``, the figures of ``flinkops cost`` without ``--since``, priced by the price table the
caller hands in: the home's ``prices.yaml`` or the built-in rates), same labels: ``_cost_wall_seconds_total``,
``_cost_vcpu_seconds_total`` and ``_cost_gib_seconds_total`` (requested), ``_cost_slot_seconds_total``,
``_cost_busy_slot_seconds_total`` (the running job's busy ratio read live, applied to its run),
``_cost_idle_tail_seconds_total``, ``_cost_downtime_seconds_total``, ``_cost_checkpoints_total`` (the running job's
count read live), ``_cost_kpu_hours_total``, ``_cost_cu_hours_total``, what the runs used as recorded from
Flink's metrics (``_cost_used_vcpu_seconds_total``, ``_cost_used_gib_seconds_total``, ``_cost_state_gib_hours_total``,
``_cost_checkpoint_bytes_total``; at most ten minutes behind) and ``_cost_price_total{currency,basis}`` with
``basis`` one of ``compute`` (requested vCPU-h and GiB-h at the compute rates: ``flinkops cost``'s PRICE),
``aws_managed_flink`` (KPU-h x kpuHour) and ``ververica`` (CU-h x cuHour): three bases of one bill, never to be
summed. A session job is priced on its session cluster's series: its own have wall time, downtime and
checkpoints only. They grow while a run's cluster lives; a figure that is not known (no rate, a run recorded
before its requested resources were) is left out. When a run falls out of the kept history the sum drops, which
Prometheus reads as a counter reset. The figures of finished runs are kept per resourceVersion, so a scrape of a
large fleet prices only the live runs.

``/healthz`` answers 200 while the main loop (or, on a standby, the election loop) has ticked within the
liveness window and every canary resource was reconciled in time (``controller.canary``; the reference's health
probe does the same); ``/readyz`` answers 200 once the resource caches are synced, or at once on a standby (a standby
is healthy, just not leading).

Called by: ``wiring.operator`` and, for ``flinkops controller run --metrics-port``, ``service.target``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import get_args

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from flinkops.api.models import (
    FlinkDeployment,
    FlinkJobState,
    FlinkSessionJob,
    JobManagerDeploymentStatus,
    LifecycleState,
    RequestedResources,
)
from flinkops.api.quantities import cpu_cores, memory_bytes
from flinkops.controller.loop import ReconcileResult
from flinkops.core.cost import DEFAULT_PRICES, Prices, RunCost, requested_resources, resource_cost
from flinkops.flink.figures import FiguresReader, JobFigures
from flinkops.ports import Resource, ResourceKey, ResourceStore
from flinkops.wiring.figures import job_addresses

log = logging.getLogger("flinkops.metrics")

__all__ = ["LifecycleTracker", "MetricsServer", "OperatorIdentity", "OperatorMetrics", "local_metrics"]

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: The quantiles Flink's Prometheus reporter writes for a histogram, and the reference's sample size.
_QUANTILES = (0.5, 0.75, 0.95, 0.98, 0.99, 0.999)
_SAMPLE_SIZE = 1000
_KINDS = ("FlinkDeployment", "FlinkSessionJob")
_STATES = tuple(LifecycleState)
_TERMINAL = frozenset(
    {
        LifecycleState.SUSPENDED,
        LifecycleState.STABLE,
        LifecycleState.ROLLED_BACK,
        LifecycleState.FAILED,
        LifecycleState.DELETED,
    }
)
_S = LifecycleState
#: (from, to, measured from the last time seen in ``from`` rather than the first, name): the reference's table.
_TRANSITIONS = (
    (_S.SUSPENDED, _S.STABLE, True, "Resume"),
    (_S.STABLE, _S.STABLE, True, "Upgrade"),
    (_S.DEPLOYED, _S.UPGRADING, True, "Suspend"),
    (_S.STABLE, _S.UPGRADING, True, "Suspend"),
    (_S.ROLLED_BACK, _S.UPGRADING, True, "Suspend"),
    (_S.DEPLOYED, _S.SUSPENDED, True, "Suspend"),
    (_S.STABLE, _S.SUSPENDED, True, "Suspend"),
    (_S.ROLLED_BACK, _S.SUSPENDED, True, "Suspend"),
    (_S.DEPLOYED, _S.STABLE, False, "Stabilization"),
    (_S.DEPLOYED, _S.ROLLED_BACK, False, "Rollback"),
    (_S.UPGRADING, _S.DEPLOYED, True, "Submission"),
    (_S.ROLLING_BACK, _S.ROLLED_BACK, True, "Submission"),
)
TRANSITION_NAMES = tuple(dict.fromkeys(t[3] for t in _TRANSITIONS))
_JOB_STATES: tuple[str, ...] = get_args(FlinkJobState)


@dataclass(frozen=True)
class OperatorIdentity:
    """The reference's operator-level labels: where the operator runs."""

    namespace: str = field(default_factory=lambda: os.environ.get("OPERATOR_NAMESPACE") or "default")
    name: str = "flinkops"
    host: str = field(default_factory=socket.gethostname)


class _Samples:
    """A histogram as Flink keeps it: every value counted, the quantiles of the last ``_SAMPLE_SIZE``."""

    def __init__(self) -> None:
        self.values: deque[float] = deque(maxlen=_SAMPLE_SIZE)
        self.count = 0
        self.total = 0.0

    def add(self, value: float) -> None:
        self.values.append(value)
        self.count += 1
        self.total += value

    def quantiles(self) -> list[tuple[float, float]]:
        ordered = sorted(self.values)
        if not ordered:
            return [(q, 0.0) for q in _QUANTILES]
        return [(q, ordered[min(len(ordered) - 1, int(q * len(ordered)))]) for q in _QUANTILES]


class LifecycleTracker:
    """Times in lifecycle states and of lifecycle transitions, from the states the passes report (the module
    docstring says how). Keys: (kind, namespace or None for the whole system, state or transition name)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        #: (kind, namespace, name) -> (current state, {state: [entered, last seen]})
        self._resources: dict[tuple[str, str, str], tuple[LifecycleState, dict[LifecycleState, list[float]]]] = {}
        self.state_times: dict[tuple[str, str | None, str], _Samples] = {}
        self.transition_times: dict[tuple[str, str | None, str], _Samples] = {}

    def _record(
        self, into: dict[tuple[str, str | None, str], _Samples], kind: str, ns: str, what: str, v: float
    ) -> None:
        for scope in (None, ns):
            into.setdefault((kind, scope, what), _Samples()).add(v)

    def update(self, kind: str, namespace: str, name: str, state: str | None) -> None:
        """A pass saw ``state`` (None: the resource is gone)."""
        key = (kind, namespace, name)
        with self._lock:
            if state is None:
                self._resources.pop(key, None)
                return
            try:
                new = LifecycleState(state)
            except ValueError:
                return
            now = self._clock()
            known = self._resources.get(key)
            if known is None:
                self._resources[key] = (new, {new: [now, now]})
                return
            current, times = known
            if new != current:
                for source, target, from_last, metric in _TRANSITIONS:
                    if target == new and source in times:
                        start = times[source][1] if from_last else times[source][0]
                        self._record(self.transition_times, kind, namespace, metric, max(0.0, now - start))
            entry = times.get(new)
            if entry is None:
                times[new] = [now, now]
            else:
                if new != current:
                    entry[0] = now
                entry[1] = now
            if new != current and new in _TERMINAL:
                for state_ in [s for s in times if s != new]:
                    entered, seen = times.pop(state_)
                    self._record(self.state_times, kind, namespace, state_.value, max(0.0, seen - entered))
            self._resources[key] = (new, times)

    def snapshot(
        self,
    ) -> tuple[dict[tuple[str, str | None, str], _Samples], dict[tuple[str, str | None, str], _Samples]]:
        with self._lock:
            return dict(self.state_times), dict(self.transition_times)


def _summary(name: str, documentation: str) -> Metric:
    return Metric(name, documentation, "summary")


def _add_summary(family: Metric, labels: dict[str, str], samples: _Samples) -> None:
    for quantile, value in samples.quantiles():
        family.add_sample(family.name, {**labels, "quantile": str(quantile)}, value)
    family.add_sample(family.name + "_count", labels, samples.count)
    family.add_sample(family.name + "_sum", labels, samples.total)


def _lifecycle_of(resource: Resource) -> LifecycleState:
    if resource.metadata.deletion_timestamp is not None:
        return LifecycleState.DELETING
    status = resource.status
    return status.lifecycle_state if status is not None and status.lifecycle_state is not None else _S.CREATED


def _cluster_usage(deployment: FlinkDeployment) -> tuple[float, float] | None:
    """Cores and bytes a running cluster asked for (JobManagers and TaskManagers), from its spec; None when not
    running or when its spec gives no sizes."""
    status = deployment.status
    if status is None or status.job_manager_deployment_status == JobManagerDeploymentStatus.MISSING:
        return None
    spec = deployment.spec
    jm = spec.job_manager.resource if spec.job_manager is not None else None
    tm = spec.task_manager.resource if spec.task_manager is not None else None
    jm_count = spec.job_manager.replicas if spec.job_manager is not None else 1
    tm_count = status.task_manager.replicas if status.task_manager is not None else 0
    if not tm_count and spec.task_manager is not None and spec.task_manager.replicas:
        tm_count = spec.task_manager.replicas
    cpu = memory = 0.0
    try:
        for size, count in ((jm, jm_count), (tm, tm_count)):
            if size is None:
                continue
            if size.cpu is not None:
                cpu += float(cpu_cores(size.cpu)) * count
            if size.memory is not None:
                memory += memory_bytes(size.memory) * count
    except ValueError:
        return None
    return cpu, memory


def _epoch_seconds(ms: int | None) -> float | None:
    return ms / 1000.0 if ms and ms > 0 else None


class OperatorMetrics:
    """What the loop reports (passes, lifecycle states, health) and, at each scrape, what the store and the jobs
    say. ``store``: the resources whose reference-named and per-resource series are written (None: the loop's
    figures only); ``figures``: the live figures reader (None: no live figures)."""

    def __init__(
        self,
        store: ResourceStore | None = None,
        figures: FiguresReader | None = None,
        identity: OperatorIdentity | None = None,
        clock: Callable[[], float] = time.time,
        prices: Prices = DEFAULT_PRICES,
    ) -> None:
        self._lock = threading.Lock()
        self.reconciles: Counter[tuple[str, str]] = Counter()
        self.errors: Counter[tuple[str, str]] = Counter()
        self._hist: dict[str, list[int]] = {}
        self._hist_sum: dict[str, float] = {}
        self._hist_count: Counter[str] = Counter()
        self.lifecycle: dict[str, dict[str, str]] = {}  # kind -> name -> state
        self.tracker = LifecycleTracker(clock)
        self.leader = False
        self.last_tick = time.monotonic()
        self.ready = False
        self.kube_requests: Callable[[], dict[tuple[str, int], int]] = dict
        #: canary resources the loop has not kept up with (``controller.canary``), one line each
        self.canary_problems: Callable[[], list[str]] = list
        #: resources due for a pass that have not had it yet
        self.queue_depth: Callable[[], int] = lambda: 0
        self.store = store
        self.figures = figures
        self.prices = prices
        self._costs: _CostCache = {}
        self._cost_lock = threading.Lock()
        self.identity = identity or OperatorIdentity()
        self.clock = clock
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self)

    def tick(self) -> None:
        self.last_tick = time.monotonic()

    def observe_reconcile(self, kind: str, result: str, seconds: float, error: str | None = None) -> None:
        with self._lock:
            self.reconciles[(kind, result)] += 1
            if error:
                self.errors[(kind, error)] += 1
            buckets = self._hist.setdefault(kind, [0] * len(_BUCKETS))
            for i, bound in enumerate(_BUCKETS):
                if seconds <= bound:
                    buckets[i] += 1
            self._hist_sum[kind] = self._hist_sum.get(kind, 0.0) + seconds
            self._hist_count[kind] += 1

    def set_lifecycle(self, kind: str, name: str, state: str | None) -> None:
        """A pass saw resource ``name`` (``namespace/name``) of ``kind`` in ``state`` (None: it is gone)."""
        with self._lock:
            states = self.lifecycle.setdefault(kind, {})
            if state is None:
                states.pop(name, None)
            else:
                states[name] = state
        namespace, _, short = name.rpartition("/")
        self.tracker.update(kind, namespace, short, state)

    def render(self) -> str:
        """The metrics in Prometheus' text exposition format."""
        return generate_latest(self._registry).decode()

    def collect(self) -> Iterator[Metric]:
        """The families as they are now (``prometheus_client``'s collector protocol; called at each scrape)."""
        yield from self._loop_families()
        yield from self._kube_client_families()
        yield from self._lifecycle_time_families()
        if self.store is not None:
            try:
                resources = self.store.list_resources()
            except Exception as exc:  # a scrape must answer even when the store does not
                log.warning("metrics: could not list the resources: %s", exc)
                return
            live = self._live(resources)
            yield from _reference_families(resources, live, self.identity)
            now = self.clock()
            yield from _resource_families(resources, live, now)
            with self._cost_lock:  # two scrapes at once (two Prometheus servers) share the cache
                spent = list(_cost_families(resources, live, now, self.prices, self._costs))
            yield from spent

    def _live(self, resources: list[Resource]) -> dict[ResourceKey, JobFigures | None]:
        if self.figures is None:
            return {}
        addresses = job_addresses(resources)
        try:
            read = self.figures.read(addresses.values())
        except Exception as exc:  # never fail the scrape over the live figures: they are unknown then
            log.warning("metrics: could not read the live figures: %s", exc)
            read = {}
        return {key: read.get(address) for key, address in addresses.items()}

    def _loop_families(self) -> Iterator[Metric]:
        with self._lock:
            reconciles = CounterMetricFamily(
                "flinkops_reconcile", "Reconcile passes by outcome.", labels=["kind", "result"]
            )
            for (kind, result), n in sorted(self.reconciles.items()):
                reconciles.add_metric([kind, result], n)
            errors = CounterMetricFamily(
                "flinkops_reconcile_errors", "Failed passes by error type.", labels=["kind", "error"]
            )
            for (kind, error), n in sorted(self.errors.items()):
                errors.add_metric([kind, error], n)
            durations = HistogramMetricFamily(
                "flinkops_reconcile_duration_seconds", "Duration of one pass.", labels=["kind"]
            )
            for kind, counts in sorted(self._hist.items()):
                buckets = [(str(bound), float(n)) for bound, n in zip(_BUCKETS, counts, strict=True)]
                buckets.append(("+Inf", float(self._hist_count[kind])))
                durations.add_metric([kind], buckets, self._hist_sum[kind])
            resources = GaugeMetricFamily(
                "flinkops_resources", "Resources by lifecycle state.", labels=["kind", "lifecycle_state"]
            )
            for kind, states in sorted(self.lifecycle.items()):
                for state, n in sorted(Counter(states.values()).items()):
                    resources.add_metric([kind, state], n)
            leader = GaugeMetricFamily("flinkops_leader", "1 while this replica is the leader.", value=int(self.leader))
        yield from (reconciles, errors, durations, resources, leader)
        yield GaugeMetricFamily(
            "flinkops_reconcile_queue_depth",
            "Resources due for a reconcile pass that wait for one.",
            value=self.queue_depth(),
        )
        yield GaugeMetricFamily(
            "flinkops_canaries_unhealthy",
            "Canary resources not reconciled within their timeout.",
            value=len(self.canary_problems()),
        )

    def _kube_client_families(self) -> Iterator[Metric]:
        counts = self.kube_requests()
        requests = CounterMetricFamily(
            "flinkops_kube_requests",
            "API server requests by verb and HTTP status (0: no answer).",
            labels=["verb", "code"],
        )
        for (verb, code), n in sorted(counts.items()):
            requests.add_metric([verb, str(code)], n)
        yield requests
        # The reference's KubeClient group (system level): its counters are gauges in Flink's Prometheus reporter.
        labels = self._system_labels()
        names = list(labels)
        values = list(labels.values())

        def gauge(name: str, help_: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(f"flink_k8soperator_KubeClient_{name}", help_, labels=names)
            family.add_metric(values, value)
            return family

        yield gauge("HttpRequest_Count", "Requests sent to the API server.", sum(counts.values()))
        failed = sum(n for (_, code), n in counts.items() if code == 0)
        yield gauge("HttpRequest_Failed_Count", "Requests that got no answer.", failed)
        yield gauge("HttpResponse_Count", "Answers from the API server.", sum(counts.values()) - failed)
        by_method: Counter[str] = Counter()
        by_code: Counter[int] = Counter()
        for (verb, code), n in counts.items():
            by_method[_http_method(verb)] += n
            if code:
                by_code[code] += n
        for method, n in sorted(by_method.items()):
            yield gauge(f"HttpRequest_{method}_Count", f"{method} requests sent to the API server.", n)
        for code, n in sorted(by_code.items()):
            yield gauge(f"HttpResponse_{code}_Count", f"Answers with HTTP status {code}.", n)

    def _system_labels(self) -> dict[str, str]:
        return {"host": self.identity.host, "name": self.identity.name, "namespace": self.identity.namespace}

    def _lifecycle_time_families(self) -> Iterator[Metric]:
        state_times, transition_times = self.tracker.snapshot()
        system = self._system_labels()
        for what, recorded, names in (
            ("State", state_times, [s.value for s in _STATES]),
            ("Transition", transition_times, list(TRANSITION_NAMES)),
        ):
            families: dict[str, Metric] = {}
            for (kind, namespace, item), samples in sorted(recorded.items(), key=lambda kv: str(kv[0])):
                if item not in names:
                    continue
                if namespace is None:
                    name = f"flink_k8soperator_{kind}_Lifecycle_{what}_{item}_TimeSeconds"
                    labels = system
                else:
                    name = f"flink_k8soperator_namespace_Lifecycle_{what}_{item}_TimeSeconds"
                    labels = {**system, "resourcens": namespace, "resourcetype": kind}
                family = families.setdefault(
                    name, _summary(name, f"Seconds of lifecycle {what.lower()} {item} (the reference's histogram).")
                )
                _add_summary(family, labels, samples)
            yield from families.values()


def _http_method(verb: str) -> str:
    """The HTTP method of a client verb (``get``, ``list``, ``watch``, ``patch``...)."""
    verb = verb.upper()
    return {"LIST": "GET", "WATCH": "GET", "CREATE": "POST", "REPLACE": "PUT", "APPLY": "PATCH"}.get(verb, verb)


class _Families:
    """Metric families built sample by sample, one per name, in the order first put; a sample whose value is
    None (unknown) is left out, never written as 0 or NaN."""

    def __init__(self, make: type[GaugeMetricFamily] | type[CounterMetricFamily], prefix: str = "") -> None:
        self._make = make
        self._prefix = prefix
        self._by_name: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}

    def put(self, name: str, help_: str, labels: dict[str, str], value: float | None) -> None:
        if value is None:
            return
        name = self._prefix + name
        family = self._by_name.get(name)
        if family is None:
            family = self._by_name[name] = self._make(name, help_, labels=list(labels))
        family.add_metric(list(labels.values()), value)

    def of(self, kind: str) -> Callable[[str, str, dict[str, str], float | None], None]:
        """``put`` for one resource kind's per-resource series: ``<prefix><kind>_<suffix>``."""
        return lambda suffix, help_, labels, value: self.put(f"{kind.lower()}_{suffix}", help_, labels, value)

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._by_name.values())


def _reference_families(
    resources: list[Resource], live: dict[ResourceKey, JobFigures | None], identity: OperatorIdentity
) -> Iterator[Metric]:
    """The reference operator's namespace-level gauges, counted from the store at scrape time."""
    system = {"host": identity.host, "name": identity.name, "namespace": identity.namespace}
    by_scope: dict[tuple[str, str], list[Resource]] = {}
    for resource in resources:
        by_scope.setdefault((resource.metadata.namespace, resource.kind), []).append(resource)

    families = _Families(GaugeMetricFamily)
    put = families.put
    prefix = "flink_k8soperator_namespace"
    savepoints: Counter[str] = Counter()
    checkpoints: dict[str, int] = {}
    for (namespace, kind), members in sorted(by_scope.items()):
        labels = {**system, "resourcens": namespace, "resourcetype": kind}
        put(f"{prefix}_Count", "Managed resources per namespace and kind.", labels, len(members))
        states = Counter(_lifecycle_of(r) for r in members)
        for state in _STATES:
            put(
                f"{prefix}_Lifecycle_State_{state.value}_Count",
                f"Resources in lifecycle state {state.value}.",
                labels,
                states.get(state, 0),
            )
        for resource in members:
            status = resource.status
            if status is not None and status.job_status.savepoint_info is not None:
                savepoints[namespace] += len(status.job_status.savepoint_info.savepoint_history)
            figures = live.get(ResourceKey.of(resource))
            if figures is not None and figures.checkpoints_completed is not None:
                checkpoints[namespace] = checkpoints.get(namespace, 0) + figures.checkpoints_completed
        if kind != "FlinkDeployment":
            continue
        deployments = [r for r in members if isinstance(r, FlinkDeployment)]
        jm = Counter(
            r.status.job_manager_deployment_status if r.status is not None else JobManagerDeploymentStatus.MISSING
            for r in deployments
        )
        for jm_status in JobManagerDeploymentStatus:
            put(
                f"{prefix}_JmDeploymentStatus_{jm_status.value}_Count",
                f"FlinkDeployments whose JobManager is {jm_status.value}.",
                labels,
                jm.get(jm_status, 0),
            )
        versions: Counter[str] = Counter()
        for r in deployments:
            version = (r.status.cluster_info.get("flink-version") if r.status is not None else None) or "UNKNOWN"
            versions[version] += 1
        minors: Counter[str] = Counter()
        for version, n in versions.items():
            parts = version.split(".")
            minors[f"{parts[0]}.{parts[1]}" if len(parts) >= 2 else "MALFORMED"] += n
        for version, n in sorted(versions.items()):
            put(
                f"{prefix}_FlinkVersion_Count",
                "FlinkDeployments per Flink version.",
                {**labels, "FlinkVersion": version},
                n,
            )
        for minor, n in sorted(minors.items()):
            put(
                f"{prefix}_FlinkMinorVersion_Count",
                "FlinkDeployments per Flink minor version.",
                {**labels, "FlinkMinorVersion": minor},
                n,
            )
        usage = [u for r in deployments if (u := _cluster_usage(r)) is not None]
        put(f"{prefix}_ResourceUsage_Cpu", "Cores the running clusters asked for.", labels, sum(u[0] for u in usage))
        put(f"{prefix}_ResourceUsage_Memory", "Bytes the running clusters asked for.", labels, sum(u[1] for u in usage))
    for namespace in sorted({ns for ns, _ in by_scope}):
        labels = {**system, "resourcens": namespace, "resourcetype": "FlinkStateSnapshot"}
        put(f"{prefix}_Savepoint_Count", "Savepoints recorded in the resources' status.", labels, savepoints[namespace])
        if namespace in checkpoints:
            put(
                f"{prefix}_Checkpoint_Count",
                "Completed checkpoints Flink reports for the running jobs that answered.",
                labels,
                checkpoints[namespace],
            )
    yield from families


def _resource_families(
    resources: list[Resource], live: dict[ResourceKey, JobFigures | None], now: float
) -> Iterator[Metric]:
    """kube-state-metrics-style series, one set per resource (``flinkops_<kind>_*``)."""
    families = _Families(GaugeMetricFamily, "flinkops_")
    for resource in sorted(resources, key=lambda r: (r.kind, r.metadata.namespace, r.metadata.name)):
        put = families.of(resource.kind)
        ident = {"namespace": resource.metadata.namespace, "name": resource.metadata.name}
        status = resource.status
        job = resource.spec.job
        info = {
            **ident,
            "job_name": (status.job_status.job_name if status is not None else None) or "",
            "upgrade_mode": job.upgrade_mode.value if job is not None else "",
            "flink_version": "",
            "type": "",
            "deployment_mode": "",
            "session_deployment": "",
        }
        if isinstance(resource, FlinkDeployment):
            spec = resource.spec
            info["flink_version"] = spec.flink_version.value if spec.flink_version is not None else ""
            info["type"] = "session" if resource.is_session_cluster else "application"
            info["deployment_mode"] = spec.mode.value if spec.mode is not None else ""
        elif isinstance(resource, FlinkSessionJob):
            info["session_deployment"] = resource.spec.deployment_name
        put("info", "Facts about the resource (always 1).", info, 1)
        current = _lifecycle_of(resource)
        for state in _STATES:
            put("lifecycle_state", "Lifecycle state (1 for the current one).", {**ident, "state": state.value},
                int(state == current))  # fmt: skip
        job_state = status.job_status.state if status is not None else None
        if job_state is not None:
            for state_name in _JOB_STATES:
                put("job_state", "Flink job state as last observed (1 for the current one).",
                    {**ident, "state": state_name}, int(state_name == job_state))  # fmt: skip
        if isinstance(resource, FlinkDeployment) and status is not None:
            jm_now = getattr(status, "job_manager_deployment_status", None)
            for jm_status in JobManagerDeploymentStatus:
                put("jobmanager_deployment_status", "JobManager deployment status (1 for the current one).",
                    {**ident, "status": jm_status.value}, int(jm_status == jm_now))  # fmt: skip
        if status is not None:
            reasons = Counter(record.reason for record in status.deployment_history)
            for reason, n in sorted(reasons.items()):
                put("runs", "Starts of the job recorded in status.deploymentHistory, by reason.",
                    {**ident, "reason": reason}, n)  # fmt: skip
        if job is not None:
            put("parallelism", "Parallelism the spec asks for.", ident, job.parallelism)
        figures = live.get(ResourceKey.of(resource))
        recorded_checkpoint = recorded_savepoint = None
        if status is not None:
            snapshots = status.job_status
            if snapshots.checkpoint_info is not None and snapshots.checkpoint_info.last_checkpoint is not None:
                recorded_checkpoint = _epoch_seconds(snapshots.checkpoint_info.last_checkpoint.time_stamp)
            if snapshots.savepoint_info is not None:
                put("savepoints", "Savepoints recorded in status.", ident,
                    len(snapshots.savepoint_info.savepoint_history))  # fmt: skip
                if snapshots.savepoint_info.last_savepoint is not None:
                    recorded_savepoint = _epoch_seconds(snapshots.savepoint_info.last_savepoint.time_stamp)
        newest = max(
            (t for t in (recorded_checkpoint, figures.last_checkpoint_time if figures else None) if t is not None),
            default=None,
        )
        if newest is not None:
            put("last_checkpoint_age_seconds", "Seconds since the newest completed checkpoint.", ident,
                max(0.0, now - newest))  # fmt: skip
        if recorded_savepoint is not None:
            put("last_savepoint_age_seconds", "Seconds since the newest savepoint.", ident,
                max(0.0, now - recorded_savepoint))  # fmt: skip
        if ResourceKey.of(resource) not in live:
            continue  # no live job: nothing to ask Flink
        put("flink_up", "1 when the job's JobManager answered for its live figures, 0 when it did not.",
            ident, int(figures is not None))  # fmt: skip
        if figures is None:
            continue
        put("records_in_per_second", "Records/s the job's sources emit.", ident, figures.records_in_per_second)
        put("records_out_per_second", "Records/s the job's last vertices take in.", ident,
            figures.records_out_per_second)  # fmt: skip
        put("busy_ratio", "Busy time of the busiest subtask, a share of one second.", ident, figures.busy_ratio)
        put("backpressure_ratio", "Back-pressured time of the most back-pressured subtask, a share of a second.",
            ident, figures.backpressure_ratio)  # fmt: skip
        put("kafka_lag_records", "Records the job's Kafka sources have not read yet.", ident,
            figures.kafka_lag if figures.reads_kafka else None)  # fmt: skip
        put("restarts", "Restarts of the job (Flink's numRestarts).", ident, figures.restarts)
        put("running_parallelism", "Highest parallelism of the running job's vertices.", ident,
            figures.parallelism)  # fmt: skip
        for result, count in (("completed", figures.checkpoints_completed), ("failed", figures.checkpoints_failed)):
            put("checkpoints", "Checkpoints of the running job, by result (Flink's counts).",
                {**ident, "result": result}, count)  # fmt: skip
    yield from families


#: (figure of ``DeploymentCost.total``, series suffix, scale to the unit of the name, help)
_COST_FIGURES = (
    ("vcpu_seconds", "vcpu_seconds", 1.0, "vCPU-seconds the runs' clusters requested."),
    ("gib_seconds", "gib_seconds", 1.0, "GiB-seconds of memory the runs' clusters requested."),
    ("slot_seconds", "slot_seconds", 1.0, "Task slots x seconds of the runs' clusters."),
    ("busy_slot_seconds", "busy_slot_seconds", 1.0, "Slot-seconds the job was busy (Flink's busy ratio)."),
    ("idle_tail_ms", "idle_tail_seconds", 0.001, "Seconds a cluster lived on after its job ended."),
    ("downtime_ms", "downtime_seconds", 0.001, "Seconds between a job's stop and the next one running."),
    ("checkpoints", "checkpoints", 1.0, "Checkpoints the runs' jobs completed."),
    ("kpu_hours", "kpu_hours", 1.0, "AWS Managed Service for Apache Flink KPU-hours equivalent."),
    ("cu_hours", "cu_hours", 1.0, "Ververica CU-hours equivalent."),
    ("used_vcpu_seconds", "used_vcpu_seconds", 1.0, "CPU seconds the runs' clusters used (Flink's JVM metrics)."),
    ("used_gib_seconds", "used_gib_seconds", 1.0, "GiB of memory in use x seconds, sampled from Flink's metrics."),
    ("state_gib_hours", "state_gib_hours", 1.0, "GiB of checkpointed state held x hours."),
    ("checkpoint_bytes", "checkpoint_bytes", 1.0, "Bytes the runs' checkpoints uploaded to checkpoint storage."),
)
#: (figure, ``basis`` label) of the price series
_PRICE_BASES = (("price", "compute"), ("aws_price", "aws_managed_flink"), ("ververica_price", "ververica"))


#: per resource: (its resourceVersion, what its current spec requests, the figures of its runs but the newest)
_CostCache = dict[ResourceKey, tuple[str | None, RequestedResources | None, tuple[RunCost, ...]]]


def _cost_families(
    resources: list[Resource],
    live: dict[ResourceKey, JobFigures | None],
    now: float,
    prices: Prices,
    cache: _CostCache,
) -> Iterator[Metric]:
    """What each resource's kept runs cost so far, as counters (``flinkops_<kind>_cost_*_total``; the module
    docstring lists them). The running job's busy ratio and checkpoint count come from its live figures. ``cache``
    keeps, per resourceVersion, the figures that cannot change until the status does (the older runs'), so a
    scrape works out only the newest run of each resource; resources no longer listed are dropped from it."""
    families = _Families(CounterMetricFamily, "flinkops_")
    now_ms = int(now * 1000)
    listed = {ResourceKey.of(r) for r in resources}
    for gone in [key for key in cache if key not in listed]:
        del cache[gone]

    for resource in sorted(resources, key=lambda r: (r.kind, r.metadata.namespace, r.metadata.name)):
        if resource.status is None or not resource.status.deployment_history:
            continue  # no run: nothing spent, nothing to say
        key = ResourceKey.of(resource)
        figures = live.get(key)
        version = resource.metadata.resource_version
        cached = cache.get(key)
        if cached is None or cached[0] != version or version is None:
            requested = requested_resources(resource.spec) if isinstance(resource, FlinkDeployment) else None
            cached = (version, requested, ())
            settled = None
        else:
            requested, settled = cached[1], cached[2]
        cost = resource_cost(
            resource,
            now_ms,
            prices,
            busy_ratio=figures.busy_ratio if figures is not None else None,
            checkpoints=figures.checkpoints_completed if figures is not None else None,
            requested=requested,
            settled=settled,
        )
        cache[key] = (version, requested, cost.runs[:-1])
        put = families.of(f"{resource.kind}_cost")
        ident = {"namespace": resource.metadata.namespace, "name": resource.metadata.name}
        put("wall_seconds", "Seconds the runs' clusters lived (a running one: so far).", ident,
            cost.wall_ms / 1000)  # fmt: skip
        for figure, suffix, scale, help_ in _COST_FIGURES:
            total = cost.total(figure)
            put(suffix, help_, ident, total * scale if total is not None else None)
        for figure, basis in _PRICE_BASES:
            put("price", "What the runs cost, in currency, on one basis (never sum the bases).",
                {**ident, "currency": cost.currency, "basis": basis}, cost.total(figure))  # fmt: skip
    yield from families


class MetricsServer:
    """Serves the metrics and probes on ``address:port`` in a daemon thread (port 0 picks a free one)."""

    def __init__(self, metrics: OperatorMetrics, address: str, port: int, *, liveness_window: float = 60.0) -> None:
        self.metrics = metrics
        self.liveness_window = liveness_window
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._answer(200, owner.metrics.render(), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    age = time.monotonic() - owner.metrics.last_tick
                    problems = [] if age <= owner.liveness_window else [f"main loop stalled for {age:.0f}s"]
                    problems += owner.metrics.canary_problems()
                    self._answer(503 if problems else 200, "".join(f"{p}\n" for p in problems) or "ok\n")
                elif path == "/readyz":
                    ok = owner.metrics.ready
                    self._answer(200 if ok else 503, "ok\n" if ok else "caches not synced\n")
                else:
                    self._answer(404, "not found\n")

            def _answer(self, code: int, body: str, content_type: str = "text/plain") -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return  # probes every few seconds would drown the operator's own log

        self.server = ThreadingHTTPServer((address, port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, name="metrics http", daemon=True)

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def local_metrics(
    store: ResourceStore,
    port: int | None,
    figures: FiguresReader | None = None,
    prices: Prices = DEFAULT_PRICES,
) -> Iterator[tuple[Callable[[ResourceKey, ReconcileResult, float], None], Callable[[int], None]] | None]:
    """While the local controller runs: with ``port``, the metrics and probes served on 127.0.0.1, the resources
    read from ``store`` at each scrape (and their jobs' live figures through ``figures``, a reader made here by
    default, and their cost at ``prices``), fed by each pass of the loop; yields the loop's ``on_pass`` and
    ``on_queue``. Without a port, nothing (yields None)."""
    if port is None:
        yield None
        return
    metrics = OperatorMetrics(
        store=store, figures=figures or FiguresReader(), identity=OperatorIdentity("local"), prices=prices
    )
    metrics.leader = metrics.ready = True  # one controller per home: it always leads
    depth = [0]
    metrics.queue_depth = lambda: depth[0]
    server = MetricsServer(metrics, "127.0.0.1", port).start()
    log.info("metrics on http://127.0.0.1:%s/metrics", server.port)

    def on_pass(key: ResourceKey, result: ReconcileResult, seconds: float) -> None:
        metrics.tick()
        depth[0] = max(0, depth[0] - 1)  # this one had its pass
        outcome = "error" if result.error else "ok"
        metrics.observe_reconcile(key.kind, outcome, seconds, result.error)
        current = store.get(key)
        state = current.status.lifecycle_state if current is not None and current.status is not None else None
        name = f"{key.namespace}/{key.name}"
        metrics.set_lifecycle(key.kind, name, (state.value if state is not None else "CREATED") if current else None)

    def on_queue(due: int) -> None:
        metrics.tick()
        depth[0] = due

    try:
        yield on_pass, on_queue
    finally:
        server.stop()
