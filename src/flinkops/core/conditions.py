"""The status Conditions (Ready, Progressing, Degraded, Running), derived from a status's recorded facts.

GitOps tools (Argo CD, Flux, ``kubectl wait --for=condition=Ready``) read health from ``status.conditions``
rather than from the reference operator's own fields, so every status flinkops writes carries them next to
``lifecycleState`` and ``jobStatus``:

* **Ready**: the job runs and its spec is stable (for a session cluster: its JobManager is ready);
* **Progressing**: a deployment, upgrade, rollback or deletion is under way;
* **Degraded**: the last pass recorded an error (the condition's reason is its ``errorReason``), or the resource
  FAILED or was ROLLED_BACK;
* **Running**: the job runs (for a session cluster: its JobManager is ready), whatever the spec's stability.

A condition's ``lastTransitionTime`` changes only when its status flips; ``observedGeneration`` is the
generation the status describes. Conditions of other types (another controller's) are kept as they are.

Called by: the planner (after every decision) and the controller (when it records a failure). Pure.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from flinkops.api.models import (
    Condition,
    FlinkDeploymentSpec,
    FlinkDeploymentStatus,
    FlinkSessionJobStatus,
    JobManagerDeploymentStatus,
    LifecycleState,
)
from flinkops.core.specs import load_spec

__all__ = ["OWN", "iso_time", "next_condition", "with_conditions"]

OWN = ("Ready", "Progressing", "Degraded", "Running")
L = LifecycleState
_PROGRESSING = {L.CREATED, L.DEPLOYED, L.UPGRADING, L.ROLLING_BACK, L.DELETING}

Status = FlinkDeploymentStatus | FlinkSessionJobStatus


def iso_time(now_ms: int) -> str:
    """``now_ms`` (epoch ms) as a condition's ``lastTransitionTime``."""
    return datetime.fromtimestamp(now_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _camel(state: LifecycleState | None) -> str:
    return "".join(part.title() for part in (state.value if state else "Unknown").split("_"))


def _session_cluster(status: Status) -> bool:
    """A FlinkDeployment whose last deployed spec has no job."""
    if not isinstance(status, FlinkDeploymentStatus):
        return False
    recorded = load_spec(status.reconciliation_status.last_reconciled_spec, FlinkDeploymentSpec)
    return recorded is None or recorded.job is None


def _wanted(status: Status) -> dict[str, tuple[bool, str, str]]:
    state = status.lifecycle_state
    reason = _camel(state)
    error = (status.error or "").strip().splitlines()[0][:500] if status.error else ""
    session = _session_cluster(status)
    jobmanager_ready = (
        isinstance(status, FlinkDeploymentStatus)
        and status.job_manager_deployment_status == JobManagerDeploymentStatus.READY
    )
    session_cluster_ready = session and jobmanager_ready
    ready = not error and (state == L.STABLE or (session_cluster_ready and state in (L.DEPLOYED, L.STABLE)))
    job = status.job_status.state
    ready_message = f"job {job}" if job else ("JobManager ready" if session_cluster_ready else "")
    degraded = bool(error) or state in (L.FAILED, L.ROLLED_BACK)
    return {
        "Ready": (
            ready,
            reason,
            ready_message if ready else (error or f"lifecycle state {state.value if state else '-'}"),
        ),
        "Progressing": (state in _PROGRESSING, reason, ""),
        # The reason says which kind of trouble (ImageUnavailable, CrashLoop, JobFailed, ...): the code of the error.
        "Degraded": (
            degraded,
            (status.error_reason.value if status.error_reason else "ReconcileError") if error else reason,
            error,
        ),
        "Running": (
            jobmanager_ready if session else job == "RUNNING",
            ("JobManagerReady" if jobmanager_ready else "JobManagerNotReady")
            if session
            else f"Job{(job or 'Unknown').title()}",
            "",
        ),
    }


def next_condition(
    old: Condition | None,
    type_: str,
    value: bool,
    reason: str,
    message: str,
    now_ms: int,
    observed_generation: int | None = None,
) -> Condition | None:
    """Condition ``type_`` with ``value``, ``reason`` and ``message``; None when ``old`` says all that already. Its
    ``lastTransitionTime`` changes only when its status flips."""
    text: Literal["True", "False"] = "True" if value else "False"
    wanted = (text, reason, message, observed_generation)
    if old is not None and (old.status, old.reason, old.message, old.observed_generation) == wanted:
        return None
    transition = old.last_transition_time if old is not None and old.status == text else iso_time(now_ms)
    return Condition(
        type=type_,
        status=text,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=observed_generation,
    )


def with_conditions(status: Status, now_ms: int) -> Status:
    """``status`` with Ready, Progressing and Degraded set from its facts (same object when nothing changed)."""
    current = {c.type: c for c in status.conditions}
    changed = False
    for type_, (value, reason, message) in _wanted(status).items():
        new = next_condition(current.get(type_), type_, value, reason, message, now_ms, status.observed_generation)
        if new is not None:
            current[type_] = new
            changed = True
    if not changed:
        return status
    ordered = [current[t] for t in OWN] + [c for t, c in current.items() if t not in OWN]
    return status.model_copy(update={"conditions": ordered})
