"""The planner's value types: what the controller observed, what a plan asks the executor to do, and the plan.

Every other planner module builds on this one and it imports none of them (the bottom of the package). It also
holds the few status helpers all of them share: the ``Builder`` that accumulates a plan and derives lifecycle
and conditions once when it is finished, copy-with-update helpers for the nested status, and errors, which are
always recorded and cleared together with their ``ErrorReason`` (``with_error``, ``NO_ERROR``; validation
complaints through ``record_validation``).

Called by: the other ``core.planner`` modules; the controller reads the types through ``flinkops.core.planner``.
Pure: no I/O, no clock (time comes in as ``Context.now_ms``). Every value here is immutable except the builder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from flinkops.api.models import (
    FlinkDeploymentSpec,
    FlinkDeploymentStatus,
    FlinkSessionJobSpec,
    FlinkSessionJobStatus,
    UpgradeMode,
)
from flinkops.core.conditions import with_conditions
from flinkops.core.diff import SpecChange
from flinkops.core.lifecycle import derive_lifecycle
from flinkops.errors import ClusterFault, ErrorReason

__all__ = [
    "FAST",
    "IDLE",
    "NO_ERROR",
    "RECONCILE_INTERVAL_KEY",
    "STEADY",
    "S_",
    "TERMINAL_JOB_STATES",
    "Action",
    "Builder",
    "CancelSessionJob",
    "CheckpointKind",
    "Context",
    "DeleteCluster",
    "DeployCluster",
    "DisposeSnapshots",
    "EventNote",
    "JobObservation",
    "Observation",
    "Plan",
    "PrepareCluster",
    "RemoveResource",
    "ReplaceMissingProcesses",
    "ResizeSessionCluster",
    "SavepointFormatType",
    "ScaleInPlace",
    "Status",
    "SubmitSessionJob",
    "TaskManagerUse",
    "TriggerCheckpoint",
    "TriggerObservation",
    "TriggerSavepoint",
    "headline",
    "job_running",
    "record_validation",
    "rest",
    "set_job",
    "set_recon",
    "stateful",
    "with_error",
    "with_lifecycle",
]

FAST = 1.0  # seconds between passes while something is moving
#: Between passes of a steady resource that is not quiet yet (it just became stable, a process was replaced).
STEADY = 10.0
#: Between passes of a STABLE resource with nothing pending, unless ``RECONCILE_INTERVAL_KEY`` says otherwise: a
#: minute, as the reference operator. A dead process wakes its deployment (and the session jobs on it) at once
#: (the runtime reports it), a spec change wakes it at once, and the next periodic snapshot sets its own
#: wake-up (``Builder.wake_at``), so this only bounds how late a failure that Flink handles inside the job (a
#: restart, a job that fails for good) shows in status.
IDLE = 60.0
RECONCILE_INTERVAL_KEY = "kubernetes.operator.reconcile.interval"

TERMINAL_JOB_STATES = frozenset({"FAILED", "FINISHED", "CANCELED"})
_VALIDATION_PREFIX = "ValidationError: "


# ----------------------------------------------------------------------------------------- observations


@dataclass(frozen=True)
class JobObservation:
    job_id: str
    state: str
    name: str | None = None
    start_time: int | None = None  # epoch ms
    end_time: int | None = None
    error: str | None = None
    completed_checkpoints: int = 0
    #: bytes of state the newest completed checkpoint holds (else Flink's ``summary.state_size.avg``), and the
    #: bytes a completed checkpoint uploaded on average (``summary.checkpointed_size.avg``); None: not reported
    checkpoint_state_bytes: int | None = None
    checkpoint_uploaded_bytes: int | None = None
    #: What the job's own cluster uses (an application deployment's; a session job shares its cluster and gets
    #: None): cumulative JVM CPU seconds and bytes of memory in use now, summed over its processes
    cluster_cpu_seconds: float | None = None
    cluster_memory_bytes: int | None = None
    observed_at: int | None = None  # epoch ms of this observation (the usage figures' time)
    latest_checkpoint_path: str | None = None
    latest_checkpoint_time: int | None = None
    running_since: int | None = None  # epoch ms since when every task of the job has been seen RUNNING
    all_tasks_running: bool = True
    duration_ms: int | None = None
    accumulators: Mapping[str, str] = field(default_factory=dict)  # read once the job has ended


@dataclass(frozen=True)
class TriggerObservation:
    """Where a savepoint or checkpoint trigger recorded in status stands in Flink. UNKNOWN: Flink does not
    know the trigger id (it never arrived, or the JobManager that had it is gone)."""

    state: Literal["IN_PROGRESS", "COMPLETED", "FAILED", "UNKNOWN"]
    location: str | None = None  # savepoint path, or the checkpoint id for checkpoints
    failure: str | None = None


@dataclass(frozen=True)
class Observation:
    """What the controller saw this pass, using the last deployed config."""

    cluster_exists: bool = False
    cluster_generation: int | None = None
    cluster_job_id: str | None = None  # the job id the running cluster was started for
    jobmanager_alive: bool = False
    rest_ready: bool = False
    rest_url: str | None = None
    taskmanagers_alive: int = 0
    jobmanagers_alive: int = 0
    jobmanagers_expected: int = 0
    taskmanagers_expected: int = 0
    job: JobObservation | None = None
    flink_version: str | None = None
    latest_stored_checkpoint: str | None = None  # newest completed checkpoint found in checkpoint storage
    savepoint_trigger: TriggerObservation | None = None  # the pending trigger in status, as Flink reports it
    checkpoint_trigger: TriggerObservation | None = None
    stored_savepoint: str | None = None  # a savepoint of the job in storage, newer than the pending trigger
    prepared_generation: int | None = None  # a cluster pre-started next to the running one, for this generation
    prepared_ready: bool = False  # its JobManager answers and every TaskManager registered
    fault: ClusterFault | None = None  # what the runtime sees wrong with the cluster's pods (``steady``)
    #: a session cluster's TaskManagers as Flink reports them (only where session clusters grow: ``growth``)
    taskmanager_slots: tuple[TaskManagerUse, ...] = ()


@dataclass(frozen=True)
class TaskManagerUse:
    """One TaskManager of a session cluster: its process index, slots, free slots, and for how long (seconds)
    the controller has seen every slot of it free."""

    index: int
    slots: int
    free: int
    idle_s: float = 0.0


@dataclass(frozen=True)
class Context:
    now_ms: int
    fresh_job_id: str
    fresh_trigger_id: str = "5" * 32
    fresh_checkpoint_trigger_id: str = "c" * 32
    valid: bool = True
    validation_error: str | None = None
    session_ready: bool = False  # session jobs: the target session cluster's REST API is up
    session_rest_url: str | None = None
    session_exists: bool = False  # session jobs: a FlinkDeployment of that name is stored
    #: session clusters: whether this runtime starts and stops TaskManagers as the jobs need (``growth``) and
    #: the slots the session jobs on the cluster need
    elastic_taskmanagers: bool = False
    session_slots_needed: int = 0


# ----------------------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class Action:
    def describe(self) -> str:
        return type(self).__name__


@dataclass(frozen=True)
class DeployCluster(Action):
    spec: FlinkDeploymentSpec
    generation: int
    job_id: str | None
    restore_path: str | None = None

    def describe(self) -> str:
        restore = f" restoring {self.restore_path}" if self.restore_path else ""
        return f"deploy cluster for generation {self.generation}{restore}"


@dataclass(frozen=True)
class DeleteCluster(Action):
    """Stop the cluster and wait until its processes (pods) are gone; with ``keep_prepared`` a cluster
    pre-started for the upgrade stays (the deploy that follows promotes it)."""

    reason: str = ""
    keep_prepared: bool = False

    def describe(self) -> str:
        what = "delete cluster" + (" (keeping the pre-started one)" if self.keep_prepared else "")
        return f"{what} ({self.reason})" if self.reason else what


@dataclass(frozen=True)
class PrepareCluster(Action):
    """Start ``spec``'s cluster for ``generation`` next to the running one, with no job yet (pre-started
    upgrade). The runtime may refuse; the executor then records why (``PrestartSkipped``)."""

    spec: FlinkDeploymentSpec
    generation: int

    def describe(self) -> str:
        return f"pre-start the cluster of generation {self.generation} next to the running one"


@dataclass(frozen=True)
class ReplaceMissingProcesses(Action):
    """Restart dead TaskManagers and dead standby JobManagers of a cluster whose active JobManager lives."""

    def describe(self) -> str:
        return "start replacement processes"


@dataclass(frozen=True)
class SubmitSessionJob(Action):
    spec: FlinkSessionJobSpec
    job_id: str
    rest_url: str
    restore_path: str | None = None

    def describe(self) -> str:
        return f"submit job {self.job_id} to the session cluster"


@dataclass(frozen=True)
class CancelSessionJob(Action):
    job_id: str
    rest_url: str

    def describe(self) -> str:
        return f"cancel job {self.job_id}"


SavepointFormatType = Literal["CANONICAL", "NATIVE"]
CheckpointKind = Literal["FULL", "INCREMENTAL"]


@dataclass(frozen=True)
class TriggerSavepoint(Action):
    """Trigger a savepoint (``stop``: stop the job with it) under a trigger id already recorded in status."""

    job_id: str
    trigger_id: str
    rest_url: str
    stop: bool = False
    format_type: SavepointFormatType = "CANONICAL"

    def describe(self) -> str:
        what = "stop job {} with a savepoint" if self.stop else "trigger a savepoint of job {}"
        return what.format(self.job_id) + f" ({self.format_type.lower()}, trigger {self.trigger_id})"


@dataclass(frozen=True)
class TriggerCheckpoint(Action):
    job_id: str
    trigger_id: str
    rest_url: str
    checkpoint_type: CheckpointKind = "FULL"

    def describe(self) -> str:
        return f"trigger a {self.checkpoint_type.lower()} checkpoint of job {self.job_id}"


@dataclass(frozen=True)
class ResizeSessionCluster(Action):
    """Run ``taskmanagers`` TaskManagers in a session cluster (new ones started, the highest-numbered extras
    stopped): its jobs need more slots, or the ones started for them are idle."""

    taskmanagers: int
    was: int
    #: when shrinking: the indexes of the (idle) TaskManagers to stop
    stop: tuple[int, ...] = ()

    def describe(self) -> str:
        verb = "start" if self.taskmanagers > self.was else "stop"
        return f"{verb} {abs(self.taskmanagers - self.was)} TaskManager(s) of the session cluster"


@dataclass(frozen=True)
class ScaleInPlace(Action):
    """Rescale a running job without restarting it: the TaskManagers its new parallelism needs, then the
    adaptive scheduler's resource requirements (vertices that ran at the old parallelism follow it)."""

    spec: FlinkDeploymentSpec
    job_id: str
    rest_url: str
    old_parallelism: int
    parallelism: int
    taskmanagers: int  # TaskManagers the cluster runs now

    def describe(self) -> str:
        return f"rescale job {self.job_id} in place from parallelism {self.old_parallelism} to {self.parallelism}"


@dataclass(frozen=True)
class DisposeSnapshots(Action):
    paths: tuple[str, ...]

    def describe(self) -> str:
        return f"dispose of {len(self.paths)} savepoint(s)"


@dataclass(frozen=True)
class RemoveResource(Action):
    def describe(self) -> str:
        return "remove the resource"


# ----------------------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class EventNote:
    type: str  # Normal | Warning
    reason: str
    message: str


Status = FlinkDeploymentStatus | FlinkSessionJobStatus
S_ = TypeVar("S_", bound=FlinkSessionJobStatus)  # a status, kept as the kind it is (FlinkDeploymentStatus extends it)


@dataclass(frozen=True)
class Plan:
    status: Status
    intent: Status | None = None
    actions: tuple[Action, ...] = ()
    events: tuple[EventNote, ...] = ()
    requeue_after: float = STEADY
    change: SpecChange | None = None
    summary: str = ""
    #: session jobs: the session cluster (``spec.deploymentName``) the job waits for before it can be submitted
    waiting_for: str | None = None


@dataclass
class Builder:
    """Accumulates a plan; finishing it derives lifecycle and conditions once."""

    status: Status
    intent: Status | None = None
    actions: list[Action] = field(default_factory=list)
    events: list[EventNote] = field(default_factory=list)
    requeue_after: float = STEADY
    change: SpecChange | None = None
    summary: str = ""
    #: The earliest moment (epoch ms) something is due without any change (a periodic snapshot): the plan's
    #: requeue never waits past it.
    wake_at_ms: int | None = None
    waiting_for: str | None = None

    def event(self, type_: str, reason: str, message: str) -> None:
        self.events.append(EventNote(type_, reason, message))

    def wake_at(self, ms: int) -> None:
        self.wake_at_ms = ms if self.wake_at_ms is None else min(self.wake_at_ms, ms)

    def finish(self, *, deleting: bool = False, now_ms: int = 0) -> Plan:
        status = with_lifecycle(self.status, deleting, now_ms)
        intent = with_lifecycle(self.intent, deleting, now_ms) if self.intent is not None else None
        return Plan(
            status=status,
            intent=intent,
            actions=tuple(self.actions),
            events=tuple(self.events),
            requeue_after=self._requeue(now_ms),
            change=self.change,
            summary=self.summary,
            waiting_for=self.waiting_for,
        )

    def _requeue(self, now_ms: int) -> float:
        if self.wake_at_ms is None or not now_ms:
            return self.requeue_after
        return max(0.0, min(self.requeue_after, (self.wake_at_ms - now_ms) / 1000))


def with_lifecycle(status: Status, deleting: bool, now_ms: int) -> Status:
    """``status`` with its lifecycle state derived from its facts and its conditions brought up to date."""
    lifecycle = derive_lifecycle(status, deleting=deleting)
    status = status.model_copy(update={"lifecycle_state": lifecycle})
    return with_conditions(status, now_ms)


# ----------------------------------------------------------------------------------------- small helpers


def headline(error: str) -> str:
    """The line of a Java stack trace that says what broke: the innermost ``Caused by:``, else the first."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    if not lines:
        return ""
    causes = [line.removeprefix("Caused by:").strip() for line in lines if line.startswith("Caused by:")]
    return (causes[-1] if causes else lines[0])[:500]


def record_validation(b: Builder, ctx: Context) -> None:
    """An invalid spec is reported on the resource (once per distinct complaint, not every pass); a valid
    one clears an earlier complaint."""
    if ctx.valid:
        if b.status.error_reason == ErrorReason.VALIDATION_ERROR:
            b.status = b.status.model_copy(update=NO_ERROR)
        return
    error = f"{_VALIDATION_PREFIX}{ctx.validation_error}"
    if b.status.error != error:
        b.event("Warning", "ValidationError", ctx.validation_error or "invalid spec")
    b.status = with_error(b.status, ErrorReason.VALIDATION_ERROR, error)


#: A status update that clears the error and its reason together.
NO_ERROR: dict[str, object] = {"error": None, "error_reason": None}


def with_error(status: S_, reason: ErrorReason, message: str, **update: object) -> S_:
    """``status`` with an error recorded: the reason decisions read, and the message people read."""
    return status.model_copy(update={"error": message, "error_reason": reason, **update})


def set_recon(status: S_, **update: object) -> S_:
    """``status`` with fields of its reconciliation status replaced."""
    recon = status.reconciliation_status.model_copy(update=update)
    return status.model_copy(update={"reconciliation_status": recon})


def set_job(status: S_, **update: object) -> S_:
    """``status`` with fields of its job status replaced."""
    return status.model_copy(update={"job_status": status.job_status.model_copy(update=update)})


def stateful(mode: UpgradeMode) -> bool:
    return mode != UpgradeMode.STATELESS


def rest(obs: Observation) -> str:
    """The REST address of a cluster observed with a running job (actions on that job carry it)."""
    assert obs.rest_url is not None, "a running job was observed through its cluster's REST API"
    return obs.rest_url


def job_running(obs: Observation) -> bool:
    """Running with every task running: the only time Flink can take a savepoint or checkpoint."""
    return obs.rest_ready and obs.job is not None and obs.job.state == "RUNNING" and obs.job.all_tasks_running
