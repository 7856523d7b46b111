"""How soon a finished savepoint is noticed when passes are spaced out the way the Kubernetes operator spaces them
(at least 10 s apart unless a watch wakes the resource): a stop-with-savepoint keeps the job down until the
controller sees it complete, so a snapshot in flight is followed at the planner's own cadence, and only then."""

from __future__ import annotations

import pytest

from behaviour.steps import deploy, no_job_ran_twice, restored, running_stable, stopping_with_savepoint
from fakes.specs import application
from fakes.world import World
from flinkops.api.flinkconf import PROGRESS_CHECK_KEY
from flinkops.core.planner.snapshots import SAVEPOINT_POLL
from flinkops.core.planner.types import FAST
from flinkops.wiring.operator import OperatorSettings

OPERATOR_FLOOR = OperatorSettings.min_requeue  # 10 s


@pytest.fixture
def world() -> World:
    """A world scheduled like the operator. Its runtime cannot pre-start clusters (as on Kubernetes), so an
    upgrade stops the old job before the new cluster starts."""
    operator = World(min_requeue=OPERATOR_FLOOR)
    operator.runtime.refuse_prepare("pre-starting the next cluster is not supported on Kubernetes yet")
    operator.flink.savepoint_duration = 3.0
    return operator


def test_the_new_cluster_starts_right_after_the_upgrade_savepoint_completes(world: World) -> None:
    deploy(world, application("app", mode="savepoint"))
    world.edit("app", job={"args": ["v2"]})
    world.run_until(stopping_with_savepoint("app"), max_passes=20)
    world.run_until(running_stable("app", 2), what="the upgrade done")

    old, new = world.runs("app")
    assert old.state == "FINISHED" and old.ended_at is not None, "stopped with its savepoint"
    assert restored(world, new, [old, new]) == "savepoint of run 0 (newest)"
    # The job is down from the savepoint's completion until the new cluster runs it: one poll, not ten seconds.
    assert new.submitted_at - old.ended_at <= SAVEPOINT_POLL + 1e-6
    no_job_ran_twice(world)


def test_a_manual_savepoint_is_recorded_within_a_second_of_completing(world: World) -> None:
    deploy(world, application("app", mode="savepoint"))
    world.run_for(30.0)  # well into the operator's slow cadence
    world.request_savepoint("app")
    world.run_until(lambda w: "SavepointCompleted" in w.reasons("app"), max_passes=50)

    (savepoint,) = world.snapshots.all("savepoint")
    info = world.deployment_status("app").job_status.savepoint_info
    assert info is not None and info.last_savepoint is not None
    assert info.last_savepoint.location == savepoint.path
    assert info.last_savepoint.time_stamp - savepoint.snapshot.time_ms <= FAST * 1000


def test_with_nothing_in_flight_a_stable_deployment_is_looked_at_no_more_than_every_ten_seconds(world: World) -> None:
    deploy(world, application("app", mode="savepoint"))
    before = world.passes
    world.run_for(60.0)
    assert world.passes - before <= 60.0 / OPERATOR_FLOOR + 1


def _seconds_to_stable(world: World, conf: dict[str, str]) -> float:
    start = world.clock.now()
    deploy(world, application("app", mode="savepoint", conf=conf))
    return world.clock.now() - start


def test_a_deployment_that_asks_for_quicker_progress_checks_is_seen_stable_sooner(world: World) -> None:
    """The reference operator's ``kubernetes.operator.observer.progress-check.interval`` in a deployment's own
    configuration: while its job starts and takes its first checkpoint, it is looked at that often instead of
    the operator's 10 s, so STABLE is recorded within a pass of being true."""
    default = _seconds_to_stable(world, {})
    quick_world = World(min_requeue=OPERATOR_FLOOR)
    quick_world.runtime.refuse_prepare("as on Kubernetes")
    quick = _seconds_to_stable(quick_world, {PROGRESS_CHECK_KEY: "1 s"})
    assert default >= OPERATOR_FLOOR, default  # the first look after the deploy comes a floor later
    assert quick < default and quick <= OPERATOR_FLOOR, (quick, default)
    before = quick_world.passes
    quick_world.run_for(60.0)  # stable and quiet: the reconcile interval, not the progress checks, spaces passes
    assert quick_world.passes - before <= 60.0 / OPERATOR_FLOOR + 1
