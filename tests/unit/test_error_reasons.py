"""Decisions follow ``status.errorReason``, never the error text: validation complaints, manual restore, job
failures; and the one migration that derives a reason for statuses recorded before reasons existed."""

from __future__ import annotations

import pytest

from flinkops.api.models import (
    FlinkDeployment,
    FlinkDeploymentSpec,
    FlinkDeploymentStatus,
    JobManagerDeploymentStatus,
    JobSpec,
    JobStatus,
    LifecycleState,
    ObjectMeta,
    ReconciliationState,
    ReconciliationStatus,
    UpgradeMode,
)
from flinkops.core.lifecycle import derive_lifecycle
from flinkops.core.planner import Context, JobObservation, Observation, Plan, plan_deployment
from flinkops.core.specs import dump_reconciled_spec
from flinkops.errors import (
    ErrorReason,
    FlinkopsError,
    FlinkUnavailable,
    InvalidInput,
    ManualRestoreRequired,
    PermanentError,
)

NOW = 1_000_000
JOB = "a" * 32
LOOKS_LIKE_VALIDATION = "ValidationError: spec.job.parallelism: must be > 0"


def deployment() -> FlinkDeployment:
    spec = FlinkDeploymentSpec(
        flink_configuration={"execution.checkpointing.interval": "10 s"},
        job=JobSpec(jar_uri="local:///job.jar", parallelism=1, upgrade_mode=UpgradeMode.LAST_STATE),
    )
    return FlinkDeployment(metadata=ObjectMeta(name="fraud", generation=1), spec=spec)


def ctx(job_id: str = JOB, **kw: object) -> Context:
    return Context(now_ms=NOW, fresh_job_id=job_id, **kw)  # type: ignore[arg-type]


def running(checkpoints: int = 1) -> Observation:
    return Observation(
        cluster_exists=True,
        cluster_generation=1,
        jobmanager_alive=True,
        rest_ready=True,
        rest_url="http://127.0.0.1:1",
        taskmanagers_alive=1,
        taskmanagers_expected=1,
        job=JobObservation(
            job_id=JOB,
            state="RUNNING",
            start_time=0,
            running_since=0,
            completed_checkpoints=checkpoints,
            latest_checkpoint_path="file:///ck/chk-1" if checkpoints else None,
        ),
    )


def step(r: FlinkDeployment, plan: Plan) -> FlinkDeployment:
    return r.model_copy(update={"status": plan.status})


def deployed() -> FlinkDeployment:
    """Deployed, the job running but not stable yet (no checkpoint completed)."""
    r = deployment()
    r = step(r, plan_deployment(r, Observation(), ctx()))
    return step(r, plan_deployment(r, running(checkpoints=0), ctx()))


def with_error(r: FlinkDeployment, message: str, reason: ErrorReason) -> FlinkDeployment:
    assert r.status is not None
    return r.model_copy(update={"status": r.status.model_copy(update={"error": message, "error_reason": reason})})


# ------------------------------------------------------------------ validation complaints


def test_an_invalid_spec_is_recorded_with_its_reason() -> None:
    plan = plan_deployment(deployed(), running(), ctx(valid=False, validation_error="spec.job.parallelism: bad"))
    assert plan.status.error == "ValidationError: spec.job.parallelism: bad"
    assert plan.status.error_reason == ErrorReason.VALIDATION_ERROR


def test_text_that_looks_like_a_validation_error_is_not_cleared_as_one() -> None:
    r = with_error(deployed(), LOOKS_LIKE_VALIDATION, ErrorReason.RECONCILE_ERROR)
    plan = plan_deployment(r, running(checkpoints=0), ctx())  # valid spec, job not stable yet
    assert plan.status.error == LOOKS_LIKE_VALIDATION
    assert plan.status.error_reason == ErrorReason.RECONCILE_ERROR


def test_a_valid_spec_clears_a_validation_complaint_whatever_its_text() -> None:
    r = with_error(deployed(), "the spec was invalid", ErrorReason.VALIDATION_ERROR)
    plan = plan_deployment(r, running(checkpoints=0), ctx())
    assert plan.status.error is None and plan.status.error_reason is None


def test_stability_clears_a_past_failure_whose_text_looks_like_a_validation_error() -> None:
    r = with_error(deployed(), LOOKS_LIKE_VALIDATION, ErrorReason.JOB_FAILED)
    plan = plan_deployment(r, running(checkpoints=1), ctx())
    assert plan.status.lifecycle_state == LifecycleState.STABLE
    assert plan.status.error is None and plan.status.error_reason is None


def test_stability_keeps_the_report_that_the_new_spec_is_invalid() -> None:
    invalid = ctx(valid=False, validation_error="spec.job.parallelism: bad")
    plan = plan_deployment(deployed(), running(checkpoints=1), invalid)
    assert plan.status.lifecycle_state == LifecycleState.STABLE
    assert plan.status.error_reason == ErrorReason.VALIDATION_ERROR


# ------------------------------------------------------------------ job failures and deploys


def test_a_failed_job_is_recorded_with_its_reason_and_a_deploy_clears_both() -> None:
    failed = Observation(**{**running().__dict__, "job": JobObservation(job_id=JOB, state="FAILED", error="boom")})
    plan = plan_deployment(deployed(), failed, ctx())
    assert (plan.status.error, plan.status.error_reason) == ("boom", ErrorReason.JOB_FAILED)
    r = step(deployed(), plan)
    assert r.spec.job is not None
    spec = r.spec.model_copy(update={"job": r.spec.job.model_copy(update={"args": ["x"]})})
    redeploy = plan_deployment(r.model_copy(update={"spec": spec}), Observation(), ctx(job_id="b" * 32))
    assert redeploy.status.error is None and redeploy.status.error_reason is None


# ------------------------------------------------------------------ manual restore


def status(error: str, reason: ErrorReason | None) -> FlinkDeploymentStatus:
    recorded = dump_reconciled_spec(deployment().spec, first_deployment=True)
    return FlinkDeploymentStatus(
        reconciliation_status=ReconciliationStatus(last_reconciled_spec=recorded, state=ReconciliationState.DEPLOYED),
        job_status=JobStatus(state="RECONCILING"),
        job_manager_deployment_status=JobManagerDeploymentStatus.MISSING,
        error=error,
        error_reason=reason,
    )


def test_manual_restore_failed_follows_the_reason_not_the_text() -> None:
    assert derive_lifecycle(status("lost state", ErrorReason.MANUAL_RESTORE_REQUIRED)) == LifecycleState.FAILED
    text = "Manual restore required: job x completed checkpoints"
    assert derive_lifecycle(status(text, ErrorReason.RECONCILE_ERROR)) == LifecycleState.DEPLOYED


def test_the_planner_records_a_manual_restore_with_its_reason() -> None:
    r = deployment()
    r = step(r, plan_deployment(r, Observation(), ctx()))
    r = step(r, plan_deployment(r, running(checkpoints=1), ctx()))  # the run completed a checkpoint
    plan = plan_deployment(r, Observation(cluster_exists=True, cluster_generation=1), ctx(job_id="b" * 32))
    assert plan.actions == ()
    assert plan.status.error_reason == ErrorReason.MANUAL_RESTORE_REQUIRED
    assert plan.status.error is not None and plan.status.error.startswith("Manual restore required")
    assert plan.status.lifecycle_state == LifecycleState.FAILED


# ------------------------------------------------------------------ errors raised in a pass


def test_an_error_raised_in_a_pass_carries_its_reason() -> None:
    lost = ManualRestoreRequired("Manual restore required: job x completed checkpoints")
    assert isinstance(lost, PermanentError)
    assert lost.reason == ErrorReason.MANUAL_RESTORE_REQUIRED
    assert FlinkopsError.reason == PermanentError.reason == ErrorReason.RECONCILE_ERROR
    assert FlinkUnavailable("down").reason == ErrorReason.RECONCILE_ERROR
    assert InvalidInput([]).reason == ErrorReason.RECONCILE_ERROR  # only the planner's own check is a ValidationError


# ------------------------------------------------------------------ statuses of earlier versions


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("ValidationError: spec.job.parallelism: must be > 0", ErrorReason.VALIDATION_ERROR),
        ("Manual restore required: job x completed checkpoints, but ...", ErrorReason.MANUAL_RESTORE_REQUIRED),
        (
            "PermanentError: Manual restore required: job x ...; nothing was started",
            ErrorReason.MANUAL_RESTORE_REQUIRED,
        ),
        ("java.lang.IllegalStateException: boom", ErrorReason.RECONCILE_ERROR),
    ],
)
def test_a_status_recorded_without_a_reason_gets_one_as_it_is_read(error: str, reason: ErrorReason) -> None:
    read = FlinkDeploymentStatus.model_validate({"error": error, "jobManagerDeploymentStatus": "MISSING"})
    assert read.error == error and read.error_reason == reason


def test_a_recorded_reason_is_kept_and_no_error_has_none() -> None:
    kept = FlinkDeploymentStatus.model_validate({"error": LOOKS_LIKE_VALIDATION, "errorReason": "JobFailed"})
    assert kept.error_reason == ErrorReason.JOB_FAILED
    assert FlinkDeploymentStatus.model_validate({}).error_reason is None
    assert kept.model_dump(by_alias=True, mode="json")["errorReason"] == "JobFailed"


def test_an_upgraded_controller_still_sees_an_old_manual_restore_as_failed() -> None:
    recorded = status("PermanentError: Manual restore required: job x ...", ErrorReason.RECONCILE_ERROR)
    old = recorded.model_dump(by_alias=True, mode="json", exclude={"error_reason"})  # as an earlier version wrote it
    assert "errorReason" not in old
    assert derive_lifecycle(FlinkDeploymentStatus.model_validate(old)) == LifecycleState.FAILED
