"""Lifecycle state, derived from recorded facts, and the table of allowed transitions.

``derive_lifecycle`` is the only place that decides which ``LifecycleState`` a status is in; the status field
``lifecycleState`` is just its cached output for readers (printer columns, ``get``). The transitions are data
(``ALLOWED_TRANSITIONS``) so tests check them pair by pair and the controller can refuse an impossible jump.

Called by: the planner (after every decision) and the CLI (``describe``). Pure: no I/O.
"""

from __future__ import annotations

from flinkops.api.models import (
    FlinkDeploymentStatus,
    FlinkSessionJobStatus,
    JobManagerDeploymentStatus,
    JobState,
    LifecycleState,
    ReconciliationState,
)
from flinkops.core.specs import parse_reconciled_spec
from flinkops.errors import ErrorReason

__all__ = ["ALLOWED_TRANSITIONS", "MANUAL_RESTORE", "TERMINAL_STATES", "derive_lifecycle", "is_allowed"]

#: How the message of a ``ManualRestoreRequired`` error begins (for people: the decision reads the reason). With
#: that reason the deployment is FAILED until someone points it at its state (``flinkops restore``) or chooses
#: to start empty.
MANUAL_RESTORE = "Manual restore required"

L = LifecycleState

# From -> the states a single reconcile pass may move to. Staying in the same state is always allowed.
ALLOWED_TRANSITIONS: dict[LifecycleState, frozenset[LifecycleState]] = {
    L.CREATED: frozenset({L.UPGRADING, L.DEPLOYED, L.SUSPENDED, L.FAILED, L.DELETING}),
    L.UPGRADING: frozenset({L.DEPLOYED, L.STABLE, L.SUSPENDED, L.FAILED, L.DELETING, L.ROLLING_BACK}),
    L.DEPLOYED: frozenset({L.STABLE, L.UPGRADING, L.SUSPENDED, L.FAILED, L.ROLLING_BACK, L.DELETING}),
    L.STABLE: frozenset({L.DEPLOYED, L.UPGRADING, L.SUSPENDED, L.FAILED, L.DELETING}),
    L.SUSPENDED: frozenset({L.UPGRADING, L.DEPLOYED, L.FAILED, L.DELETING}),
    L.ROLLING_BACK: frozenset({L.ROLLED_BACK, L.UPGRADING, L.FAILED, L.DELETING}),
    L.ROLLED_BACK: frozenset({L.UPGRADING, L.DEPLOYED, L.SUSPENDED, L.FAILED, L.DELETING}),
    L.FAILED: frozenset({L.UPGRADING, L.DEPLOYED, L.STABLE, L.SUSPENDED, L.ROLLING_BACK, L.DELETING}),
    L.DELETING: frozenset({L.DELETED}),
    L.DELETED: frozenset(),
}

TERMINAL_STATES = frozenset({L.SUSPENDED, L.STABLE, L.ROLLED_BACK, L.FAILED, L.DELETED})


def is_allowed(current: LifecycleState, target: LifecycleState) -> bool:
    return current == target or target in ALLOWED_TRANSITIONS[current]


def derive_lifecycle(
    status: FlinkDeploymentStatus | FlinkSessionJobStatus, *, deleting: bool = False
) -> LifecycleState:
    """The lifecycle state implied by a status (the reference operator's derivation, plus DELETING)."""
    if deleting:
        return L.DELETING
    recon = status.reconciliation_status
    if recon.last_reconciled_spec is None:
        return L.FAILED if status.error else L.CREATED
    if _manual_restore_required(status):
        return L.FAILED  # even mid-upgrade: the old job is stopped and nothing starts until someone decides
    if recon.state == ReconciliationState.UPGRADING:
        return L.UPGRADING
    if recon.state == ReconciliationState.ROLLING_BACK:
        return L.ROLLING_BACK
    reconciled = parse_reconciled_spec(recon.last_reconciled_spec)
    job = reconciled.get("job")
    if isinstance(job, dict) and job.get("state") == JobState.SUSPENDED.value:
        return L.SUSPENDED
    if status.job_status.state == "FAILED":
        return L.FAILED
    if (
        isinstance(status, FlinkDeploymentStatus)
        and status.job_manager_deployment_status == JobManagerDeploymentStatus.ERROR
    ):
        return L.FAILED
    if recon.state == ReconciliationState.ROLLED_BACK:
        return L.ROLLED_BACK
    if recon.last_stable_spec is not None and recon.last_stable_spec == recon.last_reconciled_spec:
        return L.STABLE
    return L.DEPLOYED


def _manual_restore_required(status: FlinkDeploymentStatus | FlinkSessionJobStatus) -> bool:
    """Nothing runs and nothing starts until someone points the job at its state (or chooses stateless)."""
    if status.error_reason != ErrorReason.MANUAL_RESTORE_REQUIRED:
        return False
    if isinstance(status, FlinkDeploymentStatus):
        return status.job_manager_deployment_status == JobManagerDeploymentStatus.MISSING
    return True
