"""Steps and checks shared by the behaviour suites, phrased the way a user watches a deployment.

``settled`` waits for a lifecycle state at (or past) a generation, ``deploy`` applies a resource and waits for
it to be STABLE, ``restored`` names where a job's state came from in terms of the runs before it, and
``no_job_ran_twice`` checks that no job id was ever started twice and that at most one job of a deployment runs.

Called by: the modules of ``tests/behaviour``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fakes.flink import FakeJob
from fakes.world import World
from flinkops.api.models import FlinkDeployment, FlinkSessionJob

Predicate = Callable[[World], bool]


def settled(name: str, *states: str, generation: int | None = None, kind: str = "FlinkDeployment") -> Predicate:
    """``name`` is in one of ``states`` and has observed ``generation`` (its current one by default)."""

    def check(world: World) -> bool:
        resource = world.resource(name, kind)
        if resource is None or resource.status is None:
            return False
        wanted = generation if generation is not None else resource.metadata.generation or 1
        status = resource.status
        lifecycle = status.lifecycle_state.value if status.lifecycle_state else None
        return (status.observed_generation or 0) >= wanted and lifecycle in states

    return check


def running_stable(name: str, generation: int | None = None) -> Predicate:
    """STABLE (or ROLLED_BACK) with the job RUNNING."""
    settle = settled(name, "STABLE", "ROLLED_BACK", generation=generation)
    return lambda world: settle(world) and world.job_state(name) == "RUNNING"


def stopping_with_savepoint(name: str) -> Predicate:
    """UPGRADING with the stop-with-savepoint trigger on record (after any pre-started cluster became ready)."""

    def check(world: World) -> bool:
        status = world.deployment_status(name)
        info = status.job_status.savepoint_info
        return world.lifecycle(name) == "UPGRADING" and info is not None and info.trigger_type == "UPGRADE"

    return check


def deploy(world: World, resource: FlinkDeployment | FlinkSessionJob, *states: str) -> None:
    """Apply ``resource`` and run until it is STABLE (or one of ``states``)."""
    world.apply(resource)
    name, kind = resource.metadata.name, resource.kind
    world.run_until(settled(name, *(states or ("STABLE",)), kind=kind), what=f"{name} {states or 'STABLE'}")


def gone(name: str, kind: str = "FlinkDeployment") -> Predicate:
    return lambda world: world.resource(name, kind) is None


def restored(world: World, job: FakeJob, runs: Sequence[FakeJob]) -> str:
    """Where ``job``'s state came from, relative to ``runs`` (the deployment's jobs in start order):
    ``empty``, ``missing`` (a path not in storage), ``external``, or ``<kind> of run <n>`` plus ``(newest)``
    when it is the newest snapshot that run ever completed, ``(older)`` otherwise."""
    path = job.restored_from
    if not path:
        return "empty"
    entry = world.snapshots.entry(path)
    if entry is None:
        return "missing"
    snapshot = entry.snapshot
    producer = next(
        (i for i, run in enumerate(runs) if snapshot.job_id == run.job_id or run.job_id[:6] == snapshot.job_id_prefix),
        None,
    )
    if producer is None:
        return f"external {snapshot.kind}"
    produced = [
        e.snapshot for e in world.snapshots.ledger.values() if e.snapshot.job_id_prefix == runs[producer].job_id[:6]
    ]
    newest = max(produced, key=lambda s: (s.time_ms, s.kind == "savepoint", s.checkpoint_id or 0))
    return f"{snapshot.kind} of run {producer} ({'newest' if newest.path == snapshot.path else 'older'})"


@dataclass(frozen=True)
class Run:
    """One job a deployment ran, as a user would describe it."""

    args: tuple[str, ...]
    restored: str
    alive: bool


def runs(world: World, jobs: Sequence[FakeJob]) -> tuple[Run, ...]:
    return tuple(Run(job.args, restored(world, job, jobs), job.alive) for job in jobs)


def no_job_ran_twice(world: World) -> None:
    ids = [job.job_id for job in world.flink.started]
    assert len(ids) == len(set(ids)), f"a job id was started twice: {ids}"
    owners = [world.runtime.owners[j.cluster_id] for j in world.flink.running() if not j.session]
    assert len(owners) == len(set(owners)), f"two jobs of one deployment run at once: {owners}"
