"""What a job came to: the answer a scheduler waits for (an Airflow task, a CI step), decided from the recorded
status and run history, never from whether a JobManager is up.

``outcome(resource, wait_until, generation)`` is None while the answer is not known yet, else a ``JobOutcome``:

* ``finished``: the job of this generation (or a later one) reached FINISHED. Its run record, kept in
  ``status.deploymentHistory`` after the cluster is released, gives the job id, duration and accumulators, so an
  answer asked for late (hours after the end) is the same answer.
* ``failed``: the job FAILED (with Flink's root-cause exception, which the controller records in
  ``status.error``), the resource FAILED (a spec flinkops refused, a crash loop that used its retries, a restore
  that needs a decision), or the resource is gone (deleted while someone waited for it).
* ``stable`` (only when waiting for ``stable``): the spec of this generation runs and has been judged STABLE, or
  ``suspended`` when the spec asks for a suspended job and it is.

Pure: no I/O, no clock. Called by ``flinkops_airflow`` (trigger, operator, sensor) and Python callers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from flinkops.api.models import (
    DeploymentRecord,
    FlinkDeployment,
    FlinkDeploymentStatus,
    FlinkSessionJob,
    LifecycleState,
)

__all__ = ["WAIT_UNTIL", "JobOutcome", "WaitUntil", "outcome", "wait_until_of"]

WaitUntil = Literal["finished", "stable"]
WAIT_UNTIL: tuple[WaitUntil, ...] = ("finished", "stable")


def wait_until_of(value: str, owner: str = "") -> WaitUntil:
    """``value`` as a ``WaitUntil``; ``ValueError`` naming ``owner`` and the choices otherwise."""
    for choice in WAIT_UNTIL:
        if value == choice:
            return choice
    raise ValueError(f"{owner + ': ' if owner else ''}wait_until must be one of {WAIT_UNTIL}, not {value!r}")


Resource = FlinkDeployment | FlinkSessionJob
L = LifecycleState


@dataclass(frozen=True)
class JobOutcome:
    """How a wait ended; ``as_dict`` is JSON (an Airflow XCom, a trigger event)."""

    state: Literal["finished", "failed", "stable", "suspended"]
    kind: str
    namespace: str
    name: str
    lifecycle: str | None = None
    job_id: str | None = None
    job_state: str | None = None
    error: str | None = None
    started_at_ms: int | None = None
    ended_at_ms: int | None = None
    duration_ms: int | None = None
    accumulators: dict[str, str] = field(default_factory=dict)
    last_savepoint: str | None = None
    rest_url: str | None = None
    runs: int = 0

    @property
    def succeeded(self) -> bool:
        return self.state != "failed"

    @property
    def cause(self) -> str:
        """The line that says why, for a headline: the innermost ``Caused by:`` of a Java stack trace (Flink's
        outer exception is "Recovery is suppressed by ..."), else the error's first line."""
        lines = (self.error or "").strip().splitlines()
        causes = [line.strip().removeprefix("Caused by: ") for line in lines if line.strip().startswith("Caused by: ")]
        return causes[-1] if causes else (lines[0].strip() if lines else "")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobOutcome:
        return cls(**data)


def gone(kind: str, namespace: str, name: str) -> JobOutcome:
    return JobOutcome(
        "failed", kind, namespace, name, error=f"{kind} {namespace}/{name} was deleted before its job ended"
    )


def outcome(
    resource: Resource | None,
    wait_until: WaitUntil,
    generation: int,
    *,
    kind: str = "",
    namespace: str = "",
    name: str = "",
    closed: bool = True,
) -> JobOutcome | None:
    """The outcome of ``resource`` (None: it is gone; ``kind``/``namespace``/``name`` then say what it was)
    for the spec of ``generation`` or later, or None while the controller has not decided it yet.

    ``closed=False`` answers ``finished`` as soon as Flink said FINISHED, before the run record is closed (its
    accumulators and duration follow within a few seconds): a waiter with its own start-up latency (an Airflow
    task resuming) learns it at once and reads the closed record when it is ready."""
    if resource is None:
        return gone(kind, namespace, name)
    status = resource.status
    if status is None or (status.observed_generation or 0) < generation:
        return None
    run = _run_of(status.deployment_history, status.job_status.job_id, generation)
    job_state = status.job_status.state
    base = _base(resource, run)
    if status.lifecycle_state == L.FAILED or job_state == "FAILED":
        return JobOutcome("failed", **base, error=status.error or f"the job is {job_state or 'FAILED'}")
    recorded = run is not None and (run.end_state is not None or isinstance(resource, FlinkSessionJob) or not closed)
    if job_state == "FINISHED" and recorded:
        # An application cluster's run record is closed (end time, duration, accumulators) once Flink's REST cache
        # holds the final figures, a few seconds after FINISHED; a session job's cluster outlives it, unrecorded.
        return JobOutcome("finished", **base)
    if wait_until == "stable":
        if status.lifecycle_state == L.STABLE and job_state in ("RUNNING", "FINISHED"):
            return JobOutcome("stable", **base)
        if status.lifecycle_state == L.SUSPENDED:
            return JobOutcome("suspended", **base)
    elif status.lifecycle_state == L.SUSPENDED:
        # Waiting for the end of a job that was suspended: it will not end on its own.
        return JobOutcome("failed", **base, error="the job was suspended before it finished")
    return None


def _run_of(history: list[DeploymentRecord], job_id: str | None, generation: int) -> DeploymentRecord | None:
    """The run of the current job, if it belongs to ``generation`` or later. Called once the controller has
    reconciled ``generation``: a spec change that starts no run of its own (a savepoint or checkpoint asked for
    through its trigger nonce) leaves the newest run the job of that generation too, as long as the controller
    did not stop it for another run (``stopped_for``: an upgrade's stop-with-savepoint ends the job FINISHED, which
    is no answer for the new spec)."""
    for index, record in enumerate(reversed(history)):
        if record.job_id == job_id and job_id is not None:
            if record.generation >= generation:
                return record
            return record if index == 0 and record.stopped_for is None else None
    return None


def _base(resource: Resource, run: DeploymentRecord | None) -> dict[str, Any]:
    status = resource.status
    assert status is not None
    info = status.job_status.savepoint_info
    last = info.last_savepoint.location if info is not None and info.last_savepoint is not None else None
    rest = None
    if isinstance(status, FlinkDeploymentStatus):
        rest = (status.cluster_info or {}).get("rest-url")
    return {
        "kind": resource.kind,
        "namespace": resource.metadata.namespace,
        "name": resource.metadata.name,
        "lifecycle": status.lifecycle_state.value if status.lifecycle_state else None,
        "job_id": status.job_status.job_id,
        "job_state": status.job_status.state,
        "started_at_ms": run.started_at if run else None,
        "ended_at_ms": run.ended_at if run else None,
        "duration_ms": run.job_duration_ms if run else None,
        "accumulators": dict(run.result) if run else {},
        "last_savepoint": last,
        "rest_url": rest,
        "runs": len(status.deployment_history),
    }
