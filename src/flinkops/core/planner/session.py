"""Planning a FlinkSessionJob: ``plan_session_job`` submits, resubmits, cancels and watches a job on a session
cluster that a FlinkDeployment without a job runs.

A submission is written ahead: the new job id is recorded (UPGRADING) before the job exists, so a controller
that dies mid-submission finds the job by that id instead of submitting it twice. Any spec change above IGNORE
cancels the running job and submits the new spec, from the job's latest checkpoint unless the upgrade mode is
stateless. A running job is watched like a deployment's job (``steady.observe_job``).

Called by: ``flinkops.core.planner`` (re-exported) for the controller. Pure: no I/O, no clock.
"""

from __future__ import annotations

from flinkops.api.models import (
    DiffType,
    FlinkSessionJob,
    FlinkSessionJobSpec,
    FlinkSessionJobStatus,
    JobState,
    ReconciliationState,
    UpgradeMode,
)
from flinkops.core.diff import classify
from flinkops.core.planner.deletion import plan_deletion
from flinkops.core.planner.snapshots import Requests
from flinkops.core.planner.steady import observe_job
from flinkops.core.planner.types import (
    FAST,
    NO_ERROR,
    TERMINAL_JOB_STATES,
    Builder,
    CancelSessionJob,
    Context,
    Observation,
    Plan,
    Status,
    SubmitSessionJob,
    record_validation,
    set_job,
    set_recon,
)
from flinkops.core.specs import dump_reconciled_spec, load_spec

__all__ = ["plan_session_job"]


def _submit_with_intent(
    b: Builder, base: Status, spec: FlinkSessionJobSpec, rest_url: str, ctx: Context, restore: str | None
) -> str:
    """Write-ahead, then submit: the new job id is recorded (UPGRADING) before the job exists, so a
    controller that dies mid-submission finds the job by that id instead of submitting it twice."""
    new_id = ctx.fresh_job_id
    b.intent = set_job(
        set_recon(base, state=ReconciliationState.UPGRADING),
        job_id=new_id,
        state="RECONCILING",
        upgrade_savepoint_path=restore,
    )
    b.actions.append(SubmitSessionJob(spec=spec, job_id=new_id, rest_url=rest_url, restore_path=restore))
    b.status = set_recon(b.intent, state=ReconciliationState.DEPLOYED)
    b.requeue_after = FAST
    return new_id


def plan_session_job(resource: FlinkSessionJob, obs: Observation, ctx: Context) -> Plan:
    status: FlinkSessionJobStatus = resource.status or FlinkSessionJobStatus()
    generation = resource.metadata.generation or 1
    b = Builder(status=status)
    job_id = status.job_status.job_id
    running_job = obs.job is not None and obs.job.state not in TERMINAL_JOB_STATES

    if resource.metadata.deletion_timestamp:
        cancel = None
        if running_job and job_id and ctx.session_rest_url:
            cancel = CancelSessionJob(job_id=job_id, rest_url=ctx.session_rest_url)
        return plan_deletion(b, ctx, stop=cancel, message="Deleting FlinkSessionJob")

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
        b.summary = f"waiting for session cluster {spec.deployment_name} to be ready"
        b.requeue_after = 2.0
        return b.finish(now_ms=ctx.now_ms)
    rest = ctx.session_rest_url
    wants_running = spec.job.state == JobState.RUNNING
    recon = status.reconciliation_status

    if last is not None and recon.state == ReconciliationState.UPGRADING:
        # Interrupted submission: the job id was recorded before submitting, so look for it.
        if obs.job is not None or not wants_running:
            b.status = set_recon(status, state=ReconciliationState.DEPLOYED)
            b.summary = "the interrupted submission had gone through: adopting the job"
            b.requeue_after = FAST
            return b.finish(now_ms=ctx.now_ms)
        assert job_id is not None
        b.actions.append(
            SubmitSessionJob(
                spec=last, job_id=job_id, rest_url=rest, restore_path=status.job_status.upgrade_savepoint_path
            )
        )
        b.status = set_recon(status, state=ReconciliationState.DEPLOYED)
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
        base = set_recon(
            status,
            last_reconciled_spec=recorded,
            reconciliation_timestamp=ctx.now_ms,
        ).model_copy(update={"observed_generation": generation, **NO_ERROR})
        if running_job and job_id:
            b.actions.append(CancelSessionJob(job_id=job_id, rest_url=rest))
        if not wants_running:
            b.status = set_job(
                set_recon(base, state=ReconciliationState.DEPLOYED, last_stable_spec=recorded),
                state="SUSPENDED",
                upgrade_savepoint_path=restore,
            )
            b.intent = set_recon(b.status, state=ReconciliationState.UPGRADING) if b.actions else None
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
    return observe_job(b, spec.flink_configuration, obs, ctx, Requests())
