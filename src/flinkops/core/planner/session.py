"""Planning a FlinkSessionJob: ``plan_session_job`` submits, upgrades, suspends, resumes, recovers, cancels and
watches a job on a session cluster that a FlinkDeployment without a job runs.

The design is the deployments' (``restore``, ``deployment``): the restore point is decided from an observation,
and when only storage can tell it (the job has stopped; Flink's statistics lag, or Flink forgot the job) the job
is stopped first and the next pass reads storage.

* A submission is written ahead: the new job id and its run are recorded (UPGRADING) before the job exists, so
  a controller that dies mid-submission finds the job by that id instead of submitting it twice.
* A stateful upgrade or suspend of a live job in ``last-state`` mode records the stop on the job's run
  (``mark_stopping``) and cancels the job; once it has stopped, the next pass starts the target from the
  newest checkpoint in storage (or records it for a later resume).
* In ``savepoint`` mode the job is stopped with a savepoint whose trigger id is recorded first (UPGRADE), and
  the target starts from that savepoint; a job that cannot take one falls back to its last state.
* A job the session cluster lost is resubmitted from its newest checkpoint in storage.
* A job that completed checkpoints never restarts from older state silently: when none of its state can be
  found, ``ManualRestoreRequired`` is reported and nothing is submitted.

A running job is watched like a deployment's job (``steady.observe_job``).

Called by: ``flinkops.core.planner`` (re-exported) for the controller. Pure: no I/O, no clock.
"""

from __future__ import annotations

from flinkops.api.models import (
    DeploymentRecord,
    DiffType,
    FlinkSessionJob,
    FlinkSessionJobSpec,
    FlinkSessionJobStatus,
    JobState,
    ReconciliationState,
    UpgradeMode,
)
from flinkops.core.conditions import next_condition
from flinkops.core.diff import classify
from flinkops.core.lifecycle import MANUAL_RESTORE
from flinkops.core.planner.deletion import STOP_WAIT_MS, plan_deletion, plan_stop_before_deletion, waited_ms
from flinkops.core.planner.restore import add_run, current_run, mark_stopping, stopped_run
from flinkops.core.planner.snapshots import (
    SAVEPOINT,
    SAVEPOINT_POLL,
    Requests,
    clear_trigger,
    completed,
    follow_upgrade_savepoint,
    savepoint_format,
    snapshot_info,
    with_trigger,
)
from flinkops.core.planner.steady import note_run_progress, observe_job
from flinkops.core.planner.types import (
    FAST,
    NO_ERROR,
    TERMINAL_JOB_STATES,
    Builder,
    CancelSessionJob,
    Context,
    Observation,
    Plan,
    SubmitSessionJob,
    TriggerSavepoint,
    job_running,
    record_validation,
    set_job,
    set_recon,
    stateful,
    with_error,
)
from flinkops.core.specs import dump_reconciled_spec, load_spec
from flinkops.errors import ErrorReason, ManualRestoreRequired

__all__ = ["SESSION_CLUSTER_READY", "plan_session_job", "with_session_condition"]

#: The condition of a session job that says whether the session cluster it runs on is there and ready.
SESSION_CLUSTER_READY = "SessionClusterReady"


def plan_session_job(resource: FlinkSessionJob, obs: Observation, ctx: Context) -> Plan:
    status: FlinkSessionJobStatus = resource.status or FlinkSessionJobStatus()
    try:
        return _plan(resource, status, obs, ctx)
    except ManualRestoreRequired as exc:
        return _manual_restore(Builder(status=status), str(exc), ctx)


def _plan(resource: FlinkSessionJob, status: FlinkSessionJobStatus, obs: Observation, ctx: Context) -> Plan:
    generation = resource.metadata.generation or 1
    b = Builder(status=status)
    job_id = status.job_status.job_id

    if resource.metadata.deletion_timestamp:
        return _plan_deletion(b, resource.metadata.deletion_timestamp, job_id, obs, ctx)

    last = load_spec(status.reconciliation_status.last_reconciled_spec, FlinkSessionJobSpec)
    spec = resource.spec if ctx.valid else last
    record_validation(b, ctx)
    if spec is None:
        b.summary = "no valid spec yet"
        return b.finish(now_ms=ctx.now_ms)
    if spec.job is None:
        b.status = b.status.model_copy(update={"observed_generation": generation})
        b.summary = "spec.job is empty: nothing to run until it is set"
        b.requeue_after = 30.0
        return b.finish(now_ms=ctx.now_ms)
    if not ctx.session_ready or not ctx.session_rest_url:
        # GitOps order: the job may come before its cluster. Waiting is no error; the status names the cluster.
        name = spec.deployment_name
        if ctx.session_exists:
            reason, message = "SessionClusterNotReady", f"waiting for session cluster '{name}' to be ready"
        else:
            reason = "SessionClusterNotFound"
            message = f"waiting for session cluster '{name}': no FlinkDeployment of that name exists yet"
        b.status = with_session_condition(b.status, False, reason, message, ctx.now_ms)
        b.waiting_for = name
        b.summary = message
        b.requeue_after = 2.0
        return b.finish(now_ms=ctx.now_ms)
    ready_message = f"session cluster '{spec.deployment_name}' is ready"
    b.status = with_session_condition(b.status, True, "SessionClusterReady", ready_message, ctx.now_ms)

    upgrading = status.reconciliation_status.state == ReconciliationState.UPGRADING
    if last is not None and last.job is not None and upgrading:
        return _resume_upgrade(b, last, spec, obs, ctx)

    change = classify(last, spec) if last is not None else None
    b.change = change
    if last is None or last.job is None or (change is not None and change.kind > DiffType.IGNORE):
        return _spec_change(b, last, spec, generation, obs, ctx)

    b.status = b.status.model_copy(update={"observed_generation": generation})
    if spec.job.state != JobState.RUNNING:
        b.summary = "suspended"
        return b.finish(now_ms=ctx.now_ms)
    if obs.job is None:
        # The session cluster lost the job (e.g. it was restarted without HA): submit it again, from its newest
        # checkpoint in storage.
        restore, why = _state_of_stopped_job(spec, b.status, obs, spec)
        base = b.status.model_copy(update=NO_ERROR)
        new_id = _submit_with_intent(b, base, spec, ctx, restore, reason="recover", stopped_at=ctx.now_ms)
        b.event(
            "Warning", "Missing", f"Job {job_id} is not on the session cluster; resubmitting as {new_id} from {why}"
        )
        b.summary = "resubmit a missing job"
        return b.finish(now_ms=ctx.now_ms)
    b.status = note_run_progress(b.status, obs.job)
    return observe_job(b, spec.flink_configuration, obs, ctx, Requests())


def with_session_condition(
    status: FlinkSessionJobStatus, ready: bool, reason: str, message: str, now_ms: int
) -> FlinkSessionJobStatus:
    """``status`` with its ``SessionClusterReady`` condition set (the same object when nothing changed); its
    ``lastTransitionTime`` changes only when it flips."""
    conditions = list(status.conditions)
    old = next((c for c in conditions if c.type == SESSION_CLUSTER_READY), None)
    new = next_condition(old, SESSION_CLUSTER_READY, ready, reason, message, now_ms)
    if new is None:
        return status
    if old is None:
        conditions.append(new)
    else:
        conditions[conditions.index(old)] = new
    return status.model_copy(update={"conditions": conditions})


# ------------------------------------------------------------------ spec changes


def _spec_change(
    b: Builder,
    last: FlinkSessionJobSpec | None,
    spec: FlinkSessionJobSpec,
    generation: int,
    obs: Observation,
    ctx: Context,
) -> Plan:
    """The first submission, or a change above IGNORE: stop what runs (keeping its state unless stateless) and
    start, or suspend, the new spec."""
    assert spec.job is not None
    status = b.status
    first = last is None or last.job is None
    recorded = dump_reconciled_spec(spec, first_deployment=first)
    base = set_recon(status, last_reconciled_spec=recorded, reconciliation_timestamp=ctx.now_ms).model_copy(
        update={"observed_generation": generation, **NO_ERROR}
    )
    wants_running = spec.job.state == JobState.RUNNING
    was_running = not first and last is not None and last.job is not None and last.job.state == JobState.RUNNING
    mode = spec.job.upgrade_mode
    job_id = status.job_status.job_id
    rest = _rest(ctx)
    if not first:
        change = b.change
        b.event("Normal", "SpecChanged", f"{change.kind.name if change else 'UPGRADE'} change")

    if not first and _alive(obs) and job_id and stateful(mode):
        verb = "Upgrading" if wants_running else "Suspending"
        if mode == UpgradeMode.SAVEPOINT:
            if job_running(obs):
                fmt = savepoint_format(spec.flink_configuration)
                b.intent = with_trigger(
                    set_recon(base, state=ReconciliationState.UPGRADING),
                    SAVEPOINT, ctx.fresh_trigger_id, ctx.now_ms, "UPGRADE", fmt,
                )  # fmt: skip
                b.actions.append(
                    TriggerSavepoint(
                        job_id=job_id, rest_url=rest, trigger_id=ctx.fresh_trigger_id, stop=True, format_type=fmt
                    )
                )
                b.status = b.intent
                b.event("Normal", "Savepoint", f"{verb}: stopping job {job_id} with a savepoint")
                b.summary = f"{verb.lower()}: stop with savepoint"
                b.requeue_after = SAVEPOINT_POLL
                return b.finish(now_ms=ctx.now_ms)
            state = obs.job.state if obs.job is not None else "not reachable"
            b.event("Warning", "SavepointFallback", f"Job is {state}: using its last state instead of a new savepoint")
        # The newest checkpoint is known once the job has stopped: stop it, and decide the restore point next pass.
        b.status = base
        _stop_first(b, job_id, "upgrade" if wants_running else "suspend", ctx)
        b.event("Normal", "Stopping", f"{verb}: cancelling job {job_id}; its newest checkpoint is read after it stops")
        b.summary = f"{verb.lower()}: stopping the job"
        return b.finish(now_ms=ctx.now_ms)

    # Nothing live whose state matters: a stateless change, a first submission, a resume, or a job that ended.
    if _alive(obs) and job_id:
        b.actions.append(CancelSessionJob(job_id=job_id, rest_url=rest))
    if first:
        restore, why = spec.job.initial_savepoint_path, "spec.job.initialSavepointPath"
    elif not stateful(mode):
        restore, why = None, "stateless upgrade mode: the job starts with empty state"
    elif not was_running:
        restore, why = status.job_status.upgrade_savepoint_path, "the state recorded when the job was suspended"
    else:
        restore, why = _state_of_stopped_job(spec, status, obs, spec)
    if not wants_running:
        b.status = set_job(
            set_recon(base, state=ReconciliationState.DEPLOYED, last_stable_spec=recorded),
            state="SUSPENDED",
            upgrade_savepoint_path=restore,
        )
        b.intent = set_recon(b.status, state=ReconciliationState.UPGRADING) if b.actions else None
        b.summary = "suspend"
        return b.finish(now_ms=ctx.now_ms)
    reason = "first-deploy" if first else ("upgrade" if was_running else "resume")
    stopped_at = ctx.now_ms if was_running else None
    new_id = _submit_with_intent(b, base, spec, ctx, restore, reason=reason, stopped_at=stopped_at)
    b.event("Normal", "Submit", f"Submitting job {new_id} ({reason})" + (f" from {why}: {restore}" if restore else ""))
    b.summary = "submit"
    return b.finish(now_ms=ctx.now_ms)


# ------------------------------------------------------------------ interrupted upgrades


def _resume_upgrade(
    b: Builder, target: FlinkSessionJobSpec, desired: FlinkSessionJobSpec, obs: Observation, ctx: Context
) -> Plan:
    """A previous pass wrote UPGRADING and may or may not have finished acting: a stop to wait for, an upgrade
    savepoint in flight, or a submission to find."""
    status = b.status
    assert target.job is not None
    stopped = stopped_run(status)
    if stopped is not None:
        return _start_after_stop(b, target, desired, stopped, obs, ctx)
    info = snapshot_info(status, SAVEPOINT)
    if info.trigger_type == "UPGRADE" and info.trigger_id:
        return _await_upgrade_savepoint(b, target, desired, obs, ctx)
    job_id = status.job_status.job_id
    if target.job.state != JobState.RUNNING:
        # A stateless suspend: the cancel was planned with the intent.
        if _alive(obs) and job_id:
            b.intent = status
            b.actions.append(CancelSessionJob(job_id=job_id, rest_url=_rest(ctx)))
        b.status = set_job(set_recon(status, state=ReconciliationState.DEPLOYED), state="SUSPENDED")
        b.summary = "suspend: the job is cancelled"
        b.requeue_after = FAST
        return b.finish(now_ms=ctx.now_ms)
    if obs.job is not None:
        b.status = set_recon(status, state=ReconciliationState.DEPLOYED)
        b.summary = "the interrupted submission had gone through: adopting the job"
        b.requeue_after = FAST
        return b.finish(now_ms=ctx.now_ms)
    # Interrupted submission: the job id and its restore point were recorded before submitting.
    assert job_id is not None
    restore = status.job_status.upgrade_savepoint_path
    b.actions.append(SubmitSessionJob(spec=target, job_id=job_id, rest_url=_rest(ctx), restore_path=restore))
    b.status = set_recon(status, state=ReconciliationState.DEPLOYED)
    b.summary = "resubmitting an interrupted submission"
    b.requeue_after = FAST
    return b.finish(now_ms=ctx.now_ms)


def _start_after_stop(
    b: Builder,
    target: FlinkSessionJobSpec,
    desired: FlinkSessionJobSpec,
    run: DeploymentRecord,
    obs: Observation,
    ctx: Context,
) -> Plan:
    """A previous pass decided to stop the job and start (or suspend) ``target`` from its newest state. Once the
    job has stopped, storage holds that state: the restore point is chosen here, from this pass's observation."""
    status = b.status
    reason = run.stopped_for or "upgrade"
    job_id = status.job_status.job_id
    if _alive(obs) and job_id:
        assert obs.job is not None
        b.intent = status
        if obs.job.state != "CANCELLING":  # the stop was recorded but maybe never sent: cancelling again is safe
            b.actions.append(CancelSessionJob(job_id=job_id, rest_url=_rest(ctx)))
        b.summary = f"{reason}: waiting for job {job_id} to stop"
        b.requeue_after = FAST
        return b.finish(now_ms=ctx.now_ms)
    restore, why = _state_of_stopped_job(target, status, obs, desired)
    stopped_at = obs.job.end_time if obs.job is not None and obs.job.end_time else run.stop_requested_at
    return _start_target(b, target, restore, why, ctx, reason=reason, stopped_at=stopped_at or ctx.now_ms)


def _await_upgrade_savepoint(
    b: Builder, target: FlinkSessionJobSpec, desired: FlinkSessionJobSpec, obs: Observation, ctx: Context
) -> Plan:
    """UPGRADING with a stop-with-savepoint in flight: wait for it, then start (or suspend) the target from it."""
    status = b.status
    assert target.job is not None
    old_job = status.job_status.job_id
    trigger = obs.savepoint_trigger
    reason = "upgrade" if target.job.state == JobState.RUNNING else "suspend"
    location = trigger.location if trigger is not None and trigger.state == "COMPLETED" else None
    location = location or obs.stored_savepoint  # completed, but its result was lost with the JobManager
    if location:
        b.status = completed(status, SAVEPOINT, location, ctx.now_ms)
        b.event("Normal", "SavepointCompleted", f"Upgrade savepoint of job {old_job}: {location}")
        stopped = obs.job.end_time if obs.job is not None and obs.job.end_time else ctx.now_ms
        return _start_target(b, target, location, "the upgrade savepoint", ctx, reason=reason, stopped_at=stopped)
    followed = follow_upgrade_savepoint(b, target.flink_configuration, obs, ctx, ctx.session_rest_url)
    if followed is not None:
        return followed
    # The job cannot take a savepoint (it is restarting, has ended, or the cluster forgot it): its last state.
    state = obs.job.state if obs.job is not None else "gone"
    b.event("Warning", "SavepointFallback", f"Job is {state}; using its last state instead of a savepoint")
    b.status = clear_trigger(status, SAVEPOINT)
    if _alive(obs) and old_job:
        _stop_first(b, old_job, reason, ctx)
        b.summary = "savepoint fallback: stopping the job"
        return b.finish(now_ms=ctx.now_ms)
    restore, why = _state_of_stopped_job(target, b.status, obs, desired)
    return _start_target(b, target, restore, why, ctx, reason=reason, stopped_at=ctx.now_ms)


# ------------------------------------------------------------------ shared steps


def _stop_first(b: Builder, job_id: str, reason: str, ctx: Context) -> None:
    """Record the stop on the job's run (UPGRADING), then cancel it; the next pass (``_start_after_stop``) reads
    its newest checkpoint from storage once it has stopped."""
    intent = set_recon(b.status, state=ReconciliationState.UPGRADING)
    b.intent = mark_stopping(intent, reason, ctx.now_ms)
    b.actions.append(CancelSessionJob(job_id=job_id, rest_url=_rest(ctx)))
    b.status = b.intent
    b.requeue_after = 0.0  # the job is down from here on: the next pass starts it as soon as it has stopped


def _start_target(
    b: Builder,
    target: FlinkSessionJobSpec,
    restore: str | None,
    why: str,
    ctx: Context,
    *,
    reason: str,
    stopped_at: int,
) -> Plan:
    """The old job has stopped and where its state is was decided: submit ``target`` from it, or record it for a
    later resume when ``target`` is suspended."""
    assert target.job is not None
    status = b.status.model_copy(update=NO_ERROR)  # a restore point was found: no manual restore is pending
    if target.job.state != JobState.RUNNING:
        recorded = status.reconciliation_status.last_reconciled_spec
        # A suspended spec is stable by definition: nothing runs that could fail.
        b.status = set_job(
            set_recon(status, state=ReconciliationState.DEPLOYED, last_stable_spec=recorded),
            state="SUSPENDED",
            upgrade_savepoint_path=restore,
        )
        b.event("Normal", "Suspended", f"Job suspended; {why}" + (f": {restore}" if restore else ""))
        b.summary = f"{reason}: suspended"
        b.requeue_after = FAST
        return b.finish(now_ms=ctx.now_ms)
    # The new spec's readiness window starts with its submission, not with the stop before it.
    base = set_recon(status, reconciliation_timestamp=ctx.now_ms)
    new_id = _submit_with_intent(b, base, target, ctx, restore, reason=reason, stopped_at=stopped_at)
    b.event("Normal", "Submit", f"Submitting job {new_id} ({reason}) from {why}" + (f": {restore}" if restore else ""))
    b.summary = f"{reason}: submitting from the stopped job's newest state"
    return b.finish(now_ms=ctx.now_ms)


def _submit_with_intent(
    b: Builder,
    base: FlinkSessionJobStatus,
    spec: FlinkSessionJobSpec,
    ctx: Context,
    restore: str | None,
    *,
    reason: str,
    stopped_at: int | None,
) -> str:
    """Write-ahead, then submit: the new job id, its restore point and its run are recorded (UPGRADING) before
    the job exists, so a controller that dies mid-submission finds the job by that id instead of submitting it
    twice."""
    assert spec.job is not None
    new_id = ctx.fresh_job_id
    generation = base.observed_generation or 1
    intent = set_job(
        set_recon(base, state=ReconciliationState.UPGRADING),
        job_id=new_id,
        state="RECONCILING",
        upgrade_savepoint_path=restore,
    )
    mode = spec.job.upgrade_mode.value
    b.intent = add_run(intent, generation, new_id, reason, mode, restore, stopped_at, ctx.now_ms)
    b.actions.append(SubmitSessionJob(spec=spec, job_id=new_id, rest_url=_rest(ctx), restore_path=restore))
    b.status = set_recon(b.intent, state=ReconciliationState.DEPLOYED)
    b.requeue_after = FAST
    return new_id


def _state_of_stopped_job(
    target: FlinkSessionJobSpec, status: FlinkSessionJobStatus, obs: Observation, desired: FlinkSessionJobSpec
) -> tuple[str | None, str]:
    """Where a job that is not running any more (stopped, ended, or forgotten by its cluster) left its state,
    and why. Storage is the truth once the job has stopped (the checkpoint Flink's statistics name may have been
    subsumed since, and a forgotten job has no statistics at all). Raises ``ManualRestoreRequired`` when it
    completed checkpoints and none can be found, unless the spec (the target's or the one asked for now) says to
    start empty."""
    if target.job is None or not stateful(target.job.upgrade_mode):
        return None, "stateless upgrade mode: the job starts with empty state"
    if obs.latest_stored_checkpoint:
        return obs.latest_stored_checkpoint, "the newest completed checkpoint in checkpoint storage"
    run = current_run(status)
    checkpointed = (run is not None and run.checkpointed) or (obs.job is not None and obs.job.completed_checkpoints)
    if checkpointed:
        if desired.job is not None and desired.job.upgrade_mode == UpgradeMode.STATELESS:
            return None, "upgradeMode stateless: its lost state is given up, the job starts with empty state"
        job_id = status.job_status.job_id
        raise ManualRestoreRequired(f"job {job_id} completed checkpoints, but none is left in checkpoint storage")
    if status.job_status.upgrade_savepoint_path:
        return status.job_status.upgrade_savepoint_path, "the state the job was last started from"
    return None, "no checkpoint exists yet: the job starts with empty state"


def _manual_restore(b: Builder, reason: str, ctx: Context) -> Plan:
    error = f"{MANUAL_RESTORE}: {reason}. Nothing was submitted. Set spec.job.upgradeMode: stateless to start the "
    error += "job empty, or recreate the FlinkSessionJob with spec.job.initialSavepointPath pointing at its state."
    if b.status.error != error:
        b.event("Warning", "ManualRestoreRequired", error)
    b.status = with_error(b.status, ErrorReason.MANUAL_RESTORE_REQUIRED, error)
    b.summary = "manual restore required"
    b.requeue_after = 30.0
    return b.finish(now_ms=ctx.now_ms)


def _plan_deletion(b: Builder, asked: str, job_id: str | None, obs: Observation, ctx: Context) -> Plan:
    """Cancel the job, wait until Flink says it ended (CANCELLING is not the end: its tasks may still write),
    then let the resource go. A job that has not ended ``STOP_WAIT_MS`` after the deletion is left to Flink."""
    if not (_alive(obs) and job_id and ctx.session_rest_url):
        return plan_deletion(b, ctx, stop=None, message="Deleting FlinkSessionJob")
    assert obs.job is not None
    if waited_ms(asked, ctx.now_ms) >= STOP_WAIT_MS:
        b.event(
            "Warning",
            "CleanupTimedOut",
            f"Job {job_id} is still {obs.job.state} {STOP_WAIT_MS // 60_000} min after the deletion was asked for; "
            "the resource is removed and the session cluster finishes stopping the job",
        )
        return plan_deletion(b, ctx, stop=None, message="Deleting FlinkSessionJob")
    cancel = None
    if obs.job.state != "CANCELLING":  # a cancel that was lost, or not sent yet: sending it again is safe
        cancel = CancelSessionJob(job_id=job_id, rest_url=ctx.session_rest_url)
    return plan_stop_before_deletion(
        b, ctx, stop=cancel, what=f"job {job_id}", message="Deleting FlinkSessionJob: cancelling its job"
    )


def _alive(obs: Observation) -> bool:
    """The job is on the session cluster and has not ended (it may be starting, restarting or cancelling)."""
    return obs.job is not None and obs.job.state not in TERMINAL_JOB_STATES


def _rest(ctx: Context) -> str:
    assert ctx.session_rest_url is not None, "the session cluster is ready when a session job acts"
    return ctx.session_rest_url
