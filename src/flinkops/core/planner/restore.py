"""Starting a job again: where its state comes from, and the write-ahead deploy that starts it.

``restore_point`` decides what a stateful job restarts from (the running job's latest checkpoint, the newest
one in storage, the state it was last started from) and raises ``ManualRestoreRequired`` when the job is known
to have had state that is nowhere to be found: nothing is then started from empty state by accident.
``deploy_with_intent`` records the target (spec, phase, job id, restore point, a new run in the deployment
history) as the intent *before* the deploy action, so an interrupted pass can tell "already applied" from
"never happened".

The run records (``deploymentHistory``: ``add_run``, ``current_run``, ``mark_stopping``, ``stopped_run``) serve
both kinds: a session job's runs are recorded the same way.

Called by: ``deployment`` (first deploys, upgrades), ``rollback``, ``steady`` (recovering a lost JobManager)
and ``session`` (the run records). Pure: no I/O, no clock.
"""

from __future__ import annotations

from flinkops.api.models import (
    DeploymentRecord,
    FlinkDeploymentSpec,
    FlinkDeploymentStatus,
    JobManagerDeploymentStatus,
    ReconciliationState,
    RequestedResources,
    UpgradeMode,
)
from flinkops.core.cost import requested_resources
from flinkops.core.planner.prestart import delete_cluster, without_prepared
from flinkops.core.planner.types import (
    FAST,
    NO_ERROR,
    S_,
    Builder,
    Context,
    DeployCluster,
    Observation,
    Status,
    set_job,
    set_recon,
    stateful,
)
from flinkops.errors import ManualRestoreRequired

__all__ = [
    "add_run",
    "as_last_state",
    "cluster_ready",
    "current_run",
    "deploy_with_intent",
    "keeps_state",
    "mark_stopping",
    "restore_point",
    "stop_first",
    "stopped_run",
]

_HISTORY_LIMIT = 20  # deployment records kept in status


def keeps_state(spec: FlinkDeploymentSpec) -> bool:
    return spec.job is not None and stateful(spec.job.upgrade_mode)


def as_last_state(spec: FlinkDeploymentSpec) -> FlinkDeploymentSpec:
    if spec.job is None or spec.job.upgrade_mode == UpgradeMode.STATELESS:
        return spec
    return spec.model_copy(update={"job": spec.job.model_copy(update={"upgrade_mode": UpgradeMode.LAST_STATE})})


def restore_point(spec: FlinkDeploymentSpec, status: FlinkDeploymentStatus, obs: Observation) -> tuple[str | None, str]:
    """Where a stateful job's state will come from on its next start, and why. Raises
    ``ManualRestoreRequired`` when the job is known to have had state that is nowhere to be found."""
    if spec.job is None or not stateful(spec.job.upgrade_mode):
        return None, "stateless upgrade mode: the job starts with empty state"
    if obs.job is not None and obs.job.latest_checkpoint_path:
        return obs.job.latest_checkpoint_path, "latest completed checkpoint of the running job"
    if obs.latest_stored_checkpoint:
        return obs.latest_stored_checkpoint, "latest completed checkpoint found in checkpoint storage"
    run = current_run(status)
    if run is not None and run.checkpointed:
        if obs.rest_ready and obs.job is not None:
            # Flink's statistics lag behind storage: the job is stopped first, and the next pass reads its
            # newest checkpoint from storage (``stop_first``).
            return None, "the newest checkpoint the job leaves in storage when it stops"
        # The job got past where it started (``upgradeSavepointPath``): restarting from there would silently
        # drop what it did since.
        raise ManualRestoreRequired(f"job {run.job_id} completed checkpoints, but none is left in checkpoint storage")
    if status.job_status.upgrade_savepoint_path:
        return status.job_status.upgrade_savepoint_path, "the state the job was last started from"
    return None, "no checkpoint exists yet: the job starts with empty state"


def deploy_with_intent(
    b: Builder,
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
) -> bool:
    """Write-ahead, then deploy: record the target spec, the phase, the job id (a fresh one unless given) and
    the restore point, (stop the old cluster,) start the new one, and expect the final phase with a
    JobManager DEPLOYING. Returns True.

    With ``latest_state`` and a cluster to replace, the job is to start from the newest state of the job that
    runs now, which only storage can tell once that job has stopped: this pass stops it (``stop_first``) and
    the next one decides the restore point from what storage holds. Returns False then: nothing starts yet."""
    if latest_state and replace_cluster is not None and spec.job is not None:
        stop_first(
            b, generation, ctx, recorded=recorded, intent_state=intent_state, reason=reason, stop=replace_cluster
        )
        return False
    job_id = (job_id or ctx.fresh_job_id) if spec.job is not None else None
    update: dict[str, object] = {"state": intent_state}
    if recorded is not None:
        update.update(last_reconciled_spec=recorded, reconciliation_timestamp=ctx.now_ms)
    b.intent = set_recon(b.status, **update).model_copy(update={"observed_generation": generation, **NO_ERROR})
    asks = requested_resources(spec)  # recorded on the run: what its cluster costs, whatever later specs say
    if spec.job is not None:
        b.intent = set_job(b.intent, job_id=job_id, state="RECONCILING", upgrade_savepoint_path=restore)
        mode = spec.job.upgrade_mode.value
        b.intent = add_run(b.intent, generation, job_id, reason, mode, restore, stopped_at, ctx.now_ms, requested=asks)
    elif not _resumes_cluster_run(b.status):
        # A session cluster's run: one start of its JobManager, "running" once its REST API answers
        # (``cluster_ready``). A failed start is then counted as an application's (``crashloop``).
        b.intent = add_run(
            b.intent, generation, None, reason, None, None, stopped_at, ctx.now_ms, again=True, requested=asks
        )
    if replace_cluster is not None:
        b.actions.append(delete_cluster(b.intent, replace_cluster))
    b.actions.append(DeployCluster(spec=spec, generation=generation, job_id=job_id, restore_path=restore))
    final_update: dict[str, object] = {"state": ReconciliationState.DEPLOYED, **(final or {})}
    # The deploy promotes (or replaces) a prepared cluster: its marker goes with the final status.
    b.status = without_prepared(set_recon(b.intent, **final_update)).model_copy(
        update={"job_manager_deployment_status": JobManagerDeploymentStatus.DEPLOYING}
    )
    b.requeue_after = FAST
    return True


def stop_first(
    b: Builder,
    generation: int,
    ctx: Context,
    *,
    recorded: str | None,
    intent_state: ReconciliationState,
    reason: str,
    stop: str,
) -> None:
    """Stop the running job's cluster, recording first why (``reason``: upgrade, suspend, recover, rollback) on
    the job's run. The next pass (``stopped_run`` in ``_resume_upgrade``) finds the cluster gone, reads the
    stopped job's newest completed checkpoint from storage and starts (or suspends) the target from it."""
    status: FlinkDeploymentStatus = b.status  # type: ignore[assignment]
    update: dict[str, object] = {"state": intent_state}
    if recorded is not None:
        update.update(last_reconciled_spec=recorded, reconciliation_timestamp=ctx.now_ms)
    intent = set_recon(status, **update).model_copy(update={"observed_generation": generation, **NO_ERROR})
    b.intent = mark_stopping(intent, reason, ctx.now_ms)
    b.actions.append(delete_cluster(b.intent, stop))
    b.status = b.intent
    b.requeue_after = 0.0  # the job is down from here on: the next pass starts it as soon as the stop is done


def mark_stopping(status: S_, reason: str, now_ms: int) -> S_:
    """``status`` with its current run marked as stopped for ``reason`` (the write-ahead record of a stop)."""
    history = list(status.deployment_history)
    run = current_run(status)
    if run is None:
        # A status recorded before runs were kept: give the running job its record now.
        run = DeploymentRecord(generation=status.observed_generation or 1, job_id=status.job_status.job_id)
        history.append(run)
    history[-1] = run.model_copy(update={"stopped_for": reason, "stop_requested_at": now_ms})
    return status.model_copy(update={"deployment_history": history[-_HISTORY_LIMIT:]})


def stopped_run(status: Status) -> DeploymentRecord | None:
    """The current job's run when a pass stopped it to start another from its newest state, else None."""
    run = current_run(status)
    return run if run is not None and run.stopped_for else None


def add_run(
    status: S_,
    generation: int,
    job_id: str | None,
    reason: str,
    mode: str | None,
    restore: str | None,
    stopped_at: int | None,
    now_ms: int,
    *,
    again: bool = False,
    requested: RequestedResources | None = None,
) -> S_:
    """``status`` with a new run of ``job_id`` recorded as the current one (unless it already is; with ``again``
    a new run even with the same id: a session cluster's runs have no job id, the caller tells them apart)."""
    history = list(status.deployment_history)
    if history and history[-1].job_id == job_id and not again:
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
            requested=requested,
        )
    )
    return status.model_copy(update={"deployment_history": history[-_HISTORY_LIMIT:]})


def _resumes_cluster_run(status: Status) -> bool:
    """A session cluster's deploy planned again after an interruption: the deploy was recorded as the intent
    (UPGRADING or ROLLING_BACK) and its run never got further (not running, not ended, not being stopped)."""
    run = current_run(status)
    return (
        run is not None
        and run.job_id is None
        and status.reconciliation_status.state in (ReconciliationState.UPGRADING, ReconciliationState.ROLLING_BACK)
        and run.running_at is None
        and run.end_state is None
        and run.stopped_for is None
    )


def cluster_ready(status: S_, now_ms: int) -> S_:
    """``status`` with its current session cluster run marked running (its REST API answers): a JobManager that
    dies from now on is recovered, not counted as a failed start."""
    run = current_run(status)
    if run is None or run.job_id is not None or run.running_at is not None:
        return status
    history = [*status.deployment_history[:-1], run.model_copy(update={"running_at": now_ms})]
    return status.model_copy(update={"deployment_history": history})


def current_run(status: Status) -> DeploymentRecord | None:
    history = status.deployment_history
    if history and history[-1].job_id == status.job_status.job_id:
        return history[-1]
    return None
