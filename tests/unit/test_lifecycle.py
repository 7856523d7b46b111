"""Lifecycle derivation and the transition table, pair by pair."""

from __future__ import annotations

import itertools

import pytest

from flinkops.api.models import (
    FlinkDeploymentSpec,
    FlinkDeploymentStatus,
    JobManagerDeploymentStatus,
    JobSpec,
    JobState,
    JobStatus,
    LifecycleState,
    ReconciliationState,
    ReconciliationStatus,
)
from flinkops.core.lifecycle import ALLOWED_TRANSITIONS, derive_lifecycle, is_allowed
from flinkops.core.specs import dump_reconciled_spec
from flinkops.errors import ErrorReason

L = LifecycleState
SPEC = FlinkDeploymentSpec(job=JobSpec(jar_uri="local:///job.jar", parallelism=1))
RECORDED = dump_reconciled_spec(SPEC, first_deployment=True)
SUSPENDED = dump_reconciled_spec(
    SPEC.model_copy(update={"job": SPEC.job.model_copy(update={"state": JobState.SUSPENDED})}),  # type: ignore[union-attr]
    first_deployment=False,
)


def status(**kw: object) -> FlinkDeploymentStatus:
    recon = ReconciliationStatus(
        last_reconciled_spec=kw.pop("reconciled", RECORDED),  # type: ignore[arg-type]
        last_stable_spec=kw.pop("stable", None),  # type: ignore[arg-type]
        state=kw.pop("recon_state", ReconciliationState.DEPLOYED),  # type: ignore[arg-type]
    )
    job = JobStatus(state=kw.pop("job_state", None))  # type: ignore[arg-type]
    return FlinkDeploymentStatus(reconciliation_status=recon, job_status=job, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("st", "expected"),
    [
        (FlinkDeploymentStatus(), L.CREATED),
        (FlinkDeploymentStatus(error="boom"), L.FAILED),
        (status(recon_state=ReconciliationState.UPGRADING), L.UPGRADING),
        (status(recon_state=ReconciliationState.ROLLING_BACK), L.ROLLING_BACK),
        (status(reconciled=SUSPENDED), L.SUSPENDED),
        (status(job_state="FAILED"), L.FAILED),
        (status(job_manager_deployment_status=JobManagerDeploymentStatus.ERROR), L.FAILED),
        (status(recon_state=ReconciliationState.ROLLED_BACK), L.ROLLED_BACK),
        (status(stable=RECORDED, job_state="RUNNING"), L.STABLE),
        (status(job_state="RUNNING"), L.DEPLOYED),
    ],
)
def test_lifecycle_is_derived_from_recorded_facts(st: FlinkDeploymentStatus, expected: LifecycleState) -> None:
    assert derive_lifecycle(st) == expected


def test_deleting_overrides_everything() -> None:
    assert derive_lifecycle(status(stable=RECORDED), deleting=True) == L.DELETING


EXPECTED_EDGES = {
    (L.CREATED, L.UPGRADING), (L.CREATED, L.DEPLOYED), (L.CREATED, L.SUSPENDED), (L.CREATED, L.FAILED),
    (L.CREATED, L.DELETING),
    (L.UPGRADING, L.DEPLOYED), (L.UPGRADING, L.STABLE), (L.UPGRADING, L.SUSPENDED), (L.UPGRADING, L.FAILED),
    (L.UPGRADING, L.DELETING), (L.UPGRADING, L.ROLLING_BACK),
    (L.DEPLOYED, L.STABLE), (L.DEPLOYED, L.UPGRADING), (L.DEPLOYED, L.SUSPENDED), (L.DEPLOYED, L.FAILED),
    (L.DEPLOYED, L.ROLLING_BACK), (L.DEPLOYED, L.DELETING),
    (L.STABLE, L.DEPLOYED), (L.STABLE, L.UPGRADING), (L.STABLE, L.SUSPENDED), (L.STABLE, L.FAILED),
    (L.STABLE, L.DELETING),
    (L.SUSPENDED, L.UPGRADING), (L.SUSPENDED, L.DEPLOYED), (L.SUSPENDED, L.FAILED), (L.SUSPENDED, L.DELETING),
    (L.ROLLING_BACK, L.ROLLED_BACK), (L.ROLLING_BACK, L.UPGRADING), (L.ROLLING_BACK, L.FAILED),
    (L.ROLLING_BACK, L.DELETING),
    (L.ROLLED_BACK, L.UPGRADING), (L.ROLLED_BACK, L.DEPLOYED), (L.ROLLED_BACK, L.SUSPENDED),
    (L.ROLLED_BACK, L.FAILED), (L.ROLLED_BACK, L.DELETING),
    (L.FAILED, L.UPGRADING), (L.FAILED, L.DEPLOYED), (L.FAILED, L.STABLE), (L.FAILED, L.SUSPENDED),
    (L.FAILED, L.ROLLING_BACK), (L.FAILED, L.DELETING),
    (L.DELETING, L.DELETED),
}  # fmt: skip


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(list(L), list(L))))
def test_every_transition_pair(src: LifecycleState, dst: LifecycleState) -> None:
    expected = src == dst or (src, dst) in EXPECTED_EDGES
    assert is_allowed(src, dst) is expected


def test_deleted_is_final() -> None:
    assert ALLOWED_TRANSITIONS[L.DELETED] == frozenset()


def test_manual_restore_failed_follows_the_reason_not_the_text() -> None:
    missing = JobManagerDeploymentStatus.MISSING
    reason = ErrorReason.MANUAL_RESTORE_REQUIRED
    lost = status(job_manager_deployment_status=missing, error="state lost", error_reason=reason)
    assert derive_lifecycle(lost) == L.FAILED
    text = "Manual restore required: job x completed checkpoints"
    other = status(job_manager_deployment_status=missing, error=text, error_reason=ErrorReason.RECONCILE_ERROR)
    assert derive_lifecycle(other) == L.DEPLOYED


def test_a_manual_restore_recorded_before_reasons_existed_is_still_failed() -> None:
    recorded = status(job_manager_deployment_status=JobManagerDeploymentStatus.MISSING, error="x")
    old = recorded.model_dump(by_alias=True, mode="json", exclude={"error_reason"})  # as an earlier version wrote it
    old["error"] = "PermanentError: Manual restore required: job x ...; nothing was started"
    assert derive_lifecycle(FlinkDeploymentStatus.model_validate(old)) == L.FAILED
