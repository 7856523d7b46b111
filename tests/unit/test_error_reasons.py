"""The error reason codes themselves: each error class carries the reason a failed pass records, and a status
recorded before reasons existed gets one derived as it is read (the one migration). The decisions that read
the reason are tested with them: ``test_planner.py`` and ``test_lifecycle.py``."""

from __future__ import annotations

import pytest

from flinkops.api.models import FlinkDeploymentStatus, FlinkSessionJobStatus
from flinkops.errors import (
    ErrorReason,
    FlinkopsError,
    FlinkUnavailable,
    InvalidInput,
    ManualRestoreRequired,
    PermanentError,
)


def test_an_error_raised_in_a_pass_carries_its_reason() -> None:
    lost = ManualRestoreRequired("Manual restore required: job x completed checkpoints")
    assert isinstance(lost, PermanentError)
    assert lost.reason == ErrorReason.MANUAL_RESTORE_REQUIRED
    assert FlinkopsError.reason == PermanentError.reason == ErrorReason.RECONCILE_ERROR
    assert FlinkUnavailable("down").reason == ErrorReason.RECONCILE_ERROR
    assert InvalidInput([]).reason == ErrorReason.RECONCILE_ERROR  # only the planner's own check is a ValidationError


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("ValidationError: spec.job.parallelism: must be > 0", ErrorReason.VALIDATION_ERROR),
        ("Manual restore required: job x completed checkpoints, but ...", ErrorReason.MANUAL_RESTORE_REQUIRED),
        ("PermanentError: Manual restore required: job x ...", ErrorReason.MANUAL_RESTORE_REQUIRED),
        ("java.lang.IllegalStateException: boom", ErrorReason.RECONCILE_ERROR),
    ],
)
@pytest.mark.parametrize("model", [FlinkDeploymentStatus, FlinkSessionJobStatus])
def test_a_status_recorded_without_a_reason_gets_one_as_it_is_read(
    model: type[FlinkSessionJobStatus], error: str, reason: ErrorReason
) -> None:
    read = model.model_validate({"error": error})
    assert read.error == error and read.error_reason == reason


def test_a_recorded_reason_is_kept_and_no_error_has_none() -> None:
    kept = FlinkDeploymentStatus.model_validate({"error": "ValidationError: x", "errorReason": "JobFailed"})
    assert kept.error_reason == ErrorReason.JOB_FAILED
    assert kept.model_dump(by_alias=True, mode="json")["errorReason"] == "JobFailed"
    assert FlinkDeploymentStatus.model_validate({}).error_reason is None
