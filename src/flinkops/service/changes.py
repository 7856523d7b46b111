"""Changes to existing resources: delete, suspend, resume, rollback.

Each one changes the resource the way a user editing it would (a deletion request, ``spec.job.state``, the spec
put back to the last stable one), then makes sure something reconciles: the controller stays the only thing that
acts, and everything shows up in the resource's spec, status and events. Deleting keeps the job's checkpoints and
savepoints.

Called by: the CLI (``delete``, ``suspend``, ``resume``, ``rollback``), and Python callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flinkops.api.models import FlinkDeployment, FlinkDeploymentSpec, FlinkSessionJob, JobState
from flinkops.core.specs import load_spec
from flinkops.errors import FlinkopsError, InvalidInput, NotFound, Problem
from flinkops.ports import ResourceKey
from flinkops.service.resources import deployment, get, resolve
from flinkops.service.target import Target
from flinkops.service.waiting import poll, wait_stable

__all__ = [
    "Deletion",
    "JobStateChange",
    "RollingBack",
    "delete",
    "deletion_order",
    "request_deletion",
    "resume",
    "rollback",
    "set_job_state",
    "suspend",
    "wait_deleted",
]


# ------------------------------------------------------------------------------------------------ delete


@dataclass(frozen=True)
class Deletion:
    """``gone``: removed at once (nothing to clean up); otherwise the controller tears it down, then removes it."""

    key: ResourceKey
    gone: bool


def deletion_order(
    target: Target, resources: Sequence[FlinkDeployment | FlinkSessionJob]
) -> tuple[list[ResourceKey], list[ResourceKey]]:
    """The stored ones of ``resources`` in the order to delete them (session jobs before the session clusters
    they run on), and the ones not stored (already deleted)."""
    keys = sorted((ResourceKey.of(r) for r in resources), key=lambda k: k.kind != "FlinkSessionJob")
    store = target.store()
    present = [k for k in keys if store.get(k) is not None]
    return present, [k for k in keys if k not in present]


def request_deletion(target: Target, key: ResourceKey) -> Deletion:
    """Ask for ``key`` to be torn down."""
    try:
        target.store().request_deletion(key)
    except NotFound:
        return Deletion(key, gone=True)  # no cleanup finalizer yet: gone at once
    target.ensure_controller()
    return Deletion(key, gone=False)


def wait_deleted(target: Target, key: ResourceKey, timeout: float) -> None:
    """Wait until the controller has torn ``key`` down and removed it."""
    store = target.store()

    def timed_out() -> Exception:
        return FlinkopsError(
            f"{key.name} is still being deleted after {timeout:.0f}s; see `flinkops describe {key.name}`"
        )

    poll(target.clock, lambda: True if store.get(key) is None else None, timeout, 0.2, timed_out)


def delete(
    target: Target, name: str, namespace: str = "default", *, wait: bool = True, timeout: float = 120.0
) -> Deletion:
    """Tear the resource ``name`` down (and with ``wait`` until it is gone). State in storage is kept."""
    deletion = request_deletion(target, get(target, name, namespace).key)
    if wait and not deletion.gone:
        wait_deleted(target, deletion.key, timeout)
    return deletion


# ------------------------------------------------------------------------------------------------ suspend/resume


@dataclass(frozen=True)
class JobStateChange:
    key: ResourceKey
    state: JobState
    changed: bool  # False: the job was in that state already


def set_job_state(target: Target, name: str, namespace: str, state: JobState) -> JobStateChange:
    """Set ``spec.job.state`` (the controller then stops the job with its cluster, or starts it again)."""
    resource = resolve(target, name, namespace)
    key = ResourceKey.of(resource)
    if resource.spec.job is None:
        raise InvalidInput([Problem("spec.job", f"{name} has no job (a session cluster cannot be {state.value})")])
    if resource.spec.job.state == state:
        return JobStateChange(key, state, changed=False)
    job = resource.spec.job.model_copy(update={"state": state})
    target.store().apply(resource.model_copy(update={"spec": resource.spec.model_copy(update={"job": job})}))
    target.ensure_controller()
    return JobStateChange(key, state, changed=True)


def suspend(target: Target, name: str, namespace: str = "default") -> JobStateChange:
    """Stop the job and its cluster, keeping the spec (``spec.job.state: suspended``)."""
    return set_job_state(target, name, namespace, JobState.SUSPENDED)


def resume(target: Target, name: str, namespace: str = "default") -> JobStateChange:
    """Start a suspended job again (``spec.job.state: running``)."""
    return set_job_state(target, name, namespace, JobState.RUNNING)


# ------------------------------------------------------------------------------------------------ rollback


@dataclass(frozen=True)
class RollingBack:
    key: ResourceKey
    generation: int  # the generation that runs the last stable spec again


def rollback(
    target: Target, name: str, namespace: str = "default", *, wait: bool = False, timeout: float = 300.0
) -> RollingBack:
    """Put the last stable spec back (the job keeps its state); with ``wait``, until it runs again."""
    resource = deployment(target, name, namespace)
    recon = resource.status.reconciliation_status if resource.status else None
    stable = load_spec(recon.last_stable_spec, FlinkDeploymentSpec) if recon else None
    if recon is None or stable is None:
        raise FlinkopsError(f"{name} has no stable spec to roll back to yet")
    if recon.last_stable_spec == recon.last_reconciled_spec and resource.spec == stable:
        raise FlinkopsError(f"{name} already runs its last stable spec: nothing to roll back")
    stored = target.store().apply(resource.model_copy(update={"spec": stable}))
    target.ensure_controller()
    result = RollingBack(ResourceKey.of(stored), stored.metadata.generation or 0)
    if wait:
        wait_stable(target, name, namespace, result.generation, "the rollback", timeout)
    return result
