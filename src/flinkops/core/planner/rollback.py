"""Rolling back to the last stable spec: when it is due, the manual rollback, and the rollback itself.

A rollback is due (with ``kubernetes.operator.deployment.rollback.enabled``) when the job of a newly deployed
spec fails, or the spec does not become stable within the readiness timeout, while a different, running spec is
recorded as the last stable one. ``flinkops rollback`` applies the last stable spec again, which
``is_manual_rollback`` recognises. Either way ``roll_back`` redeploys ``lastStableSpec`` (ROLLING_BACK, then
ROLLED_BACK) from the state the failed spec's job left behind.

Called by: ``deployment.plan_deployment``. Pure: no I/O, no clock.
"""

from __future__ import annotations

from flinkops.api.durations import duration_ms_or
from flinkops.api.models import (
    FlinkDeploymentSpec,
    FlinkDeploymentStatus,
    JobState,
    ReconciliationState,
    ReconciliationStatus,
)
from flinkops.core.planner.restore import as_last_state, deploy_with_intent, keeps_state, restore_point
from flinkops.core.planner.snapshots import SAVEPOINT, clear_trigger
from flinkops.core.planner.types import Builder, Context, Observation, Plan, headline
from flinkops.core.specs import load_spec

__all__ = ["can_roll_back", "is_manual_rollback", "roll_back", "rollback_due"]

_ROLLBACK_ENABLED = "kubernetes.operator.deployment.rollback.enabled"
_READINESS_TIMEOUT = "kubernetes.operator.deployment.readiness.timeout"


def is_manual_rollback(
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


def can_roll_back(status: FlinkDeploymentStatus, spec: FlinkDeploymentSpec) -> bool:
    """Rollback is on, and a deployed spec that never became stable has a different, running stable one to go
    back to."""
    recon = status.reconciliation_status
    if spec.flink_configuration.get(_ROLLBACK_ENABLED, "false").strip().lower() != "true":
        return False
    if recon.state != ReconciliationState.DEPLOYED or not recon.last_stable_spec:
        return False
    if recon.last_stable_spec == recon.last_reconciled_spec:
        return False
    stable = load_spec(recon.last_stable_spec, FlinkDeploymentSpec)
    return stable is not None and (stable.job is None or stable.job.state == JobState.RUNNING)


def rollback_due(status: FlinkDeploymentStatus, spec: FlinkDeploymentSpec, obs: Observation, ctx: Context) -> str:
    """Why the deployed spec must be rolled back to the last stable one now ('' when it need not). A JobManager
    that keeps dying at start rolls back after its retry budget (``crashloop``), not here."""
    if not can_roll_back(status, spec):
        return ""
    config = spec.flink_configuration
    recon = status.reconciliation_status
    if obs.job is not None and obs.job.state == "FAILED":
        cause = headline(obs.job.error or "") or "no exception was reported"
        return f"job {obs.job.job_id} failed before the new spec became stable ({cause})"
    timeout = duration_ms_or(config, _READINESS_TIMEOUT, 300_000)
    since = recon.reconciliation_timestamp or ctx.now_ms
    if ctx.now_ms - since > timeout:
        return f"the new spec did not become stable within {config.get(_READINESS_TIMEOUT, '5 min')}"
    return ""


def roll_back(b: Builder, obs: Observation, ctx: Context, *, generation: int, why: str) -> Plan:
    """Deploy ``lastStableSpec`` again, with the state the failed spec's job left behind (last state)."""
    status: FlinkDeploymentStatus = b.status  # type: ignore[assignment]
    recon = status.reconciliation_status
    stable = load_spec(recon.last_stable_spec, FlinkDeploymentSpec)
    assert stable is not None
    restore, restore_why = restore_point(as_last_state(stable), status, obs)
    b.event("Warning", "Rollback", f"Rolling back to the last stable spec: {why}; restoring {restore_why}")
    b.status = clear_trigger(status, SAVEPOINT)
    deploy_with_intent(
        b, stable, generation, ctx, restore=restore, recorded=None,
        replace_cluster="rollback" if obs.cluster_exists else None, reason="rollback", stopped_at=ctx.now_ms,
        intent_state=ReconciliationState.ROLLING_BACK,
        final={"state": ReconciliationState.ROLLED_BACK, "last_reconciled_spec": recon.last_stable_spec},
        latest_state=keeps_state(stable),
    )  # fmt: skip
    b.summary = "rollback"
    return b.finish(now_ms=ctx.now_ms)
