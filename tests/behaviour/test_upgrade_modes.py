"""Upgrades in each upgrade mode and their fallbacks, in-place scaling, and suspend/resume: which state the new
job starts from, and that the old one is stopped the right way."""

from __future__ import annotations

from behaviour.steps import deploy, no_job_ran_twice, restored, running_stable, settled, stopping_with_savepoint
from fakes.flink import JobScript
from fakes.specs import application
from fakes.world import World
from flinkops.ports import ResourceKey

KEY = ResourceKey("FlinkDeployment", "default", "app")


def upgrade(world: World, name: str = "app", **job: object) -> None:
    generation = world.deployment(name).metadata.generation or 1
    world.edit(name, job=job or {"args": ["v2"]})
    world.run_until(running_stable(name, generation + 1), what="the upgrade done")


# ------------------------------------------------------------------ savepoint


def test_savepoint_upgrade_stops_the_job_with_a_savepoint_and_restores_it(world: World) -> None:
    deploy(world, application("app", mode="savepoint"))
    writes = len(world.store.status_writes)
    upgrade(world)
    old, new = world.runs("app")
    assert (old.args, new.args) == (("v1",), ("v2",))
    assert old.state == "FINISHED", "stopped with a savepoint, not killed"
    assert restored(world, new, [old, new]) == "savepoint of run 0 (newest)"
    assert new.restored_offset == int(old.offset), "the new job continues exactly where the old one stopped"
    status = world.deployment_status("app")
    assert status.job_status.upgrade_savepoint_path == new.restored_from
    info = status.job_status.savepoint_info
    assert info is not None and info.last_savepoint is not None
    assert (info.last_savepoint.trigger_type, info.last_savepoint.location) == ("UPGRADE", new.restored_from)
    assert "SavepointCompleted" in world.reasons("app")
    assert world.store.status_writes[writes][1] == "UPGRADING", "the trigger is on record before the job stops"
    assert status.deployment_history[-1].reason == "upgrade"
    no_job_ran_twice(world)


def test_a_failed_upgrade_savepoint_is_retried_and_the_job_keeps_running_meanwhile(world: World) -> None:
    deploy(world, application("app", mode="savepoint"))
    world.flink.fail_savepoints(1, "java.io.IOException: disk full")
    world.edit("app", job={"args": ["v2"]})
    world.run_until(lambda w: "SavepointError" in w.reasons("app"), what="the failure reported")
    [old] = world.runs("app")
    assert old.alive and old.state == "RUNNING", "a failed savepoint never costs the running job"
    assert any("disk full" in e.message for e in world.events("app"))
    world.run_until(running_stable("app", 2), what="the upgrade done")
    old, new = world.runs("app")
    assert restored(world, new, [old, new]) == "savepoint of run 0 (newest)"
    assert len(world.snapshots.all("savepoint")) == 1


def test_a_trigger_that_never_reached_flink_is_sent_again_with_the_same_id(world: World) -> None:
    deploy(world, application("app", mode="savepoint"))
    world.flink.lose_next_trigger()
    world.edit("app", job={"args": ["v2"]})
    world.run_until(lambda w: bool(w.deployment_status("app").error), what="the lost request reported")
    world.run_until(running_stable("app", 2), what="the upgrade done")
    old, new = world.runs("app")
    assert restored(world, new, [old, new]) == "savepoint of run 0 (newest)"
    assert len(world.snapshots.all("savepoint")) == 1, "one trigger id, one savepoint"
    assert world.deployment_status("app").error is None


def test_a_savepoint_that_completed_while_its_jobmanager_died_is_found_in_storage(world: World) -> None:
    deploy(world, application("app", mode="savepoint"))
    world.edit("app", job={"args": ["v2"]})
    world.run_until(stopping_with_savepoint("app"), max_passes=20)
    world.clock.advance(world.flink.savepoint_duration + 0.1)  # the savepoint completes, nobody looks...
    world.runtime.kill_jobmanager("app")  # ...and the JobManager that knew the trigger is gone
    world.run_until(running_stable("app", 2), what="the upgrade done")
    old, new = world.runs("app")
    assert restored(world, new, [old, new]) == "savepoint of run 0 (newest)"
    assert "SavepointFallback" not in world.reasons("app")


def test_savepoint_mode_falls_back_to_the_last_checkpoint_when_the_job_is_not_running(world: World) -> None:
    world.flink.script("flaky", JobScript(fail_after=2.5, crash_loop=True))
    world.apply(application("app", mode="savepoint", args=["v1", "flaky"]))
    world.run_until(lambda w: bool(w.runs("app") and w.runs("app")[0].restarts), what="the job crash-looping")
    world.edit("app", job={"args": ["v2"]})
    world.run_until(running_stable("app", 2), what="the upgrade done")
    old, new = world.runs("app")
    assert restored(world, new, [old, new]) == "checkpoint of run 0 (newest)", "last state, never empty"
    assert "SavepointFallback" in world.reasons("app")
    assert world.snapshots.all("savepoint") == []


def test_savepoint_mode_upgrades_from_the_stored_checkpoint_when_the_jobmanager_is_gone(world: World) -> None:
    deploy(world, application("app", mode="savepoint"))
    world.runtime.kill_jobmanager("app")
    world.edit("app", job={"args": ["v2"]})
    world.run_until(running_stable("app", 2), what="the upgrade done")
    old, new = world.runs("app")
    assert restored(world, new, [old, new]) == "checkpoint of run 0 (newest)"
    assert "SavepointFallback" in world.reasons("app")


def test_a_savepoint_in_flight_when_the_jobmanager_dies_falls_back_to_the_last_checkpoint(world: World) -> None:
    deploy(world, application("app", mode="savepoint"))
    world.flink.savepoint_duration = 5.0
    world.edit("app", job={"args": ["v2"]})
    world.run_until(stopping_with_savepoint("app"), max_passes=20)
    world.runtime.kill_jobmanager("app")
    world.run_until(running_stable("app", 2), what="the upgrade done")
    old, new = world.runs("app")
    assert restored(world, new, [old, new]) == "checkpoint of run 0 (newest)"
    assert "SavepointFallback" in world.reasons("app")


# ------------------------------------------------------------------ last-state and stateless


def test_last_state_upgrade_restores_the_newest_checkpoint(world: World) -> None:
    deploy(world, application("app", mode="last-state"))
    upgrade(world)
    old, new = world.runs("app")
    assert restored(world, new, [old, new]) == "checkpoint of run 0 (newest)"
    path = world.deployment_status("app").job_status.upgrade_savepoint_path
    assert path is not None and path == new.restored_from and f"/{old.job_id}/chk-" in path
    assert world.snapshots.all("savepoint") == []
    no_job_ran_twice(world)


def test_last_state_upgrade_uses_storage_when_flinks_statistics_lag_behind(world: World) -> None:
    world.flink.checkpoint_stats_lag = 2.5  # REST statistics are cached; checkpoints complete every second
    deploy(world, application("app", mode="last-state"))
    upgrade(world)
    old, new = world.runs("app")
    assert restored(world, new, [old, new]) == "checkpoint of run 0 (newest)"
    assert new.failure is None


def test_the_upgrade_event_names_the_checkpoint_the_new_job_restored(world: World) -> None:
    world.flink.checkpoint_stats_lag = 2.5
    deploy(world, application("app", mode="last-state"))
    upgrade(world)
    new = world.runs("app")[-1]
    assert new.restored_from is not None
    submits = [e.message for e in world.events("app") if e.reason == "Submit"]
    assert new.restored_from in submits[-1]


def test_stateless_upgrade_starts_empty(world: World) -> None:
    deploy(world, application("app", mode="stateless"))
    upgrade(world)
    old, new = world.runs("app")
    assert new.restored_from is None and new.restored_offset == 0
    assert not old.alive


# ------------------------------------------------------------------ scaling


def test_a_parallelism_change_with_the_adaptive_scheduler_rescales_in_place(world: World) -> None:
    deploy(world, application("app", conf={"jobmanager.scheduler": "adaptive"}))
    [job] = world.runs("app")
    world.edit("app", job={"parallelism": 2})
    world.run_until(lambda w: job.parallelism == 2 and running_stable("app", 2)(w), what="parallelism 2")
    assert world.runs("app") == [job] and job.alive, "same job, no redeploy"
    cluster = world.runtime.cluster("app")
    assert cluster is not None and len(cluster.alive("taskmanager")) == 2
    assert world.deployment_status("app").job_status.job_id == job.job_id
    reasons = world.reasons("app")
    assert "ScaledInPlace" in reasons and reasons.count("Submit") == 1
    assert len(world.runtime.requests) == 1


def test_a_parallelism_change_mixed_with_another_change_is_an_upgrade(world: World) -> None:
    deploy(world, application("app", conf={"jobmanager.scheduler": "adaptive"}))
    upgrade(world, parallelism=2, args=["v2"])
    old, new = world.runs("app")
    assert new.args == ("v2",) and restored(world, new, [old, new]) == "checkpoint of run 0 (newest)"
    assert "ScaledInPlace" not in world.reasons("app")


def test_a_parallelism_change_without_the_adaptive_scheduler_is_a_stateful_upgrade(world: World) -> None:
    deploy(world, application("app"))
    upgrade(world, parallelism=2)
    old, new = world.runs("app")
    assert new.parallelism == 2 and restored(world, new, [old, new]) == "checkpoint of run 0 (newest)"


# ------------------------------------------------------------------ suspend and resume


def test_last_state_suspend_records_the_newest_checkpoint_and_resume_restores_it(world: World) -> None:
    deploy(world, application("app", mode="last-state"))
    world.suspend("app")
    world.run_until(settled("app", "SUSPENDED"))
    [old] = world.runs("app")
    assert world.runtime.cluster("app") is None and not old.alive, "suspend stops every process"
    suspended = world.deployment_status("app")
    path = suspended.job_status.upgrade_savepoint_path
    assert path and "/chk-" in path and world.snapshots.stored(path) is not None
    recon = suspended.reconciliation_status
    assert recon.last_stable_spec == recon.last_reconciled_spec, "a suspended spec is stable"
    world.run_for(30)
    assert len(world.runs("app")) == 1, "nothing starts while suspended"

    world.resume("app")
    world.run_until(running_stable("app", 3))
    old, new = world.runs("app")
    assert new.restored_from == path and restored(world, new, [old, new]) == "checkpoint of run 0 (newest)"
    assert world.deployment_status("app").job_status.job_id == new.job_id != old.job_id
    assert any(path.rsplit("/", 1)[-1] in e.message for e in world.events("app")), "the resume names its state"
    assert "Rollback" not in world.reasons("app"), "resuming is not a rollback"


def test_savepoint_suspend_stops_with_a_savepoint_and_resume_restores_it(world: World) -> None:
    deploy(world, application("app", mode="savepoint"))
    world.suspend("app")
    world.run_until(settled("app", "SUSPENDED"))
    [old] = world.runs("app")
    assert old.state == "FINISHED"
    path = world.deployment_status("app").job_status.upgrade_savepoint_path
    assert path and "/savepoint-" in path
    world.resume("app")
    world.run_until(running_stable("app", 3))
    old, new = world.runs("app")
    assert new.restored_from == path and restored(world, new, [old, new]) == "savepoint of run 0 (newest)"
    assert new.restored_offset == int(old.offset)


def test_stateless_suspend_and_resume_start_empty(world: World) -> None:
    deploy(world, application("app", mode="stateless"))
    world.suspend("app")
    world.run_until(settled("app", "SUSPENDED"))
    assert world.deployment_status("app").job_status.upgrade_savepoint_path is None
    world.resume("app")
    world.run_until(running_stable("app", 3))
    assert world.runs("app")[-1].restored_from is None
