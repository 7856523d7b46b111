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

What Flink cannot report is read from the cluster's pods by the runtime (``Observation.fault``: an image not
on the node, a pod no node can take, a JobManager that keeps crashing): it becomes the error, with a Warning event
and Degraded=True, on the first pass that sees it, and nothing is acted on for it (a running job is never
touched; a JobManager without HA that crashed before its job ever ran is not redeployed into the same crash). A
job that keeps failing over has its latest exception recorded the same way. A local JobManager process that
exited before its job ran is started again with backoff, up to a budget (``crashloop``).

Called by: ``deployment.plan_deployment`` (``steady``) and ``session.plan_session_job`` (``observe_job``).
Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flinkops.api.durations import duration_ms_or, parse_duration_ms
from flinkops.api.flinkconf import DEFAULT_WEB_REFRESH, WEB_REFRESH_KEY
from flinkops.api.models import (
    DeploymentRecord,
    FlinkDeploymentSpec,
    FlinkDeploymentStatus,
    JobManagerDeploymentStatus,
    JobState,
    ReconciliationState,
)
from flinkops.core.planner.crashloop import after_start_failure, died_before_running, on_start_failure, start_failed
from flinkops.core.planner.growth import GROWTH_POLL, plan_growth, plan_release
from flinkops.core.planner.restore import (
    as_last_state,
    cluster_ready,
    current_run,
    deploy_with_intent,
    keeps_state,
    restore_point,
)
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
from flinkops.errors import FAULT_REASONS, ErrorReason

__all__ = ["BATCH_POLL", "note_fault", "note_run_progress", "observe_job", "reconcile_interval", "steady"]

_RESTARTING = frozenset({"RESTARTING", "FAILING"})
#: Between passes of a STABLE batch job: one REST call every half second while it runs, so its end is seen at most
#: 0.5 s late (a scheduler waiting for it, an Airflow task, learns it within 2 s)
#: (the 10 s from its end to its pods gone also holds Flink's REST cache and the pods' shutdown).
BATCH_POLL = 0.5
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

    if start_failed(status, obs):
        # A local JobManager that exited before its job ran: retried with backoff up to a budget (crashloop.py).
        return on_start_failure(b, spec, obs, ctx)
    waiting = after_start_failure(b, spec, obs, ctx)
    if waiting is not None:
        return waiting

    if died_before_running(status, obs, ErrorReason.CRASH_LOOP):
        # The JobManager's container exited with an error before its job ran: redeploying would crash the same
        # way, again and again (a bad configuration, an image without Flink). Say why, and wait for a changed spec.
        note_fault(b, obs, jobmanager_down=True)
        b.summary = "the JobManager crashed before its job ran: waiting for a changed spec"
        b.requeue_after = STEADY
        return b.finish(now_ms=ctx.now_ms)

    if not obs.cluster_exists or not obs.jobmanager_alive:
        terminal = status.job_status.state in TERMINAL_JOB_STATES
        if terminal and not obs.cluster_exists:
            retention(b, spec.flink_configuration, ctx)
            b.summary = f"job {status.job_status.state}; cluster already gone"
            return b.finish(now_ms=ctx.now_ms)
        if terminal:
            # The job ended and then its JobManager went: Flink stops an application cluster itself once its
            # job is over, which may come before flinkops released it. The job's end, not a crash: nothing is
            # started again; what is left of the cluster goes, the run closed with what status knows.
            _release_after_the_jobmanager(b, ctx)
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
        note_fault(b, obs, jobmanager_down=True)
        b.summary = "JobManager started, REST API not ready yet"
        b.requeue_after = FAST
        if obs.fault is not None:
            # Nothing changes until the spec or the node does: the pod watch and spec changes wake it sooner.
            b.summary = f"not starting: {obs.fault.reason.value}"
            b.requeue_after = STEADY
        return b.finish(now_ms=ctx.now_ms)

    b.status = status.model_copy(update={"job_manager_deployment_status": JobManagerDeploymentStatus.READY})
    note_fault(b, obs, jobmanager_down=False)
    if obs.flink_version:
        info = dict(status.cluster_info)
        info["flink-version"] = obs.flink_version
        if obs.rest_url:
            info["rest-url"] = obs.rest_url
        b.status = b.status.model_copy(update={"cluster_info": info})
    if spec.job is None:
        b.status = cluster_ready(b.status, ctx.now_ms)
        busy = plan_growth(b, spec, obs, ctx)
        plan = _mark_stable_if(b, True, ctx, "session cluster ready", spec.flink_configuration)
        return replace(plan, requeue_after=min(plan.requeue_after, GROWTH_POLL)) if busy else plan
    releasing = plan_release(b, spec, obs, ctx)
    plan = observe_job(b, spec.flink_configuration, obs, ctx, requests)
    return replace(plan, requeue_after=min(plan.requeue_after, GROWTH_POLL)) if releasing else plan


def note_fault(b: Builder, obs: Observation, *, jobmanager_down: bool) -> None:
    """Record what the runtime sees wrong with the cluster's pods (``obs.fault``) as the error, with a Warning event
    the first pass it shows (or changes), and take it back once it is gone. Nothing is acted on: a running job is
    never touched for a fault. With ``jobmanager_down`` (no JobManager answers) a JobManager's fault marks the
    JobManager deployment ERROR, as the reference operator does. An invalid spec, a failed job and a manual restore
    are reported first; the fault's event still tells the rest."""
    status, fault = b.status, obs.fault
    if fault is None:
        if status.error_reason in FAULT_REASONS:
            b.event("Normal", "FaultCleared", f"No longer seen: {headline(status.error or '')}")
            b.status = status.model_copy(update=NO_ERROR)
        return
    if status.error_reason not in (None, ErrorReason.RECONCILE_ERROR, ErrorReason.JOB_RESTARTING, *FAULT_REASONS):
        return  # a job failing over for want of the pod that cannot run: the pod is the cause to show
    if status.error != fault.message:
        b.event("Warning", fault.reason.value, fault.message)
    update: dict[str, object] = {}
    if jobmanager_down and fault.component == "jobmanager":
        update["job_manager_deployment_status"] = JobManagerDeploymentStatus.ERROR
    b.status = with_error(status, fault.reason, fault.message, **update)


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
    _note_restarts(b, job)
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


def _note_restarts(b: Builder, job: JobObservation) -> None:
    """A job that keeps failing over (RESTARTING, FAILING) is not touched (Flink's restart strategy is at work),
    but its latest exception becomes the error, with a Warning event when it changes: S3 that the pods cannot
    reach shows here, as checkpoints that fail. The error stays until the job is stable again (a job that runs
    for a moment between two failures is not well)."""
    if job.state not in _RESTARTING or not job.error:
        return
    if b.status.error_reason in (None, ErrorReason.JOB_RESTARTING, ErrorReason.RECONCILE_ERROR):
        error = f"job {job.job_id} is failing over ({job.state}): {job.error}"
        if b.status.error != error:
            b.event("Warning", ErrorReason.JOB_RESTARTING.value, f"Job {job.state}: {headline(job.error)}")
        b.status = with_error(b.status, ErrorReason.JOB_RESTARTING, error)


def _min_running_ms(config: dict[str, str]) -> int:
    return duration_ms_or(config, "flinkops.stability.min-running-time", 5000)


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
    _close_run(
        b,
        ended_at=job.end_time or ctx.now_ms,
        end_state=job.state,
        job_duration_ms=job.duration_ms,
        result=dict(job.accumulators),
    )
    # Write-ahead: the end state is recorded before the cluster goes, so a controller that dies in between
    # never mistakes the missing cluster for a crash to recover from (which would run a batch job again).
    b.intent = b.status
    took = f" after {job.duration_ms / 1000:.1f} s" if job.duration_ms is not None else ""
    b.actions.append(DeleteCluster(reason=f"job {job.state}{took}: releasing its cluster"))
    b.event("Normal", "ClusterReleased", f"Job {job.state}{took}; its cluster is stopped (logs are kept)")
    b.requeue_after = FAST


def _release_after_the_jobmanager(b: Builder, ctx: Context) -> None:
    """An ended job whose JobManager is gone before its cluster was released: close its run (its accumulators
    went with the JobManager) and delete the rest of the cluster."""
    state = b.status.job_status.state
    _close_run(b, ended_at=ctx.now_ms, end_state=state)
    b.intent = b.status
    b.actions.append(DeleteCluster(reason=f"job {state} and its JobManager gone: releasing the rest of its cluster"))
    b.event("Normal", "ClusterReleased", f"Job {state}; its JobManager had stopped; the cluster is released")
    b.summary = f"job {state}; releasing what is left of its cluster"
    b.requeue_after = FAST


def _close_run(b: Builder, **ended: Any) -> None:
    """Record how a deployment's current run ended (once: a closed run is never rewritten)."""
    if not isinstance(b.status, FlinkDeploymentStatus):
        return
    run = current_run(b.status)
    if run is not None and run.end_state is None:
        history = [*b.status.deployment_history[:-1], run.model_copy(update=ended)]
        b.status = b.status.model_copy(update={"deployment_history": history})


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
    # The count for the cost report, written at the run's end (the job's end, a stop): a stable job's status is
    # not rewritten for every checkpoint it takes, and a half-way count would read as the run's total.
    counted = job.completed_checkpoints > (run.checkpoints or 0)
    if counted and (job.state in TERMINAL_JOB_STATES or run.stopped_for):
        update["checkpoints"] = job.completed_checkpoints
    update.update(_usage(run, job))
    if not update:
        return status
    history = [*status.deployment_history[:-1], run.model_copy(update=update)]
    return status.model_copy(update={"deployment_history": history})


#: How often a running job's usage figures are written to its run (a bounded status write rate: a stable job's
#: status is rewritten at most this often for them).
USAGE_INTERVAL_MS = 600_000
_GIB = float(1 << 30)


def _usage(run: DeploymentRecord, job: JobObservation) -> dict[str, object]:
    """The run's used figures brought up to this observation, or nothing when it is not time to write them: at the
    run's end (the job ended, or it is being stopped for another run) once, and every ``USAGE_INTERVAL_MS`` while it
    runs. ``job.observed_at`` is the sample's time; a figure Flink did not report leaves the recorded one alone.

    * ``used_cpu_seconds``: the cluster's cumulative JVM CPU time (Flink's counter, exact); kept at its highest
      sample, so a process that restarted (its counter back at 0) undercounts rather than lowers the figure.
    * ``used_gib_seconds`` += memory in use now (GiB) x (now - ``usage_sampled_at``) s: the memory in use at each
      write stands for the interval before it (the first sample starts the count).
    * ``state_gib_hours`` += the newest completed checkpoint's state size (GiB) x (now - ``usage_sampled_at``) h:
      the state the checkpoint storage holds, over the time it held it (from the first sample that saw a
      checkpoint); retained older checkpoints are not counted.
    * ``checkpoint_bytes`` = Flink's average checkpointed (uploaded) size x completed checkpoints: what the run's
      checkpoints wrote to the checkpoint storage (S3 for ``s3://``); kept at its highest (Flink's statistics
      start afresh with a new JobManager)."""
    now = job.observed_at
    if now is None or run.released_at is not None:
        return {}
    known = (job.cluster_cpu_seconds, job.cluster_memory_bytes, job.checkpoint_state_bytes)
    if all(v is None for v in (*known, job.checkpoint_uploaded_bytes)):
        return {}
    last = run.usage_sampled_at
    ending = job.state in TERMINAL_JOB_STATES or run.stopped_for is not None
    end_mark = run.stop_requested_at if run.stopped_for is not None else (job.end_time or run.ended_at)
    # at the end: once, the first pass that sees it (a sample taken before the end began)
    final = ending and end_mark is not None and (last is None or last < end_mark)
    # and once more when the CPU counter first answers: Flink's REST API serves its processes' metrics from a
    # cache it fills on the first request, so the first sample of a run often has none yet
    first_cpu = run.used_cpu_seconds is None and job.cluster_cpu_seconds is not None
    due = last is None or now - last >= USAGE_INTERVAL_MS or final or first_cpu
    if not due or (last is not None and now <= last):
        return {}
    seconds = (now - last) / 1000 if last is not None else 0.0
    update: dict[str, object] = {"usage_sampled_at": now}
    if job.cluster_cpu_seconds is not None:
        update["used_cpu_seconds"] = max(job.cluster_cpu_seconds, run.used_cpu_seconds or 0.0)
    if job.cluster_memory_bytes is not None:
        update["used_gib_seconds"] = (run.used_gib_seconds or 0.0) + job.cluster_memory_bytes / _GIB * seconds
    if job.checkpoint_state_bytes is not None:
        update["state_gib_hours"] = (run.state_gib_hours or 0.0) + job.checkpoint_state_bytes / _GIB * seconds / 3600
    if job.checkpoint_uploaded_bytes is not None:
        uploaded = job.checkpoint_uploaded_bytes * job.completed_checkpoints
        update["checkpoint_bytes"] = max(uploaded, run.checkpoint_bytes or 0)
    return update


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
        # A healthy job clears a past failure, but not the report that the *new* spec is invalid, nor a fault
        # still seen in the cluster's pods (a TaskManager that cannot be scheduled next to a running job). A job
        # that kept failing over (S3 the pods could not reach) and now runs with a completed checkpoint is told
        # as a fault gone, like a pod's.
        if b.status.error_reason != ErrorReason.VALIDATION_ERROR and b.status.error_reason not in FAULT_REASONS:
            if b.status.error_reason == ErrorReason.JOB_RESTARTING:
                b.event("Normal", "FaultCleared", f"No longer seen: {headline(b.status.error or '')}")
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
