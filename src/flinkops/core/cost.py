"""What a Flink deployment's runs cost: resource-time, the idle tail, downtime, managed-service equivalents, a price.

A run (``status.deploymentHistory``, one ``DeploymentRecord``) holds a cluster from the moment it was asked of the
runtime (``deployed_at``; for older records ``started_at``, the pass that decided the deploy) until it was
released (``released_at``); the controller writes both around the runtime's calls. Over that span the cluster
requests what the run's spec asked for (``RequestedResources``: JobManager and TaskManager processes with their
cpu and memory, slots per TaskManager), so:

* vCPU-seconds and GiB-seconds = the cluster's cpu (GiB) x the span in seconds;
* slot-seconds = TaskManagers x slots x the span; busy slot-seconds = the slot-seconds while the job ran x the
  busy ratio (Flink's ``busyTimeMsPerSecond`` / 1000), when a caller knows it;
* the idle tail = ``released_at - ended_at``: a job that ended (a batch job, a failed one) on a cluster still up;
* downtime = ``DeploymentRecord.downtime_ms`` (the previous job stopped until this one ran);
* AWS Managed Service for Apache Flink KPUs (1 KPU = 1 vCPU + 4 GB, GB = 10^9 bytes): the TaskManagers' cpu and
  memory rounded *up* to whole KPUs (AWS allocates whole KPUs), plus ``Prices.aws_orchestration_kpus`` (AWS runs
  the JobManager itself and charges one KPU per application for it); KPU-hours = KPUs x the span in hours, time
  not rounded;
* Ververica Cloud CUs (1 CU = 1 CPU + 4 GiB): the whole cluster's (JobManagers included) max(cpu, GiB / 4), not
  rounded; CU-hours = CUs x the span in hours;
* a price from ``Prices``: vCPU-hours and GiB-hours at the compute rates, and the two equivalents at theirs;
* what the run *used*, as the controller recorded it from Flink's metrics (``DeploymentRecord.used_cpu_seconds``,
  ``used_gib_seconds``, ``state_gib_hours``, ``checkpoint_bytes``; ``core.planner.steady`` says how they are
  sampled): used vCPU-seconds and GiB-seconds (utilisation = used / requested), the GiB-hours of checkpointed state
  held and the bytes its checkpoints uploaded. A live run's figures count to its last sample (at most ten minutes
  old). Only an application deployment's run records the cluster's usage: a session cluster is shared by its
  session jobs and no share of it is attributed to one (no double count; its own FlinkDeployment records none
  either), while a session job's state and checkpoint bytes are its own job's.

With ``since_ms`` every span is cut to ``[since_ms, now_ms]``; a run's used figures, recorded as totals, are
then scaled by the share of its wall time inside the window (an estimate: the report says so). A run recorded
before these fields existed has no ``released_at`` or ``requested``: its span ends at the best recorded fact and
the report says so (``notes``).

``resource_cost`` prices one FlinkDeployment or FlinkSessionJob from its recorded runs: ``service.cost.cost_of`` is
it for the front ends, and the controller's metrics (``wiring.metrics``, a layer below the service) call it directly,
so both give the same figures.

Called by: the planner (``requested_resources`` when a run is recorded), ``service.cost`` (the report, the web
page, ``top``, ``describe``) and ``wiring.metrics``. Pure: no I/O, no clock (``now_ms`` is given).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flinkops.api.flinkconf import task_slots, taskmanager_count
from flinkops.api.models import (
    DeploymentRecord,
    FlinkDeployment,
    FlinkDeploymentSpec,
    FlinkSessionJob,
    JobManagerDeploymentStatus,
    RequestedResources,
)
from flinkops.api.quantities import cpu_cores, memory_bytes

__all__ = [
    "DEFAULT_MEMORY",
    "DEFAULT_PRICES",
    "DeploymentCost",
    "Prices",
    "RunCost",
    "deployment_cost",
    "kpus",
    "price_text",
    "requested_resources",
    "resource_cost",
    "run_cost",
    "taskmanagers",
    "ververica_cus",
]

GIB = 1 << 30
KPU_MEMORY_BYTES = 4 * 10**9  # AWS: 4 GB per KPU
CU_MEMORY_BYTES = 4 * GIB  # Ververica: 4 GiB per CU
#: What flinkops gives a JobManager or TaskManager process whose spec names no memory (``flink.config``).
DEFAULT_MEMORY = "1024m"


def price_text(amount: float, currency: str) -> str:
    """A price for people: cents from one unit up ("12.34 USD"), four decimals below it, where a young job's
    price lives ("0.0012 USD", never a "0.00" that reads as free)."""
    return f"{amount:.2f} {currency}" if amount >= 1 else f"{amount:.4f} {currency}"


@dataclass(frozen=True)
class Prices:
    """Rates in ``currency`` per hour. None: no rate known, so no price for that column."""

    currency: str = "USD"
    vcpu_hour: float | None = None
    gib_hour: float | None = None
    kpu_hour: float | None = None
    aws_orchestration_kpus: int = 1
    cu_hour: float | None = None


#: Built-in rates (USD per hour, AWS us-east-1 list prices): a requested vCPU and GiB on AWS Fargate, an AWS
#: Managed Service for Apache Flink KPU. Ververica has no public list price flinkops can stand behind: set
#: ``ververica.cuHour`` in your price table to see that column priced.
DEFAULT_PRICES = Prices(
    currency="USD", vcpu_hour=0.04048, gib_hour=0.004445, kpu_hour=0.11, aws_orchestration_kpus=1, cu_hour=None
)


# ------------------------------------------------------------------------------------------ what a spec asks for


def taskmanagers(spec: FlinkDeploymentSpec) -> int:
    """TaskManagers a deployment runs (the runtimes' rule, ``api.flinkconf.taskmanager_count``)."""
    return taskmanager_count(spec, spec.flink_configuration)


def _from_resources(resources: Mapping[str, Any] | None, name: str) -> Any:
    """``resources.requests.<name>``, else ``resources.limits.<name>`` (what Kubernetes schedules by)."""
    for section in ("requests", "limits"):
        block = (resources or {}).get(section)
        if isinstance(block, Mapping) and block.get(name) is not None:
            return block[name]
    return None


def _component(spec: FlinkDeploymentSpec, role: str) -> tuple[float, int]:
    """(cpu, memory bytes) one process of ``role`` (jobmanager | taskmanager) requests: ``resources``, then the
    compact ``resource``, then the Flink keys, then the defaults (a JobManager 1 cpu, a TaskManager one per slot as
    Flink's native Kubernetes integration does; ``DEFAULT_MEMORY``)."""
    part = spec.job_manager if role == "jobmanager" else spec.task_manager
    config = spec.flink_configuration
    cpu: Any = _from_resources(part.resources if part else None, "cpu")
    if cpu is None and part is not None and part.resource is not None:
        cpu = part.resource.cpu
    if cpu is None:
        cpu = config.get(f"kubernetes.{role}.cpu")
    default_cpu = 1.0 if role == "jobmanager" else float(task_slots(config))
    try:
        cores = float(cpu_cores(cpu)) if cpu is not None else default_cpu
    except ValueError:
        cores = default_cpu
    if cores <= 0:  # Flink's -1.0: "not set"
        cores = default_cpu
    memory: Any = _from_resources(part.resources if part else None, "memory")
    if memory is None and part is not None and part.resource is not None:
        memory = part.resource.memory
    if memory is None:
        memory = config.get(f"{role}.memory.process.size")
    try:
        size = memory_bytes(str(memory)) if memory else memory_bytes(DEFAULT_MEMORY)
    except ValueError:
        size = memory_bytes(DEFAULT_MEMORY)
    return cores, size


def requested_resources(spec: FlinkDeploymentSpec) -> RequestedResources:
    """What a cluster deployed from ``spec`` requests."""
    jm_cpu, jm_memory = _component(spec, "jobmanager")
    tm_cpu, tm_memory = _component(spec, "taskmanager")
    jobmanagers = spec.job_manager.replicas if spec.job_manager is not None else 1
    return RequestedResources(
        job_managers=max(1, jobmanagers),
        job_manager_cpu=jm_cpu,
        job_manager_memory_bytes=jm_memory,
        task_managers=taskmanagers(spec),
        task_manager_cpu=tm_cpu,
        task_manager_memory_bytes=tm_memory,
        task_slots=task_slots(spec.flink_configuration),
    )


def _vcpus(r: RequestedResources) -> float:
    return r.job_managers * r.job_manager_cpu + r.task_managers * r.task_manager_cpu


def _memory(r: RequestedResources) -> int:
    return r.job_managers * r.job_manager_memory_bytes + r.task_managers * r.task_manager_memory_bytes


def kpus(r: RequestedResources, orchestration: int = 1) -> int:
    """AWS Managed Flink KPUs equivalent to ``r``: the TaskManagers' cpu and memory in whole KPUs (rounded up),
    plus ``orchestration`` KPUs for the JobManager AWS runs."""
    cpu = r.task_managers * r.task_manager_cpu
    memory = r.task_managers * r.task_manager_memory_bytes / KPU_MEMORY_BYTES
    # A tiny tolerance so that 2.0000000001 vCPU from float sums does not cost a whole KPU more.
    return math.ceil(max(cpu, memory) - 1e-9) + orchestration


def ververica_cus(r: RequestedResources) -> float:
    """Ververica CUs equivalent to ``r``: the whole cluster's max(cpu, GiB / 4), not rounded."""
    return max(_vcpus(r), _memory(r) / CU_MEMORY_BYTES)


# ------------------------------------------------------------------------------------------ the figures


@dataclass(frozen=True)
class RunCost:
    """The figures of one run. Times are epoch ms; ``None``: not known (never a made-up zero)."""

    generation: int
    job_id: str | None
    reason: str
    started_at: int
    ended_at: int | None
    released_at: int | None
    end_state: str | None
    #: the cluster still runs: its span is counted up to ``now_ms``
    live: bool
    wall_ms: int
    requested: RequestedResources | None
    vcpu_seconds: float | None
    gib_seconds: float | None
    slot_seconds: float | None
    busy_slot_seconds: float | None
    idle_tail_ms: int | None
    downtime_ms: int | None
    checkpoints: int | None
    kpus: int | None
    kpu_hours: float | None
    cus: float | None
    cu_hours: float | None
    price: float | None
    aws_price: float | None
    ververica_price: float | None
    notes: tuple[str, ...] = ()
    #: CPU seconds and GiB-seconds of memory the run's cluster used (Flink's JVM metrics)
    used_vcpu_seconds: float | None = None
    used_gib_seconds: float | None = None
    #: GiB of checkpointed state held x hours, and bytes the run's checkpoints uploaded to checkpoint storage
    state_gib_hours: float | None = None
    checkpoint_bytes: float | None = None

    @property
    def efficiency(self) -> float | None:
        """Busy slot-seconds over slot-seconds (the idle tail and the start count as not busy)."""
        if self.busy_slot_seconds is None or not self.slot_seconds:
            return None
        return self.busy_slot_seconds / self.slot_seconds

    @property
    def cpu_utilisation(self) -> float | None:
        """Used vCPU-seconds over requested ones, when both are known."""
        return _ratio(self.used_vcpu_seconds, self.vcpu_seconds)

    @property
    def memory_utilisation(self) -> float | None:
        """Used GiB-seconds over requested ones, when both are known."""
        return _ratio(self.used_gib_seconds, self.gib_seconds)


def _ratio(used: float | None, requested: float | None) -> float | None:
    return used / requested if used is not None and requested else None


def _total(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


@dataclass(frozen=True)
class DeploymentCost:
    """The runs of one resource and their sums (a sum over the runs whose figure is known)."""

    namespace: str
    name: str
    kind: str
    currency: str
    since_ms: int | None
    now_ms: int
    runs: tuple[RunCost, ...] = field(default_factory=tuple)

    def total(self, name: str) -> float | None:
        return _total([getattr(r, name) for r in self.runs])

    @property
    def wall_ms(self) -> int:
        return sum(r.wall_ms for r in self.runs)

    @property
    def efficiency(self) -> float | None:
        busy, slots = self.total("busy_slot_seconds"), self.total("slot_seconds")
        return busy / slots if busy is not None and slots else None

    def _used_over_requested(self, used: str, requested: str) -> float | None:
        """The runs that know both figures: their used sum over their requested sum."""
        pairs = [(getattr(r, used), getattr(r, requested)) for r in self.runs]
        known = [(u, q) for u, q in pairs if u is not None and q is not None]
        return _ratio(sum(u for u, _ in known), sum(q for _, q in known)) if known else None

    @property
    def cpu_utilisation(self) -> float | None:
        return self._used_over_requested("used_vcpu_seconds", "vcpu_seconds")

    @property
    def memory_utilisation(self) -> float | None:
        return self._used_over_requested("used_gib_seconds", "gib_seconds")


def _clip(start: int | None, end: int | None, lo: int | None, hi: int) -> int | None:
    """Milliseconds of ``[start, end]`` inside ``[lo, hi]``; None when either end is unknown."""
    if start is None or end is None:
        return None
    return max(0, min(end, hi) - max(start, lo if lo is not None else start))


def _cluster_end(
    run: DeploymentRecord, following: DeploymentRecord | None, live: bool, now_ms: int
) -> tuple[int | None, str | None]:
    """When the run's cluster went, and a note when that is an estimate (a run recorded before ``released_at``)."""
    if run.released_at is not None:
        return run.released_at, None
    if live:
        return now_ms, None
    estimate = following.stopped_at or following.started_at if following is not None else None
    estimate = estimate or run.ended_at or run.stop_requested_at
    if estimate is None:
        return None, "when its cluster went is not recorded"
    return estimate, "when its cluster went is not recorded: counted to the nearest recorded stop"


def _checkpoints(run: DeploymentRecord, live: int | None) -> int | None:
    """The run's completed checkpoints: a live reading, else what the run recorded at its end, else 0 for a run
    that never checkpointed; None (unknown) for one that did but whose count was not recorded."""
    if live is not None:
        return live
    if run.checkpoints is not None:
        return run.checkpoints
    return None if run.checkpointed else 0


def run_cost(
    run: DeploymentRecord,
    *,
    now_ms: int,
    prices: Prices,
    live: bool = False,
    following: DeploymentRecord | None = None,
    requested: RequestedResources | None = None,
    busy_ratio: float | None = None,
    checkpoints: int | None = None,
    since_ms: int | None = None,
) -> RunCost:
    """The figures of ``run``. ``live``: its cluster still runs (counted up to ``now_ms``). ``following``: the
    next run, whose recorded stop bounds an old run's span. ``requested``: what to price a run by that did not
    record its own (the current spec's). ``busy_ratio``: the job's busy time per second (0-1), when known.
    ``checkpoints``: the running job's completed checkpoints read live (the run records its count when it ends)."""
    notes: list[str] = []
    end, note = _cluster_end(run, following, live, now_ms)
    if note:
        notes.append(note)
    start = run.deployed_at if run.deployed_at is not None else run.started_at
    wall = _clip(start, end, since_ms, now_ms)
    resources = run.requested or requested
    if run.requested is None and requested is not None:
        notes.append("requested resources taken from the current spec (the run did not record its own)")
    seconds = wall / 1000 if wall is not None else None
    vcpu_s = gib_s = slot_s = busy_s = kpu_h = cu_h = None
    kpu_n: int | None = None
    cu_n: float | None = None
    if resources is not None and seconds is not None:
        vcpu_s = _vcpus(resources) * seconds
        gib_s = _memory(resources) / GIB * seconds
        slots = resources.task_managers * resources.task_slots
        slot_s = slots * seconds
        if busy_ratio is not None:
            job_end = run.ended_at if run.ended_at is not None else end
            ran = _clip(run.running_at, job_end, since_ms, now_ms)
            busy_s = slots * (ran or 0) / 1000 * min(max(busy_ratio, 0.0), 1.0)
        kpu_n = kpus(resources, prices.aws_orchestration_kpus)
        kpu_h = kpu_n * seconds / 3600
        cu_n = ververica_cus(resources)
        cu_h = cu_n * seconds / 3600
    idle = _clip(run.ended_at, run.released_at, since_ms, now_ms) if run.end_state is not None else None
    if idle is None and live and run.ended_at is not None:
        idle = _clip(run.ended_at, now_ms, since_ms, now_ms)  # ended, cluster not released yet: the tail so far
    downtime = _clip(run.stopped_at, run.running_at, since_ms, now_ms) if run.downtime_ms is not None else None
    share = 1.0
    if since_ms is not None and wall is not None:
        whole = _clip(start, end, None, now_ms)
        share = wall / whole if whole else 0.0
        recorded = (run.used_cpu_seconds, run.used_gib_seconds, run.state_gib_hours, run.checkpoint_bytes)
        if share < 1.0 and any(v is not None for v in recorded):
            notes.append("used figures cut to the window by its share of the run's wall time (an estimate)")

    def used(value: float | None) -> float | None:
        return value * share if value is not None else None

    price = None
    if vcpu_s is not None and gib_s is not None and prices.vcpu_hour is not None and prices.gib_hour is not None:
        price = vcpu_s / 3600 * prices.vcpu_hour + gib_s / 3600 * prices.gib_hour
    return RunCost(
        generation=run.generation,
        job_id=run.job_id,
        reason=run.reason,
        started_at=run.started_at,
        ended_at=run.ended_at,
        released_at=run.released_at,
        end_state=run.end_state,
        live=live and run.released_at is None,
        wall_ms=wall or 0,
        requested=resources,
        vcpu_seconds=vcpu_s,
        gib_seconds=gib_s,
        slot_seconds=slot_s,
        busy_slot_seconds=busy_s,
        idle_tail_ms=idle,
        downtime_ms=downtime,
        checkpoints=_checkpoints(run, checkpoints),
        kpus=kpu_n,
        kpu_hours=kpu_h,
        cus=cu_n,
        cu_hours=cu_h,
        price=price,
        aws_price=kpu_h * prices.kpu_hour if kpu_h is not None and prices.kpu_hour is not None else None,
        ververica_price=cu_h * prices.cu_hour if cu_h is not None and prices.cu_hour is not None else None,
        notes=tuple(notes),
        used_vcpu_seconds=used(run.used_cpu_seconds),
        used_gib_seconds=used(run.used_gib_seconds),
        state_gib_hours=used(run.state_gib_hours),
        checkpoint_bytes=used(run.checkpoint_bytes),
    )


def deployment_cost(
    history: Sequence[DeploymentRecord],
    *,
    namespace: str,
    name: str,
    kind: str,
    now_ms: int,
    prices: Prices,
    cluster_up: bool,
    requested: RequestedResources | None = None,
    busy_ratio: float | None = None,
    checkpoints: int | None = None,
    since_ms: int | None = None,
    settled: Sequence[RunCost] | None = None,
) -> DeploymentCost:
    """The figures of every run in ``history`` (oldest first) that overlaps ``[since_ms, now_ms]``.
    ``cluster_up``: the newest run's cluster still runs. ``busy_ratio`` and ``checkpoints`` apply to the newest
    run only (they are live readings). ``settled``: the figures of every run but the newest from an earlier call
    over the same history, prices and requested resources, without ``since_ms`` (they do not depend on
    ``now_ms``: only the newest run can still be running), reused rather than worked out again."""
    reuse = settled is not None and since_ms is None and len(settled) == len(history) - 1
    runs: list[RunCost] = list(settled) if reuse and settled is not None else []
    for i, run in enumerate(history):
        newest = i == len(history) - 1
        if reuse and not newest:
            continue
        figures = run_cost(
            run,
            now_ms=now_ms,
            prices=prices,
            live=newest and cluster_up,
            following=history[i + 1] if not newest else None,
            requested=requested,
            busy_ratio=busy_ratio if newest else None,
            checkpoints=checkpoints if newest else None,
            since_ms=since_ms,
        )
        if since_ms is not None and not figures.wall_ms and not figures.live:
            continue  # outside the window
        runs.append(figures)
    return DeploymentCost(namespace, name, kind, prices.currency, since_ms, now_ms, tuple(runs))


def cluster_up(resource: FlinkDeployment | FlinkSessionJob) -> bool:
    """Whether the newest run's cluster (a session job: its job) still runs."""
    status = resource.status
    if status is None or not status.deployment_history:
        return False
    run = status.deployment_history[-1]
    if run.released_at is not None:
        return False
    if isinstance(resource, FlinkDeployment):
        assert resource.status is not None
        return resource.status.job_manager_deployment_status is not JobManagerDeploymentStatus.MISSING
    return run.ended_at is None and status.job_status.state not in ("FINISHED", "FAILED", "CANCELED")


def resource_cost(
    resource: FlinkDeployment | FlinkSessionJob,
    now_ms: int,
    prices: Prices = DEFAULT_PRICES,
    *,
    busy_ratio: float | None = None,
    checkpoints: int | None = None,
    since: int | None = None,
    requested: RequestedResources | None = None,
    settled: Sequence[RunCost] | None = None,
) -> DeploymentCost:
    """What ``resource``'s runs cost up to ``now_ms`` (from ``since``, epoch ms, when given). ``busy_ratio`` and
    ``checkpoints``: live readings of the running job; ``settled``: the older runs' figures from an earlier call
    on the same resourceVersion (``deployment_cost``). ``requested``: what the current spec requests, when the
    caller has it at hand (a FlinkDeployment's is otherwise worked out from its spec).

    A session job's runs share their session cluster: they get wall time, downtime and checkpoints, and their
    resources are priced on the session cluster (its FlinkDeployment)."""
    if requested is None and isinstance(resource, FlinkDeployment):
        requested = requested_resources(resource.spec)
    if isinstance(resource, FlinkSessionJob):
        requested = None
    history = resource.status.deployment_history if resource.status is not None else []
    return deployment_cost(
        history,
        namespace=resource.metadata.namespace,
        name=resource.metadata.name,
        kind=resource.kind,
        now_ms=now_ms,
        prices=prices,
        cluster_up=cluster_up(resource),
        requested=requested,
        busy_ratio=busy_ratio,
        checkpoints=checkpoints,
        since_ms=since,
        settled=settled,
    )
