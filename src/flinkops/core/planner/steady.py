"""The steady state: a deployed spec that does not change. Keep its cluster whole, watch its job, decide when it
is stable, and release the cluster of a job that ended.

A dead active JobManager is recovered by redeploying from the job's latest state; dead TaskManagers and standby
JobManagers are replaced in place. Stability is stricter than the reference operator's: a job is STABLE only
once it has been RUNNING for ``flinkops.stability.min-running-time`` (default 5 s) and, with checkpointing
enabled, has completed a checkpoint since the deploy (``flinkops.stability.require-checkpoint``, default
true), so a job that crash-loops seconds after start is never marked stable. A job that ended (FINISHED or
FAILED) has its result recorded on its run before its cluster is stopped. A STABLE resource whose pass had
nothing to do or tell is looked at again after the reconcile interval (``kubernetes.operator.reconcile.interval``,
1 min by default, 2 s for a batch job); one that is still moving after a second, or ten.

Called by: ``deployment.plan_deployment`` (``steady``) and ``session.plan_session_job`` (``observe_job``).
Pure: no I/O, no clock.
"""

from __future__ import annotations

from flinkops.api.durations import parse_duration_ms
from flinkops.api.flinkconf import DEFAULT_WEB_REFRESH, WEB_REFRESH_KEY
from flinkops.api.models import (
    FlinkDeploymentSpec,
    FlinkDeploymentStatus,
    JobManagerDeploymentStatus,
    JobState,
    ReconciliationState,
)
from flinkops.core.planner.restore import as_last_state, current_run, deploy_with_intent, keeps_state, restore_point
from flinkops.core.planner.snapshots import (
    SAVEPOINT,
    Requests,
    clear_trigger,
    follow_and_trigger,
    retention,
    trigger_pending,
)
from flinkops.core.planner.types import (
    FAST,
    IDLE,
    NO_ERROR,
    RECONCILE_INTERVAL_KEY,
    S_,
    STEADY,
    TERMINAL_JOB_STATES,
    Builder,
    Context,
    DeleteCluster,
    JobObservation,
    Observation,
    Plan,
    ReplaceMissingProcesses,
    headline,
    set_job,
    set_recon,
    with_error,
)
from flinkops.errors import ErrorReason

__all__ = ["BATCH_POLL", "note_run_progress", "observe_job", "reconcile_interval", "steady"]

#: Between passes of a STABLE batch job: one REST call every 2 s while it runs, so its end is seen at most 2 s late.
BATCH_POLL = 2.0
_RESULT_SETTLE_MS = 250  # margin on top of Flink's REST cache interval before a final result is read


def steady(b: Builder, spec: FlinkDeploymentSpec, obs: Observation, ctx: Context, requests: Requests) -> Plan:
    status: FlinkDeploymentStatus = b.status  # type: ignore[assignment]
    suspended = spec.job is not None and spec.job.state == JobState.SUSPENDED
    if suspended:
        retention(b, spec.flink_configuration, ctx)  # retention also runs while nothing runs
        if obs.cluster_exists:
            b.actions.append(DeleteCluster(reason="resource is suspended"))
        b.summary = "suspended"
        return b.finish(now_ms=ctx.now_ms)

    if not obs.cluster_exists or not obs.jobmanager_alive:
        terminal = status.job_status.state in TERMINAL_JOB_STATES
        if terminal and not obs.cluster_exists:
            retention(b, spec.flink_configuration, ctx)
            b.summary = f"job {status.job_status.state}; cluster already gone"
            return b.finish(now_ms=ctx.now_ms)
        restore, why = restore_point(as_last_state(spec), status, obs)
        generation = status.observed_generation or 1
        dead = "JobManager process died" if obs.cluster_exists else None
        b.status = clear_trigger(status, SAVEPOINT)
        deploy_with_intent(
            b, spec, generation, ctx, restore=restore, recorded=None, replace_cluster=dead, reason="recover",
            stopped_at=ctx.now_ms, latest_state=keeps_state(spec),
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
        return _mark_stable_if(b, True, ctx, "session cluster ready", spec.flink_configuration)
    return observe_job(b, spec.flink_configuration, obs, ctx, requests)


def observe_job(b: Builder, config: dict[str, str], obs: Observation, ctx: Context, requests: Requests) -> Plan:
    status = b.status
    job = obs.job
    if job is None:
        b.status = set_job(status, state="RECONCILING")
        b.summary = "waiting for the job to appear"
        b.requeue_after = FAST
        return b.finish(now_ms=ctx.now_ms)
    previous = status.job_status.state
    b.status = set_job(
        status,
        job_id=job.job_id,
        job_name=job.name,
        state=job.state,
        start_time=str(job.start_time) if job.start_time else None,
        update_time=str(ctx.now_ms) if previous != job.state else status.job_status.update_time,
    )
    b.status = note_run_progress(b.status, job)
    if previous != job.state:
        b.event("Normal", "JobStatusChanged", f"Job status changed from {previous} to {job.state}")
    follow_and_trigger(b, config, obs, ctx, requests)
    retention(b, config, ctx)  # after the triggers, so a savepoint completed in this pass counts at once
    if job.state == "FAILED":
        error = job.error or "the job failed (no exception was reported)"
        if b.status.error != error:
            b.event("Warning", "Error", headline(error))
        b.status = with_error(b.status, ErrorReason.JOB_FAILED, error)
        b.summary = "job failed"
        _release_ended_cluster(b, job, ctx, config)
        return b.finish(now_ms=ctx.now_ms)
    if job.state == "FINISHED":
        _mark_stable_if(b, True, ctx, "job finished", config)
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
            config,
        )
    b.summary = f"job {job.state}"
    b.requeue_after = FAST
    return b.finish(now_ms=ctx.now_ms)


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


def _release_ended_cluster(b: Builder, job: JobObservation, ctx: Context, config: dict[str, str]) -> None:
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
        run = current_run(b.status)
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


def note_run_progress(status: S_, job: JobObservation) -> S_:
    """Record on the current run (of either kind) when its tasks first all ran and whether it completed a
    checkpoint (a job that did must never silently restart from older state)."""
    run = current_run(status)
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


def reconcile_interval(config: dict[str, str]) -> float:
    """Seconds between the passes of a STABLE resource with nothing pending: ``RECONCILE_INTERVAL_KEY``, one
    minute by default as in the reference operator. A batch job (``execution.runtime-mode: BATCH``) is looked at
    every ``BATCH_POLL`` seconds unless the key says otherwise: its end is what its user waits for, and its
    cluster is released then (within 10 s of the end, pods gone, is the goal; Flink tells nobody that a job
    ended, so its REST API is asked)."""
    batch = config.get("execution.runtime-mode", "").strip().upper() == "BATCH"
    default = BATCH_POLL if batch else IDLE
    try:
        ms = parse_duration_ms(config.get(RECONCILE_INTERVAL_KEY, ""))
    except ValueError:
        return default  # unset, or not a duration (validation reports it)
    return ms / 1000 if ms > 0 else default


def _mark_stable_if(b: Builder, ready: bool, ctx: Context, why: str, config: dict[str, str]) -> Plan:
    recon = b.status.reconciliation_status
    if ready and recon.state == ReconciliationState.DEPLOYED:
        if recon.last_stable_spec != recon.last_reconciled_spec:
            b.status = set_recon(b.status, last_stable_spec=recon.last_reconciled_spec)
            b.event("Normal", "Stable", f"Deployment is stable: {why}")
        # A healthy job clears a past failure, but not the report that the *new* spec is invalid.
        if b.status.error_reason != ErrorReason.VALIDATION_ERROR:
            b.status = b.status.model_copy(update=NO_ERROR)
        b.summary = why
        # Stable and quiet (this pass neither acts nor has news): look again after the reconcile interval. A
        # dead process, a spec change or a due periodic snapshot still wake the resource at once.
        interval = reconcile_interval(config)
        b.requeue_after = min(STEADY, interval) if b.actions or b.events else interval
    else:
        b.summary = f"{why}: not stable yet" if not ready else why
        b.requeue_after = FAST
    if trigger_pending(b.status):
        b.requeue_after = FAST
    return b.finish(now_ms=ctx.now_ms)
