"""Statuses a controller would write, for tests of front ends (the Airflow provider) on a target nobody reconciles:
the test plays the controller and writes what it would have written for a job in a given state."""

from __future__ import annotations

from typing import Any

from flinkops.api.models import (
    DeploymentRecord,
    FlinkDeployment,
    FlinkDeploymentStatus,
    JobStatus,
    LifecycleState,
    Savepoint,
    SavepointInfo,
)
from flinkops.ports import ResourceKey
from flinkops.service.target import Target

JOB_ID = "a" * 32


def record(
    target: Target,
    name: str,
    *,
    state: str,
    lifecycle: LifecycleState,
    namespace: str = "default",
    error: str | None = None,
    result: dict[str, str] | None = None,
    closed: bool = True,
    savepoint: str | None = None,
) -> FlinkDeployment:
    """Write the status of FlinkDeployment ``namespace/name`` with its job in ``state`` (``closed=False``: FINISHED
    with its run record not closed yet, as in the moments before the controller has read the final figures;
    ``savepoint``: the location of the job's last savepoint)."""
    key = ResourceKey("FlinkDeployment", namespace, name)
    current = target.store().get(key)
    assert isinstance(current, FlinkDeployment), f"{key} is not there"
    generation = current.metadata.generation or 1
    ended = state in ("FINISHED", "FAILED") and closed
    run = DeploymentRecord(
        generation=generation,
        job_id=JOB_ID,
        started_at=1,
        result=(result or {}) if closed else {},
        end_state=state if ended else None,
        ended_at=2 if ended else None,
        job_duration_ms=1000,
    )
    status = FlinkDeploymentStatus(
        job_status=JobStatus(
            job_id=JOB_ID,
            state=state,  # type: ignore[arg-type]
            savepoint_info=SavepointInfo(last_savepoint=Savepoint(time_stamp=1, location=savepoint))
            if savepoint
            else None,
        ),
        observed_generation=generation,
        lifecycle_state=lifecycle,
        error=error,
        deployment_history=[run],
        cluster_info={"rest-url": "http://127.0.0.1:8081"},
    )
    written = target.store().update_status(current.model_copy(update={"status": status}))
    assert isinstance(written, FlinkDeployment)
    return written


class FakeTI:
    """A task instance's XCom pushes, kept (what an operator's ``execute`` pushes besides its return value)."""

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value
