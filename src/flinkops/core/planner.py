"""The planner: from (desired spec, recorded status, observation) to a plan. Pure.

A ``Plan`` is an ``intent`` status to write *before* acting (the write-ahead log: target spec, UPGRADING,
the job id about to be used, the state to restore from), a short list of ``Action`` values for the executor,
the ``status`` to write once every action succeeded, events, and when to look again. If an action fails the
intent stays recorded, so the next pass sees UPGRADING and either adopts what was already applied (the cluster
carries the generation it was deployed for) or redoes the step. A controller restart is therefore a non-event.

Branches follow the aggregate diff class (``core.diff``) and the desired/recorded job state only. Stability
is stricter than the reference operator's: a job is STABLE only once it has been RUNNING for
``flinkops.stability.min-running-time`` (default 5 s) and, with checkpointing enabled, has completed a checkpoint
since the deploy (``flinkops.stability.require-checkpoint``, default true), so a job that crash-loops seconds
after start is never marked stable.

Called by: ``controller.reconciler`` (and ``flinkops plan``). No I/O, no clock: ``now`` and fresh job ids come
in through ``Context``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from flinkops.api.durations import parse_duration_ms
from flinkops.api.flinkconf import DEFAULT_WEB_REFRESH, WEB_REFRESH_KEY
from flinkops.api.models import (
    Checkpoint,
    CheckpointInfo,
    DeploymentRecord,
    DiffType,
    FlinkDeployment,
    FlinkDeploymentSpec,
    FlinkDeploymentStatus,
    FlinkSessionJob,
    FlinkSessionJobSpec,
    FlinkSessionJobStatus,
    JobManagerDeploymentStatus,
    JobState,
    ReconciliationState,
    ReconciliationStatus,
    Savepoint,
    SavepointInfo,
    UpgradeMode,
)
from flinkops.api.retention_settings import retention_limits
from flinkops.api.schedule import parse_schedule
from flinkops.core.conditions import with_conditions
from flinkops.core.diff import SpecChange, classify
from flinkops.core.lifecycle import MANUAL_RESTORE, derive_lifecycle
from flinkops.core.retention import plan_retention
from flinkops.core.specs import dump_reconciled_spec, load_spec, reconciled_first_deployment

__all__ = [
    "Action",
    "CancelSessionJob",
    "Context",
    "DeleteCluster",
    "DeployCluster",
    "DisposeSnapshots",
    "EventNote",
    "JobObservation",
    "Observation",
    "Plan",
    "RemoveResource",
    "ReplaceMissingProcesses",
    "ScaleInPlace",
    "SubmitSessionJob",
    "TriggerCheckpoint",
    "TriggerObservation",
    "TriggerSavepoint",
    "headline",
    "plan_deployment",
    "plan_session_job",
]

FAST = 1.0  # seconds between passes while something is moving
STEADY = 5.0  # between passes once stable

_TERMINAL_JOB_STATES = frozenset({"FAILED", "FINISHED", "CANCELED"})
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
    """Stop the cluster. ``latest_state``: the job restarts from its newest state, so once it is stopped the
    executor moves the restore point to the newest checkpoint of the stopped job found in storage (Flink may
    have completed checkpoints since the observation that chose it)."""

    reason: str = ""
    latest_state: bool = False

    def describe(self) -> str:
        return f"delete cluster ({self.reason})" if self.reason else "delete cluster"


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


@dataclass(frozen=True)
class EventNote:
    type: str  # Normal | Warning
    reason: str
    message: str


Status = FlinkDeploymentStatus | FlinkSessionJobStatus
S_ = TypeVar("S_", FlinkDeploymentStatus, FlinkSessionJobStatus)


@dataclass(frozen=True)
class Plan:
    status: Status
    intent: Status | None = None
    actions: tuple[Action, ...] = ()
    events: tuple[EventNote, ...] = ()
    requeue_after: float = STEADY
    change: SpecChange | None = None
    summary: str = ""


@dataclass
class _Builder:
    """Accumulates a plan; finishing it derives lifecycle and conditions once."""

    status: Status
    intent: Status | None = None
    actions: list[Action] = field(default_factory=list)
    events: list[EventNote] = field(default_factory=list)
    requeue_after: float = STEADY
    change: SpecChange | None = None
    summary: str = ""

    def event(self, type_: str, reason: str, message: str) -> None:
        self.events.append(EventNote(type_, reason, message))

    def finish(self, *, deleting: bool = False, now_ms: int = 0) -> Plan:
        status = _with_lifecycle(self.status, deleting, now_ms)
        intent = _with_lifecycle(self.intent, deleting, now_ms) if self.intent is not None else None
        return Plan(
            status=status,
            intent=intent,
            actions=tuple(self.actions),
            events=tuple(self.events),
            requeue_after=self.requeue_after,
            change=self.change,
            summary=self.summary,
        )


def _with_lifecycle(status: Status, deleting: bool, now_ms: int) -> Status:
    lifecycle = derive_lifecycle(status, deleting=deleting)
    status = status.model_copy(update={"lifecycle_state": lifecycle})
    return with_conditions(status, now_ms)


def headline(error: str) -> str:
    """The line of a Java stack trace that says what broke: the innermost ``Caused by:``, else the first."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    if not lines:
        return ""
    causes = [line.removeprefix("Caused by:").strip() for line in lines if line.startswith("Caused by:")]
    return (causes[-1] if causes else lines[0])[:500]


def _record_validation(b: _Builder, ctx: Context) -> None:
    """An invalid spec is reported on the resource (once per distinct complaint, not every pass); a valid
    one clears an earlier complaint."""
    previous = b.status.error or ""
    if ctx.valid:
        if previous.startswith(_VALIDATION_PREFIX):
            b.status = b.status.model_copy(update={"error": None})
        return
    error = f"{_VALIDATION_PREFIX}{ctx.validation_error}"
    if previous != error:
        b.event("Warning", "ValidationError", ctx.validation_error or "invalid spec")
    b.status = b.status.model_copy(update={"error": error})


def _recon(status: Status, **update: object) -> Status:
    recon = status.reconciliation_status.model_copy(update=update)
    return status.model_copy(update={"reconciliation_status": recon})


def _job(status: Status, **update: object) -> Status:
    return status.model_copy(update={"job_status": status.job_status.model_copy(update=update)})


def _stateful(mode: UpgradeMode) -> bool:
    return mode != UpgradeMode.STATELESS


def _min_running_ms(config: dict[str, str]) -> int:
    try:
        return parse_duration_ms(config.get("flinkops.stability.min-running-time", "5 s"))
    except ValueError:
        return 5000  # validation reports the bad value; decide with the default meanwhile


def _requires_checkpoint_for_stability(config: dict[str, str]) -> bool:
    if config.get("flinkops.stability.require-checkpoint", "true").lower() == "false":
        return False
    interval = config.get("execution.checkpointing.interval", "").strip()
    return bool(interval) and interval not in ("0", "0 ms", "0ms", "-1")


# ----------------------------------------------------------------------------------------- deployments

_HISTORY_LIMIT = 20  # deployment records kept in status
_SAVEPOINT_RETRY = 10.0  # seconds before re-triggering a failed upgrade savepoint
_SAVEPOINT_POLL = 0.2  # seconds between looks at an upgrade savepoint in flight
_ROLLBACK_ENABLED = "kubernetes.operator.deployment.rollback.enabled"
_READINESS_TIMEOUT = "kubernetes.operator.deployment.readiness.timeout"
_SAVEPOINT_FORMAT = "kubernetes.operator.savepoint.format.type"
_CHECKPOINT_TYPE = "kubernetes.operator.checkpoint.type"
_PERIODIC_SAVEPOINT = "kubernetes.operator.periodic.savepoint.interval"
_PERIODIC_CHECKPOINT = "kubernetes.operator.periodic.checkpoint.interval"


class _ManualRestoreRequired(Exception):
    """A stateful job's state is known to exist (it completed checkpoints) but cannot be found."""


def plan_deployment(resource: FlinkDeployment, obs: Observation, ctx: Context) -> Plan:
    status: FlinkDeploymentStatus = resource.status or FlinkDeploymentStatus()
    try:
        return _plan_deployment(resource, status, obs, ctx)
    except _ManualRestoreRequired as exc:
        return _manual_restore(_Builder(status=status), resource, str(exc), ctx)


def _plan_deployment(resource: FlinkDeployment, status: FlinkDeploymentStatus, obs: Observation, ctx: Context) -> Plan:
    generation = resource.metadata.generation or 1
    b = _Builder(status=status)

    if resource.metadata.deletion_timestamp:
        return _plan_deletion(b, obs, ctx, resource.kind)

    recon = status.reconciliation_status
    last = load_spec(recon.last_reconciled_spec, FlinkDeploymentSpec)
    _record_validation(b, ctx)
    if ctx.valid:
        spec = resource.spec
    else:
        if last is None:
            b.summary = "invalid spec and nothing deployed yet: waiting for a valid spec"
            return b.finish(now_ms=ctx.now_ms)
        spec = last  # keep reconciling the last valid spec

    if last is None:
        return _first_deployment(b, spec, generation, ctx)

    if recon.state == ReconciliationState.UPGRADING:
        return _resume_upgrade(b, last, obs, ctx)
    if recon.state == ReconciliationState.ROLLING_BACK:
        stable = load_spec(recon.last_stable_spec, FlinkDeploymentSpec) or last
        return _resume_upgrade(b, stable, obs, ctx, rolling_back=True)
    if recon.state == ReconciliationState.ROLLED_BACK and generation <= (status.observed_generation or 0):
        spec = last  # the spec rolled back from stays unapplied until a new generation arrives

    change = classify(last, spec, mode=(spec.mode or "native"))
    b.change = change
    if change.kind > DiffType.IGNORE and ctx.valid:
        if _is_manual_rollback(spec, load_spec(recon.last_stable_spec, FlinkDeploymentSpec), recon):
            return _roll_back(b, obs, ctx, generation=generation, why="the last stable spec was applied again")
        return _spec_change(b, last, spec, change, generation, obs, ctx)

    requests = _snapshot_requests(b, last, spec, obs) if ctx.valid and spec.job is not None else _Requests()
    recorded_spec = requests.recorded(spec, last)
    if ctx.valid and recorded_spec != last:
        # Only IGNORE-class fields changed: record them without touching the cluster.
        first = reconciled_first_deployment(recon.last_reconciled_spec)
        b.status = _recon(b.status, last_reconciled_spec=dump_reconciled_spec(recorded_spec, first_deployment=first))
        if recon.last_stable_spec == recon.last_reconciled_spec:
            b.status = _recon(b.status, last_stable_spec=b.status.reconciliation_status.last_reconciled_spec)
    b.status = b.status.model_copy(update={"observed_generation": generation})

    why_roll_back = _rollback_due(b.status, spec, obs, ctx)  # type: ignore[arg-type]
    if why_roll_back:
        return _roll_back(b, obs, ctx, generation=b.status.observed_generation or generation, why=why_roll_back)
    return _steady(b, spec, obs, ctx, requests)


# ------------------------------------------------------------------ deploying


def _deploy_with_intent(
    b: _Builder,
    spec: FlinkDeploymentSpec,
    generation: int,
    ctx: Context,
    *,
    restore: str | None,
    recorded: str | None,
    replace_cluster: str | None = None,
    reason: str = "upgrade",
    stopped_at: int | None = None,
    intent_state: ReconciliationState = ReconciliationState.UPGRADING,
    final: dict[str, object] | None = None,
    latest_state: bool = False,
    job_id: str | None = None,
) -> None:
    """Write-ahead, then deploy: record the target spec, the phase, the job id (a fresh one unless given) and
    the restore point, (stop the old cluster,) start the new one, and expect the final phase with a
    JobManager DEPLOYING."""
    job_id = (job_id or ctx.fresh_job_id) if spec.job is not None else None
    update: dict[str, object] = {"state": intent_state}
    if recorded is not None:
        update.update(last_reconciled_spec=recorded, reconciliation_timestamp=ctx.now_ms)
    b.intent = _recon(b.status, **update).model_copy(update={"observed_generation": generation, "error": None})
    if spec.job is not None:
        b.intent = _job(b.intent, job_id=job_id, state="RECONCILING", upgrade_savepoint_path=restore)
        mode = spec.job.upgrade_mode.value
        b.intent = _add_run(b.intent, generation, job_id, reason, mode, restore, stopped_at, ctx.now_ms)
    if replace_cluster is not None:
        b.actions.append(DeleteCluster(reason=replace_cluster, latest_state=latest_state))
    b.actions.append(DeployCluster(spec=spec, generation=generation, job_id=job_id, restore_path=restore))
    final_update: dict[str, object] = {"state": ReconciliationState.DEPLOYED, **(final or {})}
    b.status = _recon(b.intent, **final_update).model_copy(
        update={"job_manager_deployment_status": JobManagerDeploymentStatus.DEPLOYING}
    )
    b.requeue_after = FAST


def _add_run(
    status: Status,
    generation: int,
    job_id: str | None,
    reason: str,
    mode: str | None,
    restore: str | None,
    stopped_at: int | None,
    now_ms: int,
) -> Status:
    if not isinstance(status, FlinkDeploymentStatus):
        return status
    history = list(status.deployment_history)
    if history and history[-1].job_id == job_id:
        return status  # the same run, planned again after an interruption
    history.append(
        DeploymentRecord(
            generation=generation,
            job_id=job_id,
            reason=reason,
            upgrade_mode=mode,
            restored_from=restore,
            stopped_at=stopped_at,
            started_at=now_ms,
        )
    )
    return status.model_copy(update={"deployment_history": history[-_HISTORY_LIMIT:]})


def _current_run(status: FlinkDeploymentStatus) -> DeploymentRecord | None:
    history = status.deployment_history
    if history and history[-1].job_id == status.job_status.job_id:
        return history[-1]
    return None


def _first_deployment(b: _Builder, spec: FlinkDeploymentSpec, generation: int, ctx: Context) -> Plan:
    recorded = dump_reconciled_spec(spec, first_deployment=True)
    if spec.job is not None and spec.job.state == JobState.SUSPENDED:
        b.status = _recon(
            b.status,
            last_reconciled_spec=recorded,
            last_stable_spec=recorded,
            state=ReconciliationState.DEPLOYED,
            reconciliation_timestamp=ctx.now_ms,
        ).model_copy(update={"observed_generation": generation})
        b.summary = "created suspended: nothing to deploy"
        return b.finish(now_ms=ctx.now_ms)
    restore = spec.job.initial_savepoint_path if spec.job is not None else None
    _deploy_with_intent(b, spec, generation, ctx, restore=restore, recorded=recorded, reason="first-deploy")
    b.event("Normal", "Submit", "Starting deployment" + (f" from {restore}" if restore else ""))
    b.summary = "first deployment"
    return b.finish(now_ms=ctx.now_ms)


def _already_deployed(status: FlinkDeploymentStatus, obs: Observation, generation: int) -> bool:
    """The target of an interrupted upgrade is running: same generation stamp and (for jobs) the job id the
    intent recorded, so a dead or older cluster of the same generation is never mistaken for it."""
    if not (obs.cluster_exists and obs.cluster_generation == generation and obs.jobmanager_alive):
        return False
    return obs.cluster_job_id is None or obs.cluster_job_id == status.job_status.job_id


def _resume_upgrade(
    b: _Builder, target: FlinkDeploymentSpec, obs: Observation, ctx: Context, *, rolling_back: bool = False
) -> Plan:
    """A previous pass wrote UPGRADING (or ROLLING_BACK) and may or may not have finished acting."""
    status: FlinkDeploymentStatus = b.status  # type: ignore[assignment]
    generation = status.observed_generation or 1
    recon = status.reconciliation_status
    final: dict[str, object] = {"state": ReconciliationState.DEPLOYED}
    if rolling_back:
        final = {"state": ReconciliationState.ROLLED_BACK, "last_reconciled_spec": recon.last_stable_spec}
    if _already_deployed(status, obs, generation):
        b.status = _recon(status, **final).model_copy(
            update={"job_manager_deployment_status": JobManagerDeploymentStatus.DEPLOYING}
        )
        b.summary = "the interrupted upgrade had already deployed the target: adopting it"
        b.requeue_after = FAST
        return b.finish(now_ms=ctx.now_ms)
    info = _savepoints(status)
    if info.trigger_type == "UPGRADE" and info.trigger_id:
        return _await_upgrade_savepoint(b, target, obs, ctx)
    job_id = status.job_status.job_id
    return _finish_upgrade(b, target, obs, ctx, job_id=job_id, final=final, summary="finishing an interrupted upgrade")


def _finish_upgrade(
    b: _Builder,
    target: FlinkDeploymentSpec,
    obs: Observation,
    ctx: Context,
    *,
    job_id: str | None,
    final: dict[str, object] | None = None,
    stopped_at: int | None = None,
    summary: str,
    latest_state: bool = False,
) -> Plan:
    """The old job is stopped and its state recorded in ``upgradeSavepointPath``: replace the cluster."""
    status = b.status
    generation = status.observed_generation or 1
    phase = status.reconciliation_status.state
    replace = "replacing the cluster of an upgrade" if obs.cluster_exists else None
    if target.job is None or target.job.state == JobState.RUNNING:
        _deploy_with_intent(
            b, target, generation, ctx, restore=status.job_status.upgrade_savepoint_path, recorded=None,
            replace_cluster=replace, reason="rollback" if phase == ReconciliationState.ROLLING_BACK else "upgrade",
            stopped_at=stopped_at, intent_state=phase, final=final, latest_state=latest_state, job_id=job_id,
        )  # fmt: skip
    else:
        b.intent = status
        if replace is not None:
            b.actions.append(DeleteCluster(reason=replace, latest_state=latest_state))
        # A suspended spec is stable by definition: nothing runs that could fail.
        recorded = status.reconciliation_status.last_reconciled_spec
        b.status = _recon(status, state=ReconciliationState.DEPLOYED, last_stable_spec=recorded).model_copy(
            update={"job_manager_deployment_status": JobManagerDeploymentStatus.MISSING}
        )
        b.status = _job(b.status, state="SUSPENDED")
        b.requeue_after = FAST
    b.summary = summary
    return b.finish(now_ms=ctx.now_ms)


def _await_upgrade_savepoint(b: _Builder, target: FlinkDeploymentSpec, obs: Observation, ctx: Context) -> Plan:
    """UPGRADING with a stop-with-savepoint in flight: wait for it, then replace the cluster from it."""
    status: FlinkDeploymentStatus = b.status  # type: ignore[assignment]
    info = _savepoints(status)
    old_job = status.job_status.job_id
    trigger = obs.savepoint_trigger
    location = trigger.location if trigger is not None and trigger.state == "COMPLETED" else None
    location = location or obs.stored_savepoint  # completed, but its result was lost with the JobManager
    if location:
        b.status = _job(_completed_savepoint(status, location, ctx.now_ms), upgrade_savepoint_path=location)
        b.event("Normal", "SavepointCompleted", f"Upgrade savepoint of job {old_job}: {location}")
        stopped = obs.job.end_time if obs.job is not None and obs.job.end_time else ctx.now_ms
        return _finish_upgrade(
            b, target, obs, ctx, job_id=ctx.fresh_job_id, stopped_at=stopped, summary="upgrade savepoint completed"
        )
    if trigger is not None and trigger.state == "IN_PROGRESS":
        b.summary = "waiting for the upgrade savepoint"
        b.requeue_after = _SAVEPOINT_POLL  # the job stops with the savepoint: every moment here is downtime
        return b.finish(now_ms=ctx.now_ms)
    fmt = _savepoint_format(target.flink_configuration)
    if _job_running(obs) and old_job:
        if trigger is None or trigger.state == "UNKNOWN":
            # The trigger may never have reached Flink (the controller stopped between recording and sending
            # it): send it again with the same id, which Flink deduplicates.
            assert info.trigger_id is not None
            b.actions.append(
                TriggerSavepoint(
                    job_id=old_job, rest_url=_rest(obs), trigger_id=info.trigger_id, stop=True, format_type=fmt
                )
            )
            b.intent = status
            b.summary = "re-sending the upgrade savepoint trigger"
            b.requeue_after = FAST
            return b.finish(now_ms=ctx.now_ms)
        b.event("Warning", "SavepointError", f"Upgrade savepoint failed: {trigger.failure or 'no reason given'}")
        b.status = _with_savepoint_trigger(status, ctx.fresh_trigger_id, ctx.now_ms, "UPGRADE", fmt)
        b.intent = b.status
        b.actions.append(
            TriggerSavepoint(
                job_id=old_job, rest_url=_rest(obs), trigger_id=ctx.fresh_trigger_id, stop=True, format_type=fmt
            )
        )
        b.summary = "upgrade savepoint failed: trying again"
        b.requeue_after = _SAVEPOINT_RETRY
        return b.finish(now_ms=ctx.now_ms)
    # The job is not running any more (failed, or its JobManager is gone): fall back to its last state.
    state = obs.job.state if obs.job is not None else "gone"
    restore, why = _restore_point(_as_last_state(target), status, obs)
    b.event("Warning", "SavepointFallback", f"Job is {state}; upgrading from its last state instead: {why}")
    b.status = _job(_clear_savepoint_trigger(status), upgrade_savepoint_path=restore)
    return _finish_upgrade(
        b, target, obs, ctx, job_id=ctx.fresh_job_id, stopped_at=ctx.now_ms, summary="savepoint fallback",
        latest_state=_keeps_state(target),
    )  # fmt: skip


_SCALE_FIELDS = frozenset({"spec.job.parallelism", "spec.taskManager.replicas"})


def _scales_in_place(
    last: FlinkDeploymentSpec, spec: FlinkDeploymentSpec, change: SpecChange, obs: Observation
) -> bool:
    """Only the parallelism (and the TaskManager count) changed, the adaptive scheduler runs the job in both
    specs, and the job runs: Flink rescales it from its own state without a new deployment."""
    if not change.paths(at_least=DiffType.SCALE) or not set(change.paths(at_least=DiffType.SCALE)) <= _SCALE_FIELDS:
        return False
    adaptive = all(
        s.flink_configuration.get("jobmanager.scheduler", "").strip().lower() == "adaptive" for s in (last, spec)
    )
    return adaptive and spec.job is not None and last.job is not None and _job_running(obs)


def _keeps_state(spec: FlinkDeploymentSpec) -> bool:
    return spec.job is not None and _stateful(spec.job.upgrade_mode)


def _as_last_state(spec: FlinkDeploymentSpec) -> FlinkDeploymentSpec:
    if spec.job is None or spec.job.upgrade_mode == UpgradeMode.STATELESS:
        return spec
    return spec.model_copy(update={"job": spec.job.model_copy(update={"upgrade_mode": UpgradeMode.LAST_STATE})})


def _rest(obs: Observation) -> str:
    """The REST address of a cluster observed with a running job (actions on that job carry it)."""
    assert obs.rest_url is not None, "a running job was observed through its cluster's REST API"
    return obs.rest_url


def _job_running(obs: Observation) -> bool:
    """Running with every task running: the only time Flink can take a savepoint or checkpoint."""
    return obs.rest_ready and obs.job is not None and obs.job.state == "RUNNING" and obs.job.all_tasks_running


def _restore_point(
    spec: FlinkDeploymentSpec, status: FlinkDeploymentStatus, obs: Observation
) -> tuple[str | None, str]:
    """Where a stateful job's state will come from on its next start, and why. Raises
    ``_ManualRestoreRequired`` when the job is known to have had state that is nowhere to be found."""
    if spec.job is None or not _stateful(spec.job.upgrade_mode):
        return None, "stateless upgrade mode: the job starts with empty state"
    if obs.job is not None and obs.job.latest_checkpoint_path:
        return obs.job.latest_checkpoint_path, "latest completed checkpoint of the running job"
    if obs.latest_stored_checkpoint:
        return obs.latest_stored_checkpoint, "latest completed checkpoint found in checkpoint storage"
    if status.job_status.upgrade_savepoint_path:
        return status.job_status.upgrade_savepoint_path, "the state the job was last started from"
    run = _current_run(status)
    if run is not None and run.checkpointed and obs.rest_ready and obs.job is not None:
        # Flink's statistics lag behind storage: the executor reads the newest checkpoint once the job stopped.
        return None, "the newest checkpoint the job leaves in storage when it stops"
    if run is not None and run.checkpointed:
        raise _ManualRestoreRequired(f"job {run.job_id} completed checkpoints, but none is left in checkpoint storage")
    return None, "no checkpoint exists yet: the job starts with empty state"


def _manual_restore(b: _Builder, resource: FlinkDeployment, reason: str, ctx: Context) -> Plan:
    error = f"{MANUAL_RESTORE}: {reason}. Nothing was started or deleted. Point the deployment at its state with "
    error += f"`flinkops restore {resource.metadata.name} --to PATH`, or set upgradeMode: stateless to start empty."
    if b.status.error != error:
        b.event("Warning", "ManualRestoreRequired", error)
    b.status = b.status.model_copy(
        update={"error": error, "job_manager_deployment_status": JobManagerDeploymentStatus.MISSING}
    )
    b.summary = "manual restore required"
    b.requeue_after = 30.0
    return b.finish(now_ms=ctx.now_ms)


def _spec_change(
    b: _Builder,
    last: FlinkDeploymentSpec,
    spec: FlinkDeploymentSpec,
    change: SpecChange,
    generation: int,
    obs: Observation,
    ctx: Context,
) -> Plan:
    status: FlinkDeploymentStatus = b.status  # type: ignore[assignment]
    was_running = last.job is None or last.job.state == JobState.RUNNING
    wants_running = spec.job is None or spec.job.state == JobState.RUNNING
    recorded = dump_reconciled_spec(spec, first_deployment=False)
    fields = ", ".join(change.paths()) or "spec"
    b.event("Normal", "SpecChanged", f"{change.kind.name} change of {fields}")

    if change.kind == DiffType.SAVEPOINT_REDEPLOY and spec.job is not None and wants_running:
        # Redeploy from the given savepoint, dropping the current state; the new spec is stable at once, so
        # there is no rolling back past it.
        restore = spec.job.initial_savepoint_path
        replace = "savepoint redeploy" if obs.cluster_exists else None
        _deploy_with_intent(
            b, spec, generation, ctx, restore=restore, recorded=recorded, replace_cluster=replace,
            reason="savepoint-redeploy", stopped_at=ctx.now_ms, final={"last_stable_spec": recorded},
        )  # fmt: skip
        b.intent = _recon(b.intent, last_stable_spec=recorded) if b.intent is not None else None
        b.event("Normal", "SavepointRedeploy", f"Redeploying from {restore}")
        b.summary = "savepoint redeploy"
        return b.finish(now_ms=ctx.now_ms)

    if was_running and wants_running and _scales_in_place(last, spec, change, obs):
        assert spec.job is not None and last.job is not None and obs.job is not None
        b.status = _recon(
            status, last_reconciled_spec=recorded, reconciliation_timestamp=ctx.now_ms,
            state=ReconciliationState.DEPLOYED,
        ).model_copy(update={"observed_generation": generation, "error": None})  # fmt: skip
        b.intent = b.status  # rescaling is idempotent: a pass that repeats it changes nothing
        old, new = last.job.parallelism or 1, spec.job.parallelism or 1
        b.actions.append(
            ScaleInPlace(
                spec=spec, job_id=obs.job.job_id, rest_url=_rest(obs), old_parallelism=old, parallelism=new,
                taskmanagers=obs.taskmanagers_expected,
            )
        )  # fmt: skip
        b.event("Normal", "ScaledInPlace", f"Rescaling job {obs.job.job_id} from {old} to {new} without a restart")
        b.summary = "rescale in place"
        b.requeue_after = FAST
        return b.finish(now_ms=ctx.now_ms)

    mode = spec.job.upgrade_mode if spec.job is not None else UpgradeMode.STATELESS
    if was_running and mode == UpgradeMode.SAVEPOINT:
        old_job = status.job_status.job_id
        if _job_running(obs) and old_job:
            fmt = _savepoint_format(spec.flink_configuration)
            b.intent = _recon(
                status, last_reconciled_spec=recorded, reconciliation_timestamp=ctx.now_ms,
                state=ReconciliationState.UPGRADING,
            ).model_copy(update={"observed_generation": generation, "error": None})  # fmt: skip
            b.intent = _with_savepoint_trigger(b.intent, ctx.fresh_trigger_id, ctx.now_ms, "UPGRADE", fmt)
            b.actions.append(
                TriggerSavepoint(
                    job_id=old_job, rest_url=_rest(obs), trigger_id=ctx.fresh_trigger_id, stop=True, format_type=fmt
                )
            )
            b.status = b.intent
            verb = "Upgrading" if wants_running else "Suspending"
            b.event("Normal", "Savepoint", f"{verb}: stopping job {old_job} with a savepoint")
            b.summary = f"{verb.lower()}: stop with savepoint"
            b.requeue_after = _SAVEPOINT_POLL
            return b.finish(now_ms=ctx.now_ms)
        state = obs.job.state if obs.job is not None else "not reachable"
        b.event("Warning", "SavepointFallback", f"Job is {state}: using its last state instead of a new savepoint")

    if was_running:
        restore, why = _restore_point(_as_last_state(spec), status, obs)
    else:
        restore = status.job_status.upgrade_savepoint_path if spec.job and _stateful(spec.job.upgrade_mode) else None
        why = "the state recorded when the job was suspended"

    if not wants_running:
        # Suspend: remember where the state is, then stop the cluster.
        b.status = _recon(
            status,
            last_reconciled_spec=recorded,
            last_stable_spec=recorded,
            state=ReconciliationState.DEPLOYED,
            reconciliation_timestamp=ctx.now_ms,
        ).model_copy(
            update={
                "observed_generation": generation,
                "job_manager_deployment_status": JobManagerDeploymentStatus.MISSING,
                "error": None,
            }
        )
        if was_running:
            b.intent = _job(b.status, upgrade_savepoint_path=restore)
            b.intent = _recon(b.intent, state=ReconciliationState.UPGRADING)
            b.actions.append(DeleteCluster(reason="suspend", latest_state=_keeps_state(spec)))
            b.event("Normal", "Suspended", f"Job suspended; {why}" + (f": {restore}" if restore else ""))
        b.status = _job(b.status, state="SUSPENDED", upgrade_savepoint_path=restore)
        b.summary = "suspend"
        return b.finish(now_ms=ctx.now_ms)

    reason = ("upgrade" if was_running else "resume") if obs.cluster_exists else None
    _deploy_with_intent(
        b, spec, generation, ctx, restore=restore, recorded=recorded, replace_cluster=reason,
        reason="upgrade" if was_running else "resume", stopped_at=ctx.now_ms if was_running else None,
        latest_state=was_running and _keeps_state(spec),
    )  # fmt: skip
    verb = "Resuming" if not was_running else "Upgrading"
    b.event("Normal", "Submit", f"{verb}: {why}" + (f" ({restore})" if restore else ""))
    b.summary = f"{verb.lower()} ({change.kind.name})"
    return b.finish(now_ms=ctx.now_ms)


# ------------------------------------------------------------------ rollback


def _is_manual_rollback(
    spec: FlinkDeploymentSpec, stable: FlinkDeploymentSpec | None, recon: ReconciliationStatus
) -> bool:
    """The desired spec is the last stable one again while a newer, running one is deployed (``flinkops
    rollback``). Resuming a suspended job is never a rollback."""
    deployed = load_spec(recon.last_reconciled_spec, FlinkDeploymentSpec)
    if deployed is None or (deployed.job is not None and deployed.job.state != JobState.RUNNING):
        return False
    return (
        stable is not None
        and spec == stable
        and recon.last_stable_spec != recon.last_reconciled_spec
        and (stable.job is None or stable.job.state == JobState.RUNNING)
    )


def _rollback_due(status: FlinkDeploymentStatus, spec: FlinkDeploymentSpec, obs: Observation, ctx: Context) -> str:
    """Why the deployed spec must be rolled back to the last stable one now ('' when it need not)."""
    recon = status.reconciliation_status
    config = spec.flink_configuration
    if config.get(_ROLLBACK_ENABLED, "false").strip().lower() != "true":
        return ""
    if recon.state != ReconciliationState.DEPLOYED or not recon.last_stable_spec:
        return ""
    if recon.last_stable_spec == recon.last_reconciled_spec:
        return ""
    stable = load_spec(recon.last_stable_spec, FlinkDeploymentSpec)
    if stable is None or (stable.job is not None and stable.job.state != JobState.RUNNING):
        return ""
    if obs.job is not None and obs.job.state == "FAILED":
        cause = headline(obs.job.error or "") or "no exception was reported"
        return f"job {obs.job.job_id} failed before the new spec became stable ({cause})"
    try:
        timeout = parse_duration_ms(config.get(_READINESS_TIMEOUT, "5 min"))
    except ValueError:
        timeout = 300_000
    since = recon.reconciliation_timestamp or ctx.now_ms
    if ctx.now_ms - since > timeout:
        return f"the new spec did not become stable within {config.get(_READINESS_TIMEOUT, '5 min')}"
    return ""


def _roll_back(b: _Builder, obs: Observation, ctx: Context, *, generation: int, why: str) -> Plan:
    """Deploy ``lastStableSpec`` again, with the state the failed spec's job left behind (last state)."""
    status: FlinkDeploymentStatus = b.status  # type: ignore[assignment]
    recon = status.reconciliation_status
    stable = load_spec(recon.last_stable_spec, FlinkDeploymentSpec)
    assert stable is not None
    restore, restore_why = _restore_point(_as_last_state(stable), status, obs)
    b.event("Warning", "Rollback", f"Rolling back to the last stable spec: {why}; restoring {restore_why}")
    b.status = _clear_savepoint_trigger(status)
    _deploy_with_intent(
        b, stable, generation, ctx, restore=restore, recorded=None,
        replace_cluster="rollback" if obs.cluster_exists else None, reason="rollback", stopped_at=ctx.now_ms,
        intent_state=ReconciliationState.ROLLING_BACK,
        final={"state": ReconciliationState.ROLLED_BACK, "last_reconciled_spec": recon.last_stable_spec},
        latest_state=_keeps_state(stable),
    )  # fmt: skip
    b.summary = "rollback"
    return b.finish(now_ms=ctx.now_ms)


# ------------------------------------------------------------------ steady state


def _steady(b: _Builder, spec: FlinkDeploymentSpec, obs: Observation, ctx: Context, requests: _Requests) -> Plan:
    status: FlinkDeploymentStatus = b.status  # type: ignore[assignment]
    suspended = spec.job is not None and spec.job.state == JobState.SUSPENDED
    if suspended:
        _retention(b, spec.flink_configuration, ctx)  # retention also runs while nothing runs
        if obs.cluster_exists:
            b.actions.append(DeleteCluster(reason="resource is suspended"))
        b.summary = "suspended"
        return b.finish(now_ms=ctx.now_ms)

    if not obs.cluster_exists or not obs.jobmanager_alive:
        terminal = status.job_status.state in _TERMINAL_JOB_STATES
        if terminal and not obs.cluster_exists:
            _retention(b, spec.flink_configuration, ctx)
            b.summary = f"job {status.job_status.state}; cluster already gone"
            return b.finish(now_ms=ctx.now_ms)
        restore, why = _restore_point(_as_last_state(spec), status, obs)
        generation = status.observed_generation or 1
        dead = "JobManager process died" if obs.cluster_exists else None
        b.status = _clear_savepoint_trigger(status)
        _deploy_with_intent(
            b, spec, generation, ctx, restore=restore, recorded=None, replace_cluster=dead, reason="recover",
            stopped_at=ctx.now_ms, latest_state=_keeps_state(spec),
        )  # fmt: skip
        b.event("Warning", "RecoverDeployment", f"JobManager is gone; redeploying: {why}")
        b.summary = "recovering a missing JobManager"
        return b.finish(now_ms=ctx.now_ms)

    missing_tms = max(0, obs.taskmanagers_expected - obs.taskmanagers_alive)
    missing_jms = max(0, obs.jobmanagers_expected - obs.jobmanagers_alive)
    if missing_tms or missing_jms:
        b.actions.append(ReplaceMissingProcesses())
    if missing_tms:
        b.event("Warning", "RecoverTaskManager", f"{missing_tms} TaskManager process(es) died; starting replacements")
    if missing_jms:
        b.event("Warning", "RecoverJobManager", f"{missing_jms} JobManager process(es) died; starting standbys")

    if not obs.rest_ready:
        b.status = status.model_copy(
            update={"job_manager_deployment_status": JobManagerDeploymentStatus.DEPLOYED_NOT_READY}
        )
        b.summary = "JobManager started, REST API not ready yet"
        b.requeue_after = FAST
        return b.finish(now_ms=ctx.now_ms)

    b.status = status.model_copy(update={"job_manager_deployment_status": JobManagerDeploymentStatus.READY})
    if obs.flink_version:
        info = dict(status.cluster_info)
        info["flink-version"] = obs.flink_version
        if obs.rest_url:
            info["rest-url"] = obs.rest_url
        b.status = b.status.model_copy(update={"cluster_info": info})
    if spec.job is None:
        return _mark_stable_if(b, True, ctx, "session cluster ready")
    return _observe_job(b, spec.flink_configuration, obs, ctx, requests)


def _observe_job(b: _Builder, config: dict[str, str], obs: Observation, ctx: Context, requests: _Requests) -> Plan:
    status = b.status
    job = obs.job
    if job is None:
        b.status = _job(status, state="RECONCILING")
        b.summary = "waiting for the job to appear"
        b.requeue_after = FAST
        return b.finish(now_ms=ctx.now_ms)
    previous = status.job_status.state
    b.status = _job(
        status,
        job_id=job.job_id,
        job_name=job.name,
        state=job.state,
        start_time=str(job.start_time) if job.start_time else None,
        update_time=str(ctx.now_ms) if previous != job.state else status.job_status.update_time,
    )
    b.status = _note_run_progress(b.status, job)
    if previous != job.state:
        b.event("Normal", "JobStatusChanged", f"Job status changed from {previous} to {job.state}")
    _snapshots(b, config, obs, ctx, requests)
    _retention(b, config, ctx)  # after _snapshots, so a savepoint completed in this pass counts at once
    if job.state == "FAILED":
        error = job.error or "the job failed (no exception was reported)"
        if b.status.error != error:
            b.event("Warning", "Error", headline(error))
        b.status = b.status.model_copy(update={"error": error})
        b.summary = "job failed"
        _release_ended_cluster(b, job, ctx, config)
        return b.finish(now_ms=ctx.now_ms)
    if job.state == "FINISHED":
        _mark_stable_if(b, True, ctx, "job finished")
        _release_ended_cluster(b, job, ctx, config)
        return b.finish(now_ms=ctx.now_ms)
    if job.state == "RUNNING":
        needs_checkpoint = _requires_checkpoint_for_stability(config)
        since = job.running_since if job.running_since is not None else ctx.now_ms
        ready = (
            job.all_tasks_running
            and ctx.now_ms - since >= _min_running_ms(config)
            and (not needs_checkpoint or job.completed_checkpoints > 0)
        )
        return _mark_stable_if(
            b,
            ready,
            ctx,
            "job running" if not needs_checkpoint else "job running with a completed checkpoint",
        )
    b.summary = f"job {job.state}"
    b.requeue_after = FAST
    return b.finish(now_ms=ctx.now_ms)


_RESULT_SETTLE_MS = 250  # margin on top of Flink's REST cache interval before a final result is read


def _release_ended_cluster(b: _Builder, job: JobObservation, ctx: Context, config: dict[str, str]) -> None:
    """A job that ended (FINISHED or FAILED) keeps nothing running: its result, run time and end state go to
    the current run in status first (the same pass's status write), then its application cluster is deleted.
    Logs stay on disk; the checkpoints stay in storage, so a later upgrade or restart can still use them.

    Flink's REST API serves the execution graph (and so the accumulators) from a cache refreshed every
    ``web.refresh-interval``: the result is read once that long has passed since the job ended, so it holds
    the final figures."""
    refresh_ms = parse_duration_ms(config.get(WEB_REFRESH_KEY) or DEFAULT_WEB_REFRESH)
    settle_ms = (job.end_time or 0) + refresh_ms + _RESULT_SETTLE_MS - ctx.now_ms
    if job.end_time and settle_ms > 0:
        b.summary = f"job {job.state}: reading its final result before releasing the cluster"
        b.requeue_after = settle_ms / 1000
        return
    if isinstance(b.status, FlinkDeploymentStatus):
        run = _current_run(b.status)
        if run is not None and run.end_state is None:
            ended = run.model_copy(
                update={
                    "ended_at": job.end_time or ctx.now_ms,
                    "end_state": job.state,
                    "job_duration_ms": job.duration_ms,
                    "result": dict(job.accumulators),
                }
            )
            history = [*b.status.deployment_history[:-1], ended]
            b.status = b.status.model_copy(update={"deployment_history": history})
    # Write-ahead: the end state is recorded before the cluster goes, so a controller that dies in between
    # never mistakes the missing cluster for a crash to recover from (which would run a batch job again).
    b.intent = b.status
    took = f" after {job.duration_ms / 1000:.1f} s" if job.duration_ms is not None else ""
    b.actions.append(DeleteCluster(reason=f"job {job.state}{took}: releasing its cluster"))
    b.event("Normal", "ClusterReleased", f"Job {job.state}{took}; its cluster is stopped (logs are kept)")
    b.requeue_after = FAST


def _note_run_progress(status: Status, job: JobObservation) -> Status:
    """Record on the current run when its tasks first all ran and whether it completed a checkpoint."""
    if not isinstance(status, FlinkDeploymentStatus):
        return status
    run = _current_run(status)
    if run is None:
        return status
    update: dict[str, object] = {}
    if run.running_at is None and job.state == "RUNNING" and job.all_tasks_running and job.running_since:
        update["running_at"] = job.running_since
    if not run.checkpointed and job.completed_checkpoints > 0:
        update["checkpointed"] = True
    if not update:
        return status
    history = [*status.deployment_history[:-1], run.model_copy(update=update)]
    return status.model_copy(update={"deployment_history": history})


def _mark_stable_if(b: _Builder, ready: bool, ctx: Context, why: str) -> Plan:
    recon = b.status.reconciliation_status
    if ready and recon.state == ReconciliationState.DEPLOYED:
        if recon.last_stable_spec != recon.last_reconciled_spec:
            b.status = _recon(b.status, last_stable_spec=recon.last_reconciled_spec)
            b.event("Normal", "Stable", f"Deployment is stable: {why}")
        # A healthy job clears a past failure, but not the report that the *new* spec is invalid.
        if not (b.status.error or "").startswith(_VALIDATION_PREFIX):
            b.status = b.status.model_copy(update={"error": None})
        b.summary = why
        b.requeue_after = STEADY
    else:
        b.summary = f"{why}: not stable yet" if not ready else why
        b.requeue_after = FAST
    if _trigger_pending(b.status):
        b.requeue_after = FAST
    return b.finish(now_ms=ctx.now_ms)


# ------------------------------------------------------------------ snapshots


@dataclass(frozen=True)
class _Requests:
    """Snapshot nonces that changed in this generation and are served now."""

    savepoint_nonce: int | None = None
    checkpoint_nonce: int | None = None
    deferred_savepoint: bool = False
    deferred_checkpoint: bool = False

    def recorded(self, spec: FlinkDeploymentSpec, last: FlinkDeploymentSpec) -> FlinkDeploymentSpec:
        """The spec to record: a request that must wait keeps the old nonce, so the next pass sees it again."""
        if spec.job is None or last.job is None or not (self.deferred_savepoint or self.deferred_checkpoint):
            return spec
        update: dict[str, object] = {}
        if self.deferred_savepoint:
            update["savepoint_trigger_nonce"] = last.job.savepoint_trigger_nonce
        if self.deferred_checkpoint:
            update["checkpoint_trigger_nonce"] = last.job.checkpoint_trigger_nonce
        return spec.model_copy(update={"job": spec.job.model_copy(update=update)})


def _snapshot_requests(
    b: _Builder, last: FlinkDeploymentSpec, spec: FlinkDeploymentSpec, obs: Observation
) -> _Requests:
    assert spec.job is not None
    old = last.job
    sp = spec.job.savepoint_trigger_nonce
    cp = spec.job.checkpoint_trigger_nonce
    sp_changed = sp is not None and sp != (old.savepoint_trigger_nonce if old else None)
    cp_changed = cp is not None and cp != (old.checkpoint_trigger_nonce if old else None)
    info, cinfo = _savepoints(b.status), _checkpoints(b.status)
    alive = obs.rest_ready and obs.job is not None and obs.job.state not in _TERMINAL_JOB_STATES
    result: dict[str, object] = {}
    if sp_changed:
        if _job_running(obs) and not info.trigger_id:
            result["savepoint_nonce"] = sp
        elif alive:
            result["deferred_savepoint"] = True  # a snapshot is in flight or tasks are starting: next pass
        else:
            b.event("Warning", "SavepointError", f"Savepoint nonce {sp}: the job is not running, no savepoint taken")
    if cp_changed:
        if _job_running(obs) and not cinfo.trigger_id:
            result["checkpoint_nonce"] = cp
        elif alive:
            result["deferred_checkpoint"] = True
        else:
            b.event("Warning", "CheckpointError", f"Checkpoint nonce {cp}: the job is not running, none taken")
    return _Requests(**result)  # type: ignore[arg-type]


def _snapshots(b: _Builder, config: dict[str, str], obs: Observation, ctx: Context, requests: _Requests) -> None:
    """Follow pending savepoint/checkpoint triggers and start the requested and periodic ones."""
    _follow_savepoint(b, obs, ctx)
    _follow_checkpoint(b, obs, ctx)
    if not _job_running(obs) or obs.job is None:
        return
    recon_state = b.status.reconciliation_status.state
    if recon_state not in (ReconciliationState.DEPLOYED, ReconciliationState.ROLLED_BACK):
        return
    job_id = obs.job.job_id
    info = _savepoints(b.status)
    if not info.trigger_id:
        kind: str | None = None
        if requests.savepoint_nonce is not None:
            kind = "MANUAL"
        elif _due(config.get(_PERIODIC_SAVEPOINT), info.last_periodic_savepoint_timestamp, obs, ctx):
            kind = "PERIODIC"
        if kind is not None:
            fmt = _savepoint_format(config)
            b.status = _with_savepoint_trigger(b.status, ctx.fresh_trigger_id, ctx.now_ms, kind, fmt)
            b.actions.append(
                TriggerSavepoint(
                    job_id=job_id, rest_url=_rest(obs), trigger_id=ctx.fresh_trigger_id, stop=False, format_type=fmt
                )
            )
            b.intent = b.status
            b.event("Normal", "SavepointTriggered", f"{kind.title()} savepoint of job {job_id} triggered")
    cinfo = _checkpoints(b.status)
    if not cinfo.trigger_id:
        ckind: str | None = None
        if requests.checkpoint_nonce is not None:
            ckind = "MANUAL"
        elif _due(config.get(_PERIODIC_CHECKPOINT), cinfo.last_periodic_checkpoint_timestamp, obs, ctx):
            ckind = "PERIODIC"
        if ckind is not None:
            trigger_id = ctx.fresh_checkpoint_trigger_id
            ctype = _checkpoint_type(config)
            b.status = _with_checkpoint_trigger(b.status, trigger_id, ctx.now_ms, ckind, ctype)
            b.actions.append(
                TriggerCheckpoint(job_id=job_id, rest_url=_rest(obs), trigger_id=trigger_id, checkpoint_type=ctype)
            )
            b.intent = b.status
            b.event("Normal", "CheckpointTriggered", f"{ckind.title()} checkpoint of job {job_id} triggered")


def _due(value: str | None, last_ms: int | None, obs: Observation, ctx: Context) -> bool:
    if not value or not value.strip() or obs.job is None:
        return False
    try:
        schedule = parse_schedule(value)
    except ValueError:
        return False  # validation reports the bad value on the resource
    since = obs.job.running_since if obs.job.running_since is not None else ctx.now_ms
    return bool(schedule.is_due(last_ms=last_ms, since_ms=since, now_ms=ctx.now_ms))


def _follow_savepoint(b: _Builder, obs: Observation, ctx: Context) -> None:
    info = _savepoints(b.status)
    if not info.trigger_id or info.trigger_type == "UPGRADE":
        return
    trigger = obs.savepoint_trigger
    job_id = b.status.job_status.job_id
    if trigger is not None and trigger.state == "COMPLETED" and trigger.location:
        b.status = _completed_savepoint(b.status, trigger.location, ctx.now_ms)
        b.event("Normal", "SavepointCompleted", f"Savepoint of job {job_id}: {trigger.location}")
    elif trigger is not None and trigger.state == "IN_PROGRESS":
        b.requeue_after = FAST
    elif obs.stored_savepoint:
        b.status = _completed_savepoint(b.status, obs.stored_savepoint, ctx.now_ms)
        b.event("Normal", "SavepointCompleted", f"Savepoint of job {job_id}: {obs.stored_savepoint}")
    elif trigger is not None and trigger.state == "FAILED":
        b.event("Warning", "SavepointError", f"Savepoint of job {job_id} failed: {trigger.failure or 'no reason'}")
        b.status = _clear_savepoint_trigger(b.status)
    elif not _job_running(obs):
        b.event("Warning", "SavepointError", f"Savepoint of job {job_id} abandoned: the job is no longer running")
        b.status = _clear_savepoint_trigger(b.status)
    else:
        b.requeue_after = FAST  # not yet visible to Flink; the trigger id makes a resend safe


def _follow_checkpoint(b: _Builder, obs: Observation, ctx: Context) -> None:
    cinfo = _checkpoints(b.status)
    if not cinfo.trigger_id:
        return
    trigger = obs.checkpoint_trigger
    job_id = b.status.job_status.job_id
    if trigger is not None and trigger.state == "COMPLETED":
        b.status = _completed_checkpoint(b.status, ctx.now_ms)
        b.event("Normal", "CheckpointCompleted", f"Checkpoint {trigger.location or ''} of job {job_id} completed")
    elif trigger is not None and trigger.state == "IN_PROGRESS":
        b.requeue_after = FAST
    elif trigger is not None and trigger.state == "FAILED":
        b.event("Warning", "CheckpointError", f"Checkpoint of job {job_id} failed: {trigger.failure or 'no reason'}")
        b.status = _job(b.status, checkpoint_info=cinfo.model_copy(update=_NO_TRIGGER))
    elif not _job_running(obs):
        b.event("Warning", "CheckpointError", f"Checkpoint of job {job_id} abandoned: the job is no longer running")
        b.status = _job(b.status, checkpoint_info=cinfo.model_copy(update=_NO_TRIGGER))
    else:
        b.requeue_after = FAST


_NO_TRIGGER: dict[str, object] = {"trigger_id": None, "trigger_timestamp": None, "trigger_type": None}


def _savepoints(status: Status) -> SavepointInfo:
    return status.job_status.savepoint_info or SavepointInfo()


def _checkpoints(status: Status) -> CheckpointInfo:
    return status.job_status.checkpoint_info or CheckpointInfo()


def _trigger_pending(status: Status) -> bool:
    return bool(_savepoints(status).trigger_id or _checkpoints(status).trigger_id)


def _savepoint_format(config: dict[str, str]) -> SavepointFormatType:
    return "NATIVE" if config.get(_SAVEPOINT_FORMAT, "").strip().upper() == "NATIVE" else "CANONICAL"


def _checkpoint_type(config: dict[str, str]) -> CheckpointKind:
    return "INCREMENTAL" if config.get(_CHECKPOINT_TYPE, "").strip().upper() == "INCREMENTAL" else "FULL"


def _recorded_nonce(status: Status, field: str) -> int | None:
    """The snapshot nonce of the recorded spec: the manual request a completed trigger answered."""
    recorded = load_spec(status.reconciliation_status.last_reconciled_spec, FlinkDeploymentSpec)
    nonce = getattr(recorded.job, field) if recorded is not None and recorded.job is not None else None
    return nonce if isinstance(nonce, int) else None


def _with_savepoint_trigger(status: S_, trigger_id: str, now_ms: int, kind: str, fmt: str) -> S_:
    info = _savepoints(status).model_copy(
        update={"trigger_id": trigger_id, "trigger_timestamp": now_ms, "trigger_type": kind, "format_type": fmt}
    )
    if kind == "PERIODIC":
        info = info.model_copy(update={"last_periodic_savepoint_timestamp": now_ms})
    return _job(status, savepoint_info=info)  # type: ignore[return-value]


def _clear_savepoint_trigger(status: S_) -> S_:
    info = status.job_status.savepoint_info
    if info is None or not info.trigger_id:
        return status
    return _job(status, savepoint_info=info.model_copy(update=_NO_TRIGGER))  # type: ignore[return-value]


def _completed_savepoint(status: S_, location: str, now_ms: int) -> S_:
    """Record a finished savepoint as the last one and in the history, and clear its trigger."""
    info = _savepoints(status)
    nonce = _recorded_nonce(status, "savepoint_trigger_nonce") if info.trigger_type == "MANUAL" else None
    savepoint = Savepoint(
        time_stamp=now_ms,
        location=location,
        trigger_type=info.trigger_type or "UNKNOWN",
        format_type=info.format_type or "CANONICAL",
        trigger_nonce=nonce,
    )
    history = [s for s in info.savepoint_history if s.location != location] + [savepoint]
    info = info.model_copy(update={"last_savepoint": savepoint, "savepoint_history": history, **_NO_TRIGGER})
    return _job(status, savepoint_info=info)  # type: ignore[return-value]


def _with_checkpoint_trigger(status: S_, trigger_id: str, now_ms: int, kind: str, ctype: str) -> S_:
    info = _checkpoints(status).model_copy(
        update={"trigger_id": trigger_id, "trigger_timestamp": now_ms, "trigger_type": kind, "format_type": ctype}
    )
    if kind == "PERIODIC":
        info = info.model_copy(update={"last_periodic_checkpoint_timestamp": now_ms})
    return _job(status, checkpoint_info=info)  # type: ignore[return-value]


def _completed_checkpoint(status: S_, now_ms: int) -> S_:
    info = _checkpoints(status)
    nonce = _recorded_nonce(status, "checkpoint_trigger_nonce") if info.trigger_type == "MANUAL" else None
    checkpoint = Checkpoint(
        time_stamp=now_ms,
        trigger_type=info.trigger_type or "UNKNOWN",
        format_type=info.format_type or "FULL",
        trigger_nonce=nonce,
    )
    info = info.model_copy(update={"last_checkpoint": checkpoint, **_NO_TRIGGER})
    return _job(status, checkpoint_info=info)  # type: ignore[return-value]


def _retention(b: _Builder, config: dict[str, str], ctx: Context) -> None:
    """Trim the savepoint history by count and age (also while the job is stopped); dispose of the data of
    trimmed savepoints when configured. The newest savepoint, the last one and the one a restore depends on
    are never touched. The trimmed history is written before any data is deleted."""
    info = b.status.job_status.savepoint_info
    if info is None or len(info.savepoint_history) < 2:
        return
    try:
        limits = retention_limits(config)
    except ValueError:
        return  # validation reports the bad value on the resource
    if not limits.cleanup_enabled:
        return
    protected = {p for p in (b.status.job_status.upgrade_savepoint_path,) if p}
    if info.last_savepoint is not None:
        protected.add(info.last_savepoint.location)
    keep, dispose = plan_retention(
        info.savepoint_history,
        now_ms=ctx.now_ms,
        max_count=limits.max_count,
        max_age_ms=limits.max_age_ms,
        protected=protected,
    )
    if not dispose:
        return
    b.status = _job(b.status, savepoint_info=info.model_copy(update={"savepoint_history": list(keep)}))
    paths = tuple(s.location for s in dispose)
    if limits.dispose_on_delete:
        b.intent = b.status
        b.actions.append(DisposeSnapshots(paths=paths))
    verb = "disposed" if limits.dispose_on_delete else "dropped from the history (data kept)"
    b.event("Normal", "SavepointRetention", f"{len(paths)} savepoint(s) {verb}: " + ", ".join(paths))


def _plan_deletion(b: _Builder, obs: Observation, ctx: Context, kind: str) -> Plan:
    b.intent = b.status
    if obs.cluster_exists:
        b.actions.append(DeleteCluster(reason="resource deleted"))
    b.actions.append(RemoveResource())
    b.event("Normal", "Cleanup", f"Deleting {kind}; checkpoints and savepoints are kept")
    b.summary = "delete"
    return b.finish(deleting=True, now_ms=ctx.now_ms)


# ----------------------------------------------------------------------------------------- session jobs


def _submit_with_intent(
    b: _Builder, base: Status, spec: FlinkSessionJobSpec, rest_url: str, ctx: Context, restore: str | None
) -> str:
    """Write-ahead, then submit: the new job id is recorded (UPGRADING) before the job exists, so a
    controller that dies mid-submission finds the job by that id instead of submitting it twice."""
    new_id = ctx.fresh_job_id
    b.intent = _job(
        _recon(base, state=ReconciliationState.UPGRADING),
        job_id=new_id,
        state="RECONCILING",
        upgrade_savepoint_path=restore,
    )
    b.actions.append(SubmitSessionJob(spec=spec, job_id=new_id, rest_url=rest_url, restore_path=restore))
    b.status = _recon(b.intent, state=ReconciliationState.DEPLOYED)
    b.requeue_after = FAST
    return new_id


def plan_session_job(resource: FlinkSessionJob, obs: Observation, ctx: Context) -> Plan:
    status: FlinkSessionJobStatus = resource.status or FlinkSessionJobStatus()
    generation = resource.metadata.generation or 1
    b = _Builder(status=status)
    job_id = status.job_status.job_id
    running_job = obs.job is not None and obs.job.state not in _TERMINAL_JOB_STATES

    if resource.metadata.deletion_timestamp:
        b.intent = status
        if running_job and job_id and ctx.session_rest_url:
            b.actions.append(CancelSessionJob(job_id=job_id, rest_url=ctx.session_rest_url))
        b.actions.append(RemoveResource())
        b.event("Normal", "Cleanup", "Deleting FlinkSessionJob")
        b.summary = "delete"
        return b.finish(deleting=True, now_ms=ctx.now_ms)

    last = load_spec(status.reconciliation_status.last_reconciled_spec, FlinkSessionJobSpec)
    spec = resource.spec if ctx.valid else last
    _record_validation(b, ctx)
    if spec is None:
        b.summary = "no valid spec yet"
        return b.finish(now_ms=ctx.now_ms)
    if spec.job is None:
        b.status = b.status.model_copy(update={"observed_generation": generation})
        b.summary = "spec.job is empty: nothing to run until it is set"
        b.requeue_after = 30.0
        return b.finish(now_ms=ctx.now_ms)
    if not ctx.session_ready or not ctx.session_rest_url:
        b.summary = f"waiting for session cluster {spec.deployment_name} to be ready"
        b.requeue_after = 2.0
        return b.finish(now_ms=ctx.now_ms)
    rest = ctx.session_rest_url
    wants_running = spec.job.state == JobState.RUNNING
    recon = status.reconciliation_status

    if last is not None and recon.state == ReconciliationState.UPGRADING:
        # Interrupted submission: the job id was recorded before submitting, so look for it.
        if obs.job is not None or not wants_running:
            b.status = _recon(status, state=ReconciliationState.DEPLOYED)
            b.summary = "the interrupted submission had gone through: adopting the job"
            b.requeue_after = FAST
            return b.finish(now_ms=ctx.now_ms)
        assert job_id is not None
        b.actions.append(
            SubmitSessionJob(
                spec=last, job_id=job_id, rest_url=rest, restore_path=status.job_status.upgrade_savepoint_path
            )
        )
        b.status = _recon(status, state=ReconciliationState.DEPLOYED)
        b.summary = "resubmitting an interrupted submission"
        b.requeue_after = FAST
        return b.finish(now_ms=ctx.now_ms)

    change = classify(last, spec) if last is not None else None
    b.change = change
    needs_submit = last is None or (change is not None and change.kind > DiffType.IGNORE)
    if needs_submit:
        recorded = dump_reconciled_spec(spec, first_deployment=last is None)
        if last is not None:
            b.event("Normal", "SpecChanged", f"{change.kind.name if change else 'UPGRADE'} change")
        restore = None
        if last is not None and spec.job.upgrade_mode != UpgradeMode.STATELESS and obs.job is not None:
            restore = obs.job.latest_checkpoint_path
        elif last is None:
            restore = spec.job.initial_savepoint_path
        base = _recon(
            status,
            last_reconciled_spec=recorded,
            reconciliation_timestamp=ctx.now_ms,
        ).model_copy(update={"observed_generation": generation, "error": None})
        if running_job and job_id:
            b.actions.append(CancelSessionJob(job_id=job_id, rest_url=rest))
        if not wants_running:
            b.status = _job(
                _recon(base, state=ReconciliationState.DEPLOYED, last_stable_spec=recorded),
                state="SUSPENDED",
                upgrade_savepoint_path=restore,
            )
            b.intent = _recon(b.status, state=ReconciliationState.UPGRADING) if b.actions else None
            b.summary = "suspend"
            return b.finish(now_ms=ctx.now_ms)
        new_id = _submit_with_intent(b, base, spec, rest, ctx, restore)
        b.event("Normal", "Submit", f"Submitting job {new_id}" + (f" from {restore}" if restore else ""))
        b.summary = "submit"
        return b.finish(now_ms=ctx.now_ms)

    b.status = b.status.model_copy(update={"observed_generation": generation})
    if not wants_running:
        b.summary = "suspended"
        return b.finish(now_ms=ctx.now_ms)
    if obs.job is None:
        # The session cluster lost the job (e.g. it was restarted without HA): submit it again.
        restore = status.job_status.upgrade_savepoint_path if spec.job.upgrade_mode != UpgradeMode.STATELESS else None
        new_id = _submit_with_intent(b, b.status, spec, rest, ctx, restore)
        b.event("Warning", "Missing", f"Job {job_id} is not on the session cluster; resubmitting as {new_id}")
        b.summary = "resubmit a missing job"
        return b.finish(now_ms=ctx.now_ms)
    return _observe_job(b, spec.flink_configuration, obs, ctx, _Requests())
