"""Ready / Progressing / Degraded conditions, as GitOps tools read health from them."""

from __future__ import annotations

from flinkops.api.models import (
    Condition,
    FlinkDeploymentStatus,
    FlinkSessionJobStatus,
    JobManagerDeploymentStatus,
    JobStatus,
    LifecycleState,
)
from flinkops.core.conditions import with_conditions

T0 = 1_700_000_000_000


def conditions(status: FlinkDeploymentStatus) -> dict[str, tuple[str, str]]:
    """The three GitOps health conditions (Running is checked on its own)."""
    return {c.type: (c.status, c.reason) for c in status.conditions if c.type != "Running"}


def status(state: LifecycleState, *, error: str | None = None, job: str | None = "RUNNING") -> FlinkDeploymentStatus:
    return FlinkDeploymentStatus(
        lifecycle_state=state,
        error=error,
        observed_generation=3,
        job_status=JobStatus(state=job, job_id="a" * 32 if job else None),
    )


def test_stable_job_is_ready_and_neither_progressing_nor_degraded() -> None:
    got = conditions(with_conditions(status(LifecycleState.STABLE), T0))
    assert got == {"Ready": ("True", "Stable"), "Progressing": ("False", "Stable"), "Degraded": ("False", "Stable")}


def test_upgrading_is_progressing_and_not_ready() -> None:
    got = conditions(with_conditions(status(LifecycleState.UPGRADING), T0))
    assert got["Ready"][0] == "False" and got["Progressing"] == ("True", "Upgrading") and got["Degraded"][0] == "False"


def test_error_and_failed_states_are_degraded() -> None:
    errored = with_conditions(status(LifecycleState.DEPLOYED, error="PermanentError: bucket missing\ntrace"), T0)
    degraded = next(c for c in errored.conditions if c.type == "Degraded")
    assert (degraded.status, degraded.reason, degraded.message) == (
        "True",
        "ReconcileError",
        "PermanentError: bucket missing",
    )
    assert conditions(with_conditions(status(LifecycleState.FAILED), T0))["Degraded"] == ("True", "Failed")
    assert conditions(with_conditions(status(LifecycleState.ROLLED_BACK), T0))["Degraded"] == ("True", "RolledBack")


def test_session_cluster_is_ready_when_its_jobmanager_is() -> None:
    session = FlinkDeploymentStatus(
        lifecycle_state=LifecycleState.DEPLOYED,
        job_manager_deployment_status=JobManagerDeploymentStatus.READY,
    )
    assert conditions(with_conditions(session, T0))["Ready"][0] == "True"


def test_transition_time_changes_only_on_a_flip() -> None:
    first = with_conditions(status(LifecycleState.UPGRADING), T0)
    same = with_conditions(first, T0 + 60_000)
    assert same is first  # nothing changed: no new object, nothing to write
    stable = with_conditions(first.model_copy(update={"lifecycle_state": LifecycleState.STABLE}), T0 + 120_000)
    times = {c.type: c.last_transition_time for c in stable.conditions}
    before = {c.type: c.last_transition_time for c in first.conditions}
    assert times["Ready"] != before["Ready"]  # False -> True
    assert times["Degraded"] == before["Degraded"]  # stayed False; only its reason changed


def test_other_conditions_are_kept() -> None:
    first = with_conditions(status(LifecycleState.STABLE), T0)
    extra = Condition(type="ExternalCheck", status="True", reason="Probe")
    kept = with_conditions(
        first.model_copy(update={"conditions": [*first.conditions, extra], "error": "boom"}), T0 + 1000
    )
    assert "ExternalCheck" in {c.type for c in kept.conditions}


def test_running_follows_the_job_or_a_session_clusters_jobmanager() -> None:
    job = FlinkSessionJobStatus(lifecycle_state=LifecycleState.DEPLOYED, job_status=JobStatus(state="RUNNING"))
    running = next(c for c in with_conditions(job, T0).conditions if c.type == "Running")
    assert (running.status, running.reason) == ("True", "JobRunning")
    session = FlinkDeploymentStatus(
        lifecycle_state=LifecycleState.DEPLOYED, job_manager_deployment_status=JobManagerDeploymentStatus.READY
    )
    running = next(c for c in with_conditions(session, T0).conditions if c.type == "Running")
    assert (running.status, running.reason) == ("True", "JobManagerReady")
