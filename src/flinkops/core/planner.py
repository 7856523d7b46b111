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

from dataclasses import dataclass, field
from datetime import UTC, datetime

from flinkops.api.durations import parse_duration_ms
from flinkops.api.models import (
    Condition,
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
    UpgradeMode,
)
from flinkops.core.diff import SpecChange, classify
from flinkops.core.lifecycle import derive_lifecycle
from flinkops.core.specs import dump_reconciled_spec, load_spec, reconciled_first_deployment

__all__ = [
    "Action",
    "CancelSessionJob",
    "Context",
    "DeleteCluster",
    "DeployCluster",
    "EventNote",
    "JobObservation",
    "Observation",
    "Plan",
    "RemoveResource",
    "ReplaceMissingProcesses",
    "SubmitSessionJob",
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


@dataclass(frozen=True)
class Observation:
    """What the controller saw this pass, using the last deployed config."""

    cluster_exists: bool = False
    cluster_generation: int | None = None
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


@dataclass(frozen=True)
class Context:
    now_ms: int
    fresh_job_id: str
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
    reason: str = ""

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
    return _set_running_condition(status, now_ms)


def _set_running_condition(status: Status, now_ms: int) -> Status:
    job_running = status.job_status.state == "RUNNING"
    if isinstance(status, FlinkDeploymentStatus) and not _recorded_has_job(status):
        running = status.job_manager_deployment_status == JobManagerDeploymentStatus.READY
        reason = "JobManagerReady" if running else "JobManagerNotReady"
    else:
        running = job_running
        reason = f"Job{(status.job_status.state or 'Unknown').title()}"
    value = "True" if running else "False"
    old = next((c for c in status.conditions if c.type == "Running"), None)
    if old is not None and old.status == value and old.reason == reason:
        return status
    transition = old.last_transition_time if old is not None and old.status == value else _iso(now_ms)
    condition = Condition(
        type="Running",
        status=value,
        reason=reason,
        message="",
        last_transition_time=transition,
        observed_generation=status.observed_generation,
    )
    others = [c for c in status.conditions if c.type != "Running"]
    return status.model_copy(update={"conditions": [*others, condition]})


def _iso(now_ms: int) -> str:
    """Format an injected timestamp (no clock is read here)."""
    return datetime.fromtimestamp(now_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _recorded_has_job(status: FlinkDeploymentStatus) -> bool:
    recorded = load_spec(status.reconciliation_status.last_reconciled_spec, FlinkDeploymentSpec)
    return recorded is not None and recorded.job is not None


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


def plan_deployment(resource: FlinkDeployment, obs: Observation, ctx: Context) -> Plan:
    status: FlinkDeploymentStatus = resource.status or FlinkDeploymentStatus()
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

    change = classify(last, spec, mode=(spec.mode or "native"))
    b.change = change
    if change.kind > DiffType.IGNORE and ctx.valid:
        return _spec_change(b, last, spec, change, generation, obs, ctx)
    if ctx.valid and spec != last:
        # Only IGNORE-class fields changed: record them without touching the cluster.
        first = reconciled_first_deployment(recon.last_reconciled_spec)
        b.status = _recon(b.status, last_reconciled_spec=dump_reconciled_spec(spec, first_deployment=first))
        if recon.last_stable_spec == recon.last_reconciled_spec:
            b.status = _recon(b.status, last_stable_spec=b.status.reconciliation_status.last_reconciled_spec)
    b.status = b.status.model_copy(update={"observed_generation": generation})
    return _steady(b, spec, obs, ctx)


def _deploy_with_intent(
    b: _Builder,
    spec: FlinkDeploymentSpec,
    generation: int,
    ctx: Context,
    *,
    restore: str | None,
    recorded: str | None,
    replace_cluster: str | None = None,
) -> None:
    """Write-ahead, then deploy: record UPGRADING with the target spec, the new job id and the restore point,
    (stop the old cluster,) start the new one, and expect DEPLOYED with a JobManager DEPLOYING."""
    job_id = ctx.fresh_job_id if spec.job is not None else None
    update: dict[str, object] = {"state": ReconciliationState.UPGRADING}
    if recorded is not None:
        update.update(last_reconciled_spec=recorded, reconciliation_timestamp=ctx.now_ms)
    b.intent = _recon(b.status, **update).model_copy(update={"observed_generation": generation, "error": None})
    if spec.job is not None:
        b.intent = _job(b.intent, job_id=job_id, state="RECONCILING", upgrade_savepoint_path=restore)
    if replace_cluster is not None:
        b.actions.append(DeleteCluster(reason=replace_cluster))
    b.actions.append(DeployCluster(spec=spec, generation=generation, job_id=job_id, restore_path=restore))
    b.status = _recon(b.intent, state=ReconciliationState.DEPLOYED).model_copy(
        update={"job_manager_deployment_status": JobManagerDeploymentStatus.DEPLOYING}
    )
    b.requeue_after = FAST


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
    _deploy_with_intent(b, spec, generation, ctx, restore=restore, recorded=recorded)
    b.event("Normal", "Submit", "Starting deployment" + (f" from {restore}" if restore else ""))
    b.summary = "first deployment"
    return b.finish(now_ms=ctx.now_ms)


def _resume_upgrade(b: _Builder, target: FlinkDeploymentSpec, obs: Observation, ctx: Context) -> Plan:
    """A previous pass wrote UPGRADING and may or may not have finished acting."""
    status = b.status
    generation = status.observed_generation or 1
    if obs.cluster_exists and obs.cluster_generation == generation and obs.jobmanager_alive:
        b.status = _recon(status, state=ReconciliationState.DEPLOYED).model_copy(
            update={"job_manager_deployment_status": JobManagerDeploymentStatus.DEPLOYING}
        )
        b.summary = "the interrupted upgrade had already deployed the target: adopting it"
        b.requeue_after = FAST
        return b.finish(now_ms=ctx.now_ms)
    wants_running = target.job is None or target.job.state == JobState.RUNNING
    if obs.cluster_exists:
        b.actions.append(DeleteCluster(reason="replacing the cluster of an interrupted upgrade"))
    if wants_running:
        restore = status.job_status.upgrade_savepoint_path
        b.actions.append(
            DeployCluster(spec=target, generation=generation, job_id=status.job_status.job_id, restore_path=restore)
        )
        b.status = _recon(status, state=ReconciliationState.DEPLOYED).model_copy(
            update={"job_manager_deployment_status": JobManagerDeploymentStatus.DEPLOYING}
        )
    else:
        b.status = _recon(status, state=ReconciliationState.DEPLOYED).model_copy(
            update={"job_manager_deployment_status": JobManagerDeploymentStatus.MISSING}
        )
        b.status = _job(b.status, state="SUSPENDED")
    b.summary = "finishing an interrupted upgrade"
    b.requeue_after = FAST
    return b.finish(now_ms=ctx.now_ms)


def _restore_point(
    spec: FlinkDeploymentSpec, status: FlinkDeploymentStatus, obs: Observation
) -> tuple[str | None, str]:
    """Where a stateful job's state will come from on its next start, and why."""
    if spec.job is None or not _stateful(spec.job.upgrade_mode):
        return None, "stateless upgrade mode: the job starts with empty state"
    if obs.job is not None and obs.job.latest_checkpoint_path:
        return obs.job.latest_checkpoint_path, "latest completed checkpoint of the running job"
    if obs.latest_stored_checkpoint:
        return obs.latest_stored_checkpoint, "latest completed checkpoint found in checkpoint storage"
    if status.job_status.upgrade_savepoint_path:
        return status.job_status.upgrade_savepoint_path, "the state the job was last started from"
    return None, "no checkpoint exists yet: the job starts with empty state"


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
    restore, why = (
        _restore_point(spec, status, obs)
        if was_running
        else (
            status.job_status.upgrade_savepoint_path if spec.job and _stateful(spec.job.upgrade_mode) else None,
            "the state recorded when the job was suspended",
        )
    )

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
            b.actions.append(DeleteCluster(reason="suspend"))
            b.event("Normal", "Suspended", f"Job suspended; {why}" + (f": {restore}" if restore else ""))
        b.status = _job(b.status, state="SUSPENDED", upgrade_savepoint_path=restore)
        b.summary = "suspend"
        return b.finish(now_ms=ctx.now_ms)

    reason = ("upgrade" if was_running else "resume") if obs.cluster_exists else None
    _deploy_with_intent(b, spec, generation, ctx, restore=restore, recorded=recorded, replace_cluster=reason)
    verb = "Resuming" if not was_running else "Upgrading"
    b.event("Normal", "Submit", f"{verb}: {why}" + (f" ({restore})" if restore else ""))
    b.summary = f"{verb.lower()} ({change.kind.name})"
    return b.finish(now_ms=ctx.now_ms)


def _steady(b: _Builder, spec: FlinkDeploymentSpec, obs: Observation, ctx: Context) -> Plan:
    status: FlinkDeploymentStatus = b.status  # type: ignore[assignment]
    suspended = spec.job is not None and spec.job.state == JobState.SUSPENDED
    if suspended:
        if obs.cluster_exists:
            b.actions.append(DeleteCluster(reason="resource is suspended"))
        b.summary = "suspended"
        return b.finish(now_ms=ctx.now_ms)

    if not obs.cluster_exists or not obs.jobmanager_alive:
        terminal = status.job_status.state in _TERMINAL_JOB_STATES
        if terminal and not obs.cluster_exists:
            b.summary = f"job {status.job_status.state}; cluster already gone"
            return b.finish(now_ms=ctx.now_ms)
        restore, why = _restore_point(spec, status, obs)
        generation = status.observed_generation or 1
        dead = "JobManager process died" if obs.cluster_exists else None
        _deploy_with_intent(b, spec, generation, ctx, restore=restore, recorded=None, replace_cluster=dead)
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
    return _observe_job(b, spec.flink_configuration, obs, ctx)


def _observe_job(b: _Builder, config: dict[str, str], obs: Observation, ctx: Context) -> Plan:
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
    if previous != job.state:
        b.event("Normal", "JobStatusChanged", f"Job status changed from {previous} to {job.state}")
    if job.state == "FAILED":
        error = job.error or "the job failed (no exception was reported)"
        if b.status.error != error:
            b.event("Warning", "Error", error.splitlines()[0][:500])
        b.status = b.status.model_copy(update={"error": error})
        b.summary = "job failed"
        return b.finish(now_ms=ctx.now_ms)
    if job.state == "FINISHED":
        return _mark_stable_if(b, True, ctx, "job finished")
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
    return b.finish(now_ms=ctx.now_ms)


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
    return _observe_job(b, spec.flink_configuration, obs, ctx)
