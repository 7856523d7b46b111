"""Planning a FlinkDeployment: ``plan_deployment`` and the paths that change what is deployed.

``plan_deployment`` routes one pass: deletion, validation, the first deployment, resuming an interrupted
upgrade or rollback (the status said UPGRADING or ROLLING_BACK), a spec change, a rollback, or the steady state.
A spec change is handled by its aggregate diff class (``core.diff``) and the upgrade mode: a savepoint redeploy,
a rescale in place, a stop with a savepoint (``savepoint`` mode, falling back to the last state when the job
does not run, never silently to stateless), a restart from the last state, a suspend or a resume. When a
stateful job's state is known to exist but cannot be found, nothing is started or deleted: the deployment
reports that a manual restore is required.

Called by: ``flinkops.core.planner`` (re-exported) for the controller and ``flinkops plan``. Pure: no I/O, no
clock.
"""

from __future__ import annotations

from flinkops.api.flinkconf import adaptive_scheduler
from flinkops.api.models import (
    DeploymentRecord,
    DiffType,
    FlinkDeployment,
    FlinkDeploymentSpec,
    FlinkDeploymentStatus,
    JobManagerDeploymentStatus,
    JobState,
    PreparedCluster,
    ReconciliationState,
    UpgradeMode,
)
from flinkops.core.diff import SpecChange, classify
from flinkops.core.lifecycle import MANUAL_RESTORE
from flinkops.core.planner.deletion import plan_deletion
from flinkops.core.planner.prestart import (
    PRESTART_POLL,
    delete_cluster,
    prepared_state,
    request_prepare,
    waiting_for_prepared,
    wants_prestart,
    with_prepared,
    without_prepared,
)
from flinkops.core.planner.restore import (
    as_last_state,
    deploy_with_intent,
    keeps_state,
    restore_point,
    stop_first,
    stopped_run,
)
from flinkops.core.planner.rollback import is_manual_rollback, roll_back, rollback_due
from flinkops.core.planner.snapshots import (
    SAVEPOINT,
    SAVEPOINT_POLL,
    Requests,
    clear_trigger,
    completed,
    follow_upgrade_savepoint,
    savepoint_format,
    snapshot_info,
    snapshot_requests,
    with_trigger,
)
from flinkops.core.planner.steady import steady
from flinkops.core.planner.types import (
    FAST,
    NO_ERROR,
    Builder,
    Context,
    DeleteCluster,
    Observation,
    Plan,
    ScaleInPlace,
    TriggerSavepoint,
    job_running,
    record_validation,
    rest,
    set_job,
    set_recon,
    stateful,
    with_error,
)
from flinkops.core.specs import dump_reconciled_spec, load_spec, reconciled_first_deployment
from flinkops.errors import ErrorReason, ManualRestoreRequired

__all__ = ["plan_deployment"]

_SCALE_FIELDS = frozenset({"spec.job.parallelism", "spec.taskManager.replicas"})


def plan_deployment(resource: FlinkDeployment, obs: Observation, ctx: Context) -> Plan:
    status: FlinkDeploymentStatus = resource.status or FlinkDeploymentStatus()
    try:
        return _plan_deployment(resource, status, obs, ctx)
    except ManualRestoreRequired as exc:
        return _manual_restore(Builder(status=status), resource, str(exc), ctx)


def _plan_deployment(resource: FlinkDeployment, status: FlinkDeploymentStatus, obs: Observation, ctx: Context) -> Plan:
    generation = resource.metadata.generation or 1
    b = Builder(status=status)

    if resource.metadata.deletion_timestamp:
        # A cluster pre-started for an upgrade that never deployed may be all that is left: it goes too.
        prepared = isinstance(status, FlinkDeploymentStatus) and status.prepared_cluster is not None
        stop = DeleteCluster(reason="resource deleted") if obs.cluster_exists or prepared else None
        return plan_deletion(
            b, ctx, stop=stop, message=f"Deleting {resource.kind}; checkpoints and savepoints are kept"
        )

    recon = status.reconciliation_status
    last = load_spec(recon.last_reconciled_spec, FlinkDeploymentSpec)
    record_validation(b, ctx)
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
        if is_manual_rollback(spec, load_spec(recon.last_stable_spec, FlinkDeploymentSpec), recon):
            return roll_back(b, obs, ctx, generation=generation, why="the last stable spec was applied again")
        return _spec_change(b, last, spec, change, generation, obs, ctx)

    requests = snapshot_requests(b, last, spec, obs) if ctx.valid and spec.job is not None else Requests()
    recorded_spec = requests.recorded(spec, last)
    if ctx.valid and recorded_spec != last:
        # Only IGNORE-class fields changed: record them without touching the cluster.
        first = reconciled_first_deployment(recon.last_reconciled_spec)
        b.status = set_recon(b.status, last_reconciled_spec=dump_reconciled_spec(recorded_spec, first_deployment=first))
        if recon.last_stable_spec == recon.last_reconciled_spec:
            b.status = set_recon(b.status, last_stable_spec=b.status.reconciliation_status.last_reconciled_spec)
    b.status = b.status.model_copy(update={"observed_generation": generation})

    why_roll_back = rollback_due(b.status, spec, obs, ctx)  # type: ignore[arg-type]
    if why_roll_back:
        return roll_back(b, obs, ctx, generation=b.status.observed_generation or generation, why=why_roll_back)
    return steady(b, spec, obs, ctx, requests)


def _manual_restore(b: Builder, resource: FlinkDeployment, reason: str, ctx: Context) -> Plan:
    error = f"{MANUAL_RESTORE}: {reason}. Nothing was started or deleted. Point the deployment at its state with "
    error += f"`flinkops restore {resource.metadata.name} --to PATH`, or set upgradeMode: stateless to start empty."
    if b.status.error != error:
        b.event("Warning", "ManualRestoreRequired", error)
    b.status = with_error(
        b.status,
        ErrorReason.MANUAL_RESTORE_REQUIRED,
        error,
        job_manager_deployment_status=JobManagerDeploymentStatus.MISSING,
    )
    b.summary = "manual restore required"
    b.requeue_after = 30.0
    return b.finish(now_ms=ctx.now_ms)


# ------------------------------------------------------------------ first deployment and interrupted upgrades


def _first_deployment(b: Builder, spec: FlinkDeploymentSpec, generation: int, ctx: Context) -> Plan:
    recorded = dump_reconciled_spec(spec, first_deployment=True)
    if spec.job is not None and spec.job.state == JobState.SUSPENDED:
        b.status = set_recon(
            b.status,
            last_reconciled_spec=recorded,
            last_stable_spec=recorded,
            state=ReconciliationState.DEPLOYED,
            reconciliation_timestamp=ctx.now_ms,
        ).model_copy(update={"observed_generation": generation})
        b.summary = "created suspended: nothing to deploy"
        return b.finish(now_ms=ctx.now_ms)
    restore = spec.job.initial_savepoint_path if spec.job is not None else None
    deploy_with_intent(b, spec, generation, ctx, restore=restore, recorded=recorded, reason="first-deploy")
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
    b: Builder, target: FlinkDeploymentSpec, obs: Observation, ctx: Context, *, rolling_back: bool = False
) -> Plan:
    """A previous pass wrote UPGRADING (or ROLLING_BACK) and may or may not have finished acting."""
    status: FlinkDeploymentStatus = b.status  # type: ignore[assignment]
    generation = status.observed_generation or 1
    recon = status.reconciliation_status
    final: dict[str, object] = {"state": ReconciliationState.DEPLOYED}
    if rolling_back:
        final = {"state": ReconciliationState.ROLLED_BACK, "last_reconciled_spec": recon.last_stable_spec}
    waiting = None if rolling_back else waiting_for_prepared(status, generation)
    if waiting is not None:
        return _await_prepared(b, target, waiting, obs, ctx)
    stopped = stopped_run(status)
    if stopped is not None:
        return _start_after_stop(b, target, stopped, obs, ctx, final)
    if _already_deployed(status, obs, generation):
        b.status = without_prepared(set_recon(status, **final)).model_copy(
            update={"job_manager_deployment_status": JobManagerDeploymentStatus.DEPLOYING}
        )
        b.summary = "the interrupted upgrade had already deployed the target: adopting it"
        b.requeue_after = FAST
        return b.finish(now_ms=ctx.now_ms)
    info = snapshot_info(status, SAVEPOINT)
    if info.trigger_type == "UPGRADE" and info.trigger_id:
        return _await_upgrade_savepoint(b, target, obs, ctx)
    job_id = status.job_status.job_id
    return _finish_upgrade(b, target, obs, ctx, job_id=job_id, final=final, summary="finishing an interrupted upgrade")


def _start_after_stop(
    b: Builder,
    target: FlinkDeploymentSpec,
    run: DeploymentRecord,
    obs: Observation,
    ctx: Context,
    final: dict[str, object],
) -> Plan:
    """A previous pass decided to stop the job and start ``target`` from its newest state. Once the old cluster
    is gone, storage holds that state: the restore point is chosen here, from this pass's observation."""
    status: FlinkDeploymentStatus = b.status  # type: ignore[assignment]
    reason = run.stopped_for or "upgrade"
    if obs.cluster_exists:  # the stop was recorded but not (completely) carried out: stop again
        b.intent = status
        b.actions.append(delete_cluster(status, f"{reason}: stopping job {run.job_id}"))
        b.summary = f"{reason}: stopping the old cluster"
        b.requeue_after = 0.0
        return b.finish(now_ms=ctx.now_ms)
    restore, why = restore_point(as_last_state(target), status, obs)
    # The new spec's readiness window (rollback) starts with its deploy, not with the stop before it.
    b.status = set_recon(set_job(status, upgrade_savepoint_path=restore), reconciliation_timestamp=ctx.now_ms)
    stopped_at = run.stop_requested_at or ctx.now_ms
    if target.job is not None and target.job.state != JobState.RUNNING:
        b.event("Normal", "Suspended", f"Job suspended; {why}" + (f": {restore}" if restore else ""))
        return _finish_upgrade(b, target, obs, ctx, job_id=None, final=final, summary=f"{reason}: suspended")
    b.event("Normal", "Submit", f"Starting job ({reason}) from {why}" + (f": {restore}" if restore else ""))
    return _finish_upgrade(
        b, target, obs, ctx, job_id=ctx.fresh_job_id, final=final, stopped_at=stopped_at, reason=reason,
        summary=f"{reason}: starting from the stopped job's newest state",
    )  # fmt: skip


def _finish_upgrade(
    b: Builder,
    target: FlinkDeploymentSpec,
    obs: Observation,
    ctx: Context,
    *,
    job_id: str | None,
    final: dict[str, object] | None = None,
    stopped_at: int | None = None,
    summary: str,
    latest_state: bool = False,
    reason: str | None = None,
) -> Plan:
    """The old job is stopped and its state recorded in ``upgradeSavepointPath``: replace the cluster. With
    ``latest_state`` and a cluster still there, stop it first (``stop_first``): its newest state is chosen next."""
    status = b.status
    generation = status.observed_generation or 1
    phase = status.reconciliation_status.state
    replace = "replacing the cluster of an upgrade" if obs.cluster_exists else None
    reason = reason or ("rollback" if phase == ReconciliationState.ROLLING_BACK else "upgrade")
    if target.job is None or target.job.state == JobState.RUNNING:
        deploy_with_intent(
            b, target, generation, ctx, restore=status.job_status.upgrade_savepoint_path, recorded=None,
            replace_cluster=replace, reason=reason, stopped_at=stopped_at, intent_state=phase, final=final,
            latest_state=latest_state, job_id=job_id,
        )  # fmt: skip
    elif latest_state and replace is not None:
        stop_first(b, generation, ctx, recorded=None, intent_state=phase, reason="suspend", stop=replace)
    else:
        b.intent = status
        if replace is not None:
            b.actions.append(delete_cluster(status, replace))
        # A suspended spec is stable by definition: nothing runs that could fail.
        recorded = status.reconciliation_status.last_reconciled_spec
        b.status = set_recon(status, state=ReconciliationState.DEPLOYED, last_stable_spec=recorded).model_copy(
            update={"job_manager_deployment_status": JobManagerDeploymentStatus.MISSING}
        )
        b.status = set_job(b.status, state="SUSPENDED")
        b.requeue_after = FAST
    b.summary = summary
    return b.finish(now_ms=ctx.now_ms)


def _await_prepared(
    b: Builder, target: FlinkDeploymentSpec, marker: PreparedCluster, obs: Observation, ctx: Context
) -> Plan:
    """UPGRADING with a prepared cluster asked for: once it is ready (or will not be), stop the old job as an
    upgrade without it would; until then the old job keeps running."""
    status: FlinkDeploymentStatus = b.status  # type: ignore[assignment]
    state, why = prepared_state(marker, obs, ctx)
    if state == "starting":
        b.summary = why
        b.requeue_after = PRESTART_POLL
        return b.finish(now_ms=ctx.now_ms)
    if state == "fallback":
        b.event("Warning", "PrestartFallback", f"{why}: stopping the job first, then starting the new cluster")
        b.status = with_prepared(status, fallback=why)
    else:
        b.event("Normal", "PrestartReady", "The pre-started cluster is ready: stopping the old job")
        b.status = with_prepared(status, used=True)
    recorded = status.reconciliation_status.last_reconciled_spec
    assert recorded is not None
    generation = status.observed_generation or 1
    return _upgrade(b, target, recorded, generation, obs, ctx, was_running=True, wants_running=True, what="UPGRADE")


def _await_upgrade_savepoint(b: Builder, target: FlinkDeploymentSpec, obs: Observation, ctx: Context) -> Plan:
    """UPGRADING with a stop-with-savepoint in flight: wait for it, then replace the cluster from it."""
    status: FlinkDeploymentStatus = b.status  # type: ignore[assignment]
    old_job = status.job_status.job_id
    trigger = obs.savepoint_trigger
    location = trigger.location if trigger is not None and trigger.state == "COMPLETED" else None
    location = location or obs.stored_savepoint  # completed, but its result was lost with the JobManager
    if location:
        b.status = set_job(completed(status, SAVEPOINT, location, ctx.now_ms), upgrade_savepoint_path=location)
        b.event("Normal", "SavepointCompleted", f"Upgrade savepoint of job {old_job}: {location}")
        stopped = obs.job.end_time if obs.job is not None and obs.job.end_time else ctx.now_ms
        return _finish_upgrade(
            b, target, obs, ctx, job_id=ctx.fresh_job_id, stopped_at=stopped, summary="upgrade savepoint completed"
        )
    followed = follow_upgrade_savepoint(b, target.flink_configuration, obs, ctx, obs.rest_url)
    if followed is not None:
        return followed
    # The job is not running any more (failed, or its JobManager is gone): fall back to its last state.
    state = obs.job.state if obs.job is not None else "gone"
    restore, why = restore_point(as_last_state(target), status, obs)
    b.event("Warning", "SavepointFallback", f"Job is {state}; upgrading from its last state instead: {why}")
    b.status = set_job(clear_trigger(status, SAVEPOINT), upgrade_savepoint_path=restore)
    return _finish_upgrade(
        b, target, obs, ctx, job_id=ctx.fresh_job_id, stopped_at=ctx.now_ms, summary="savepoint fallback",
        latest_state=keeps_state(target),
    )  # fmt: skip


# ------------------------------------------------------------------ spec changes


def _scales_in_place(
    last: FlinkDeploymentSpec, spec: FlinkDeploymentSpec, change: SpecChange, obs: Observation
) -> bool:
    """Only the parallelism (and the TaskManager count) changed, the adaptive scheduler runs the job in both
    specs, and the job runs: Flink rescales it from its own state without a new deployment."""
    if not change.paths(at_least=DiffType.SCALE) or not set(change.paths(at_least=DiffType.SCALE)) <= _SCALE_FIELDS:
        return False
    adaptive = all(adaptive_scheduler(s.flink_configuration) for s in (last, spec))
    return adaptive and spec.job is not None and last.job is not None and job_running(obs)


def _spec_change(
    b: Builder,
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
        deploy_with_intent(
            b, spec, generation, ctx, restore=restore, recorded=recorded, replace_cluster=replace,
            reason="savepoint-redeploy", stopped_at=ctx.now_ms, final={"last_stable_spec": recorded},
        )  # fmt: skip
        b.intent = set_recon(b.intent, last_stable_spec=recorded) if b.intent is not None else None
        b.event("Normal", "SavepointRedeploy", f"Redeploying from {restore}")
        b.summary = "savepoint redeploy"
        return b.finish(now_ms=ctx.now_ms)

    if was_running and wants_running and _scales_in_place(last, spec, change, obs):
        assert spec.job is not None and last.job is not None and obs.job is not None
        b.status = set_recon(
            status, last_reconciled_spec=recorded, reconciliation_timestamp=ctx.now_ms,
            state=ReconciliationState.DEPLOYED,
        ).model_copy(update={"observed_generation": generation, **NO_ERROR})  # fmt: skip
        b.intent = b.status  # rescaling is idempotent: a pass that repeats it changes nothing
        old, new = last.job.parallelism or 1, spec.job.parallelism or 1
        b.actions.append(
            ScaleInPlace(
                spec=spec, job_id=obs.job.job_id, rest_url=rest(obs), old_parallelism=old, parallelism=new,
                taskmanagers=obs.taskmanagers_expected,
            )
        )  # fmt: skip
        b.event("Normal", "ScaledInPlace", f"Rescaling job {obs.job.job_id} from {old} to {new} without a restart")
        b.summary = "rescale in place"
        b.requeue_after = FAST
        return b.finish(now_ms=ctx.now_ms)
    return _upgrade(
        b, spec, recorded, generation, obs, ctx, was_running=was_running, wants_running=wants_running,
        what=change.kind.name,
    )  # fmt: skip


def _upgrade(
    b: Builder,
    spec: FlinkDeploymentSpec,
    recorded: str,
    generation: int,
    obs: Observation,
    ctx: Context,
    *,
    was_running: bool,
    wants_running: bool,
    what: str,
) -> Plan:
    """Stop what runs (with a savepoint, or first for its newest state) and start ``spec``: after starting its
    cluster next to the running job first, when that is wanted and not done yet (``prestart``)."""
    status: FlinkDeploymentStatus = b.status  # type: ignore[assignment]
    if was_running and wants_running and wants_prestart(spec, status, obs, generation):
        request_prepare(b, spec, generation, ctx, recorded=recorded)
        return b.finish(now_ms=ctx.now_ms)
    mode = spec.job.upgrade_mode if spec.job is not None else UpgradeMode.STATELESS
    if was_running and mode == UpgradeMode.SAVEPOINT:
        old_job = status.job_status.job_id
        if job_running(obs) and old_job:
            fmt = savepoint_format(spec.flink_configuration)
            b.intent = set_recon(
                status, last_reconciled_spec=recorded, reconciliation_timestamp=ctx.now_ms,
                state=ReconciliationState.UPGRADING,
            ).model_copy(update={"observed_generation": generation, **NO_ERROR})  # fmt: skip
            b.intent = with_trigger(b.intent, SAVEPOINT, ctx.fresh_trigger_id, ctx.now_ms, "UPGRADE", fmt)
            b.actions.append(
                TriggerSavepoint(
                    job_id=old_job, rest_url=rest(obs), trigger_id=ctx.fresh_trigger_id, stop=True, format_type=fmt
                )
            )
            b.status = b.intent
            verb = "Upgrading" if wants_running else "Suspending"
            b.event("Normal", "Savepoint", f"{verb}: stopping job {old_job} with a savepoint")
            b.summary = f"{verb.lower()}: stop with savepoint"
            b.requeue_after = SAVEPOINT_POLL
            return b.finish(now_ms=ctx.now_ms)
        state = obs.job.state if obs.job is not None else "not reachable"
        b.event("Warning", "SavepointFallback", f"Job is {state}: using its last state instead of a new savepoint")

    if was_running:
        restore, why = restore_point(as_last_state(spec), status, obs)
    else:
        restore = status.job_status.upgrade_savepoint_path if spec.job and stateful(spec.job.upgrade_mode) else None
        why = "the state recorded when the job was suspended"

    if not wants_running:
        # Suspend: remember where the state is, then stop the cluster.
        b.status = set_recon(
            status,
            last_reconciled_spec=recorded,
            last_stable_spec=recorded,
            state=ReconciliationState.DEPLOYED,
            reconciliation_timestamp=ctx.now_ms,
        ).model_copy(
            update={
                "observed_generation": generation,
                "job_manager_deployment_status": JobManagerDeploymentStatus.MISSING,
                **NO_ERROR,
            }
        )
        if was_running and keeps_state(spec) and obs.cluster_exists:
            # The newest checkpoint is known once the job has stopped: stop it, and record the state next pass.
            b.status = status
            stop_first(
                b, generation, ctx, recorded=recorded, intent_state=ReconciliationState.UPGRADING,
                reason="suspend", stop="suspend",
            )  # fmt: skip
            b.summary = "suspend: stopping the job"
            return b.finish(now_ms=ctx.now_ms)
        if was_running:
            b.intent = set_job(b.status, upgrade_savepoint_path=restore)
            b.intent = set_recon(b.intent, state=ReconciliationState.UPGRADING)
            b.actions.append(delete_cluster(b.intent, "suspend"))
            b.event("Normal", "Suspended", f"Job suspended; {why}" + (f": {restore}" if restore else ""))
        b.status = set_job(b.status, state="SUSPENDED", upgrade_savepoint_path=restore)
        b.summary = "suspend"
        return b.finish(now_ms=ctx.now_ms)

    reason = ("upgrade" if was_running else "resume") if obs.cluster_exists else None
    started = deploy_with_intent(
        b, spec, generation, ctx, restore=restore, recorded=recorded, replace_cluster=reason,
        reason="upgrade" if was_running else "resume", stopped_at=ctx.now_ms if was_running else None,
        latest_state=was_running and keeps_state(spec),
    )  # fmt: skip
    verb = "Resuming" if not was_running else "Upgrading"
    if started:
        b.event("Normal", "Submit", f"{verb}: {why}" + (f" ({restore})" if restore else ""))
    else:
        b.event(
            "Normal", "Stopping", f"{verb}: stopping job {status.job_status.job_id}; it restarts from its newest state"
        )
    b.summary = f"{verb.lower()} ({what})"
    return b.finish(now_ms=ctx.now_ms)
