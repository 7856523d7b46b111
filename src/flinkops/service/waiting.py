"""Waiting for the controller: until applied resources settle, a deployment becomes stable again, a snapshot is
taken or a resource is gone.

The service layer only writes what a user wants and reads what the controller recorded; these loops poll the
store on the target's clock (a virtual one in tests) and give up with ``FlinkopsError`` at the deadline, naming
what they waited for. Progress goes to an optional callback (the CLI shows it in a spinner); nothing prints.

Called by: ``service.apply``, ``service.changes``, ``service.snapshots``, and the CLI's ``--wait``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from flinkops.api.models import FlinkDeployment, FlinkSessionJob, LifecycleState
from flinkops.errors import FlinkopsError, NotFound
from flinkops.ports import Clock, ResourceKey
from flinkops.service.resources import lifecycle
from flinkops.service.target import Target

__all__ = ["SETTLED", "Settled", "poll", "settled_at", "wait_for_deployment", "wait_settled", "wait_stable"]

T = TypeVar("T")

#: Lifecycle states in which the controller has nothing left to do until the spec changes.
SETTLED = frozenset(
    {LifecycleState.STABLE, LifecycleState.SUSPENDED, LifecycleState.FAILED, LifecycleState.ROLLED_BACK}
)


def poll(
    clock: Clock, check: Callable[[], T | None], timeout: float, interval: float, timed_out: Callable[[], Exception]
) -> T:
    """``check()`` every ``interval`` seconds until it answers (not None); ``timed_out()`` is raised after
    ``timeout`` seconds."""
    deadline = clock.now() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        if clock.now() > deadline:
            raise timed_out()
        clock.sleep(interval)


@dataclass(frozen=True)
class Settled:
    """A resource the controller has caught up with: its lifecycle, job state, and the error when it FAILED."""

    key: ResourceKey
    lifecycle: str
    job_state: str | None
    error: str | None = None


def wait_settled(
    target: Target,
    resources: Sequence[FlinkDeployment | FlinkSessionJob],
    timeout: float,
    progress: Callable[[str], None] | None = None,
) -> Iterator[Settled]:
    """Yield each resource once the controller has observed its generation and it is STABLE, SUSPENDED, FAILED
    or ROLLED_BACK. Raises ``FlinkopsError`` after ``timeout`` seconds, and at the end when any FAILED, with its
    cause. A failure the controller still retries (a JobManager that died at start, within its retry budget) is
    not FAILED yet: its error shows in the progress and in the timeout; FAILED comes with the budget's end, or at
    once when no retry can help, and ends the wait then."""
    store = target.store()
    pending = [(ResourceKey.of(r), r.metadata.generation or 0) for r in resources]
    deadline = target.clock.now() + timeout
    failed: list[str] = []
    while pending:
        waiting: list[str] = []
        still: list[tuple[ResourceKey, int]] = []
        for key, generation in pending:
            current = store.get(key)
            if current is None:
                raise NotFound(f"{key} disappeared while waiting")
            status = current.status
            state = lifecycle(current)
            job = status.job_status.state if status and status.job_status else None
            if (
                status is not None
                and (status.observed_generation or 0) >= generation
                and status.lifecycle_state in SETTLED
            ):
                error = None
                if status.lifecycle_state == LifecycleState.FAILED:
                    error = status.error or "failed"
                    failed.append(f"{key.name}: {error}")
                yield Settled(key, state, job, error)
                continue
            still.append((key, generation))
            # What went wrong so far (a JobManager that died at start and is tried again): said while waiting and
            # in the timeout, not only by `describe`.
            told = ((status.error if status else None) or "").splitlines()
            waiting.append(f"{key.name}: {state}" + (f", job {job}" if job else "") + (f" ({told[0]})" if told else ""))
        pending = still
        if not pending:
            break
        if target.clock.now() > deadline:
            raise FlinkopsError(f"timed out after {timeout:.0f}s waiting for: {'; '.join(waiting)}")
        if progress is not None:
            progress("waiting for " + "; ".join(waiting))
        target.clock.sleep(0.25)
    if failed:
        raise FlinkopsError("failed: " + "; ".join(f.splitlines()[0] for f in failed))


def wait_for_deployment(
    target: Target,
    name: str,
    namespace: str,
    done: Callable[[FlinkDeployment], bool],
    what: str,
    timeout: float,
) -> FlinkDeployment:
    """Poll the FlinkDeployment ``name`` until ``done`` (which may raise to give up early); returns it then."""
    store = target.store()
    key = ResourceKey("FlinkDeployment", namespace, name)

    def check() -> FlinkDeployment | None:
        current = store.get(key)
        if not isinstance(current, FlinkDeployment):
            raise FlinkopsError(f"{name} disappeared while waiting for {what}")
        return current if done(current) else None

    def timed_out() -> Exception:
        return FlinkopsError(f"timed out after {timeout:.0f}s waiting for {what}; see `flinkops describe {name}`")

    return poll(target.clock, check, timeout, 0.25, timed_out)


def settled_at(generation: int) -> Callable[[FlinkDeployment], bool]:
    """Done once ``generation`` is STABLE (or ROLLED_BACK and running again); raises when it FAILED."""

    def done(current: FlinkDeployment) -> bool:
        status = current.status
        if status is None or (status.observed_generation or 0) < generation:
            return False
        if status.lifecycle_state == LifecycleState.FAILED:
            reason = (status.error or "").splitlines() or ["no error recorded"]
            raise FlinkopsError(f"{current.metadata.name} failed: {reason[0]}")
        if status.lifecycle_state == LifecycleState.ROLLED_BACK:
            return status.job_status.state in ("RUNNING", "FINISHED")  # rolled back and running again
        return status.lifecycle_state == LifecycleState.STABLE

    return done


def wait_stable(
    target: Target, name: str, namespace: str, generation: int, what: str, timeout: float
) -> FlinkDeployment:
    """Wait until the deployment runs ``generation`` stably (see ``settled_at``)."""
    return wait_for_deployment(target, name, namespace, settled_at(generation), what, timeout)
