"""Pre-started upgrades: the new cluster starts next to the running job, and only then does the old job stop.

The restore point, the fresh job id and the write-ahead intents are those of an upgrade without it; what changes
is that the old job runs on while the new cluster starts, and that the deploy promotes that cluster (submits
the job to it) instead of starting processes. When the runtime refuses or the cluster is not ready in time,
the upgrade goes on in the usual order and a Warning says why; ``flinkops.upgrade.prestart: "false"`` opts out.
"""

from __future__ import annotations

from behaviour.steps import deploy, no_job_ran_twice, restored, running_stable, stopping_with_savepoint
from fakes.runtime import RESTORE_KEY
from fakes.specs import application
from fakes.world import World
from flinkops.core.planner.prestart import PRESTART_TIMEOUT_MS
from flinkops.ports import ClusterKey

KEY = ClusterKey("default", "app")
NO_PRESTART = {"flinkops.upgrade.prestart": "false"}


def _upgrade(world: World) -> None:
    world.edit("app", job={"args": ["v2"]})
    world.run_until(running_stable("app", 2), what="the upgrade done")


def _prepared_and_promoted(world: World) -> None:
    [prepare] = world.runtime.prepare_requests
    assert prepare.generation == 2 and RESTORE_KEY not in prepare.flink_config, "no restore point before the stop"
    assert world.runtime.promoted == [KEY]
    cluster = world.runtime.cluster("app")
    assert cluster is not None and cluster.request.generation == 2
    assert world.runtime.prepared("app") is None
    assert world.deployment_status("app").prepared_cluster is None


def test_a_savepoint_upgrade_starts_the_new_cluster_before_stopping_the_job(world: World) -> None:
    deploy(world, application("app", mode="savepoint"))
    world.edit("app", job={"args": ["v2"]})
    world.run_until(lambda w: "PrestartCluster" in w.reasons("app"), what="the new cluster asked for")
    [old] = world.runs("app")
    world.run_until(lambda w: w.runtime.prepared("app") is not None, max_passes=5)
    assert old.alive and old.state == "RUNNING", "the old job runs while the new cluster starts"
    assert world.deployment_status("app").job_status.savepoint_info is None or (
        world.deployment_status("app").job_status.savepoint_info.trigger_id is None  # type: ignore[union-attr]
    ), "no savepoint before the new cluster is ready"
    world.run_until(running_stable("app", 2), what="the upgrade done")
    old, new = world.runs("app")
    assert old.state == "FINISHED", "stopped with a savepoint"
    assert restored(world, new, [old, new]) == "savepoint of run 0 (newest)"
    assert new.restored_offset == int(old.offset)
    assert new.job_id != old.job_id
    assert world.deployment_status("app").job_status.upgrade_savepoint_path == new.restored_from
    _prepared_and_promoted(world)
    assert [k for k in world.runtime.deleted] == [KEY], "the old cluster is deleted, the prepared one kept"
    reasons = world.reasons("app")
    assert reasons.index("PrestartCluster") < reasons.index("PrestartReady") < reasons.index("SavepointCompleted")
    assert "PrestartFallback" not in reasons and "PrestartSkipped" not in reasons
    no_job_ran_twice(world)


def test_a_last_state_upgrade_starts_the_new_cluster_before_stopping_the_job(world: World) -> None:
    deploy(world, application("app", mode="last-state"))
    _upgrade(world)
    old, new = world.runs("app")
    assert restored(world, new, [old, new]) == "checkpoint of run 0 (newest)"
    assert new.job_id != old.job_id and not old.alive
    _prepared_and_promoted(world)
    assert "PrestartReady" in world.reasons("app")
    no_job_ran_twice(world)


def test_a_refused_prestart_upgrades_in_the_usual_order_and_says_why(world: World) -> None:
    deploy(world, application("app", mode="savepoint"))
    world.runtime.refuse_prepare("not enough free memory: 900 MiB available, 1600 MiB needed")
    _upgrade(world)
    old, new = world.runs("app")
    assert restored(world, new, [old, new]) == "savepoint of run 0 (newest)"
    assert world.runtime.promoted == [] and world.runtime.prepared("app") is None
    warnings = {e.reason: e.message for e in world.events("app") if e.type == "Warning"}
    assert "900 MiB available" in warnings["PrestartSkipped"]
    assert "did not pre-start" in warnings["PrestartFallback"]
    no_job_ran_twice(world)


def test_a_refused_prestart_adds_no_wait_under_the_operators_requeue_floor() -> None:
    """The operator spaces a resource's passes by 10 s unless a watch sees a change. A runtime that cannot
    pre-start (Kubernetes today) changes nothing a watch sees, so the pass that goes on without the prepared
    cluster must not wait for the floor: the old job's stop follows the refusal at once, as without a floor."""
    world = World(min_requeue=10.0)
    deploy(world, application("app", mode="savepoint"))
    world.runtime.refuse_prepare("pre-starting the next cluster is not supported on Kubernetes yet")
    started = world.clock.now()
    world.edit("app", job={"args": ["v2"]})
    world.run_until(stopping_with_savepoint("app"), what="the old job stopping")
    assert world.clock.now() - started < 2.0, f"the stop began {world.clock.now() - started:.1f} s after the apply"
    world.run_until(running_stable("app", 2), what="the upgrade done")
    assert "PrestartFallback" in world.reasons("app")
    no_job_ran_twice(world)


def test_a_prepared_cluster_that_is_not_ready_in_time_is_given_up(world: World) -> None:
    deploy(world, application("app", mode="last-state"))
    world.runtime.prepare_delay = 10_000.0
    started = world.clock.now()
    world.edit("app", job={"args": ["v2"]})
    world.run_until(lambda w: "PrestartFallback" in w.reasons("app"), max_passes=1000, what="the fallback")
    assert world.clock.now() - started >= PRESTART_TIMEOUT_MS / 1000
    world.run_until(running_stable("app", 2), what="the upgrade done")
    old, new = world.runs("app")
    assert restored(world, new, [old, new]) == "checkpoint of run 0 (newest)"
    assert world.runtime.promoted == [] and world.runtime.prepared("app") is None, "the slow cluster is stopped"
    assert any("not ready within 120 s" in e.message for e in world.events("app"))
    no_job_ran_twice(world)


def test_the_opt_out_keeps_the_usual_order(world: World) -> None:
    deploy(world, application("app", mode="savepoint", conf=NO_PRESTART))
    _upgrade(world)
    assert world.runtime.prepare_requests == [] and world.runtime.promoted == []
    assert not any(r.startswith("Prestart") for r in world.reasons("app"))


def test_a_stateless_upgrade_is_not_pre_started(world: World) -> None:
    deploy(world, application("app", mode="stateless"))
    _upgrade(world)
    assert world.runtime.prepare_requests == []


def test_a_restarted_controller_finds_the_prepared_cluster_by_its_generation() -> None:
    world = World()
    deploy(world, application("app", mode="savepoint"))
    world.crash_at("after", "PrepareCluster")
    world.edit("app", job={"args": ["v2"]})
    world.run_until(lambda w: bool(w.crashes), what="the crash")
    assert world.deployment_status("app").prepared_cluster is not None
    world.run_until(running_stable("app", 2), what="the upgrade done")
    assert len(world.runtime.prepare_requests) == 1, "the prepared cluster is not started twice"
    _prepared_and_promoted(world)
    no_job_ran_twice(world)


def test_deleting_the_deployment_while_the_new_cluster_starts_stops_both(world: World) -> None:
    deploy(world, application("app", mode="savepoint"))
    world.runtime.prepare_delay = 30.0
    world.edit("app", job={"args": ["v2"]})
    world.run_until(lambda w: w.runtime.prepared("app") is not None, what="the new cluster starting")
    world.delete("app")
    world.run_until(lambda w: w.resource("app") is None, what="the deployment gone")
    assert world.runtime.cluster("app") is None and world.runtime.prepared("app") is None
    assert world.flink.running() == []


def test_a_jobmanager_lost_while_the_new_cluster_starts_ends_the_wait(world: World) -> None:
    deploy(world, application("app", mode="savepoint"))
    world.runtime.prepare_delay = 1_000.0
    world.edit("app", job={"args": ["v2"]})
    world.run_until(lambda w: w.runtime.prepared("app") is not None, what="the new cluster starting")
    started = world.clock.now()
    world.runtime.kill_jobmanager("app")
    world.run_until(running_stable("app", 2), what="the upgrade done")
    assert world.clock.now() - started < 60, "no waiting for a cluster while the job is down"
    old, new = world.runs("app")
    assert restored(world, new, [old, new]) == "checkpoint of run 0 (newest)"
    assert "PrestartFallback" in world.reasons("app") and world.runtime.prepared("app") is None
    no_job_ran_twice(world)
