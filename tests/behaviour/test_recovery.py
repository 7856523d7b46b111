"""Losing a process is a non-event: a dead JobManager (without HA) is redeployed from the newest checkpoint, a
dead TaskManager or standby JobManager is replaced, a leader's death fails over with the same job, a controller
restart adopts what runs, and state that is known but missing stops everything instead of starting empty."""

from __future__ import annotations

from behaviour.steps import deploy, no_job_ran_twice, restored, running_stable, settled
from fakes.flink import RATE
from fakes.specs import application
from fakes.world import World

HA = {"high-availability.type": "zookeeper", "high-availability.zookeeper.quorum": "127.0.0.1:2181"}


def test_a_dead_jobmanager_without_ha_is_redeployed_from_the_newest_checkpoint(world: World) -> None:
    deploy(world, application("app", mode="last-state"))
    world.run_for(7.5)
    [old] = world.runs("app")
    world.runtime.kill_jobmanager("app")
    died_at, lost_offset = world.clock.now(), int(old.offset)
    world.run_until(lambda w: len(w.runs("app")) == 2 and w.job_state("app") == "RUNNING", what="a new job")
    took = world.clock.now() - died_at
    old, new = world.runs("app")
    assert restored(world, new, [old, new]) == "checkpoint of run 0 (newest)"
    path = world.deployment_status("app").job_status.upgrade_savepoint_path
    assert path is not None and path == new.restored_from and f"/{old.job_id}/chk-" in path
    assert "RecoverDeployment" in world.reasons("app")
    assert lost_offset - new.restored_offset <= RATE * 1, "replay is bounded by one checkpoint interval"
    assert took <= 3, f"noticed at once (the runtime reports the dead process), running again after {took:.1f}s"
    world.run_until(running_stable("app"))
    no_job_ran_twice(world)


def test_a_jobmanager_lost_before_any_checkpoint_starts_the_job_again_from_nothing(world: World) -> None:
    world.apply(application("app", mode="last-state", conf={"execution.checkpointing.interval": "1 min"}))
    world.run_until(lambda w: w.job_state("app") == "RUNNING")
    world.runtime.kill_jobmanager("app")
    world.run_until(lambda w: len(w.runs("app")) == 2 and w.job_state("app") == "RUNNING")
    assert world.runs("app")[1].restored_from is None, "no checkpoint existed: nothing to lose"


def test_known_state_that_is_missing_from_storage_requires_a_manual_restore(world: World) -> None:
    deploy(world, application("app", mode="last-state"))
    world.snapshots.wipe()
    world.runtime.kill_jobmanager("app")
    world.run_until(settled("app", "FAILED"), what="FAILED")
    status = world.deployment_status("app")
    assert status.error is not None and status.error.startswith("Manual restore required")
    assert world.reasons("app").count("ManualRestoreRequired") == 1
    world.run_for(120)
    assert len(world.runs("app")) == 1, "nothing was started from empty state"
    assert world.runtime.cluster("app") is not None and world.runtime.deleted == [], "nothing was deleted"

    backup = world.snapshots.write_savepoint("file:/backups", "0" * 32, world.clock.now_ms(), offset=123)
    world.restore("app", backup)
    world.run_until(running_stable("app", 2), what="restored from the backup")
    new = world.runs("app")[-1]
    assert (new.restored_from, new.restored_offset) == (backup, 123)


def test_a_missing_state_can_also_be_given_up_by_switching_to_stateless(world: World) -> None:
    deploy(world, application("app", mode="last-state"))
    world.snapshots.wipe()
    world.runtime.kill_jobmanager("app")
    world.run_until(settled("app", "FAILED"))
    world.edit("app", job={"upgrade_mode": "stateless"})
    world.run_until(lambda w: len(w.runs("app")) == 2 and w.job_state("app") == "RUNNING", what="started empty")
    assert world.runs("app")[1].restored_from is None


def test_a_dead_taskmanager_is_replaced_and_the_jobmanager_untouched(world: World) -> None:
    deploy(world, application("app", mode="last-state"))
    [job] = world.runs("app")
    cluster = world.runtime.cluster("app")
    assert cluster is not None
    [jobmanager] = cluster.of("jobmanager")
    world.runtime.kill_taskmanager("app")
    world.run_until(lambda w: job.state == "RUNNING" and job.restarts == 1, what="the job running again")
    assert len(cluster.alive("taskmanager")) == 1 and cluster.of("jobmanager") == [jobmanager]
    assert world.runtime.requests == [cluster.request], "no redeploy"
    assert world.runs("app") == [job] and world.deployment_status("app").job_status.job_id == job.job_id
    reasons = world.reasons("app")
    assert "RecoverTaskManager" in reasons and reasons.count("Submit") == 1


def test_a_dead_standby_jobmanager_is_replaced_and_the_job_never_stops(world: World) -> None:
    deploy(world, application("app", conf=HA, jobmanager_replicas=2))
    [job] = world.runs("app")
    cluster = world.runtime.cluster("app")
    assert cluster is not None and len(cluster.alive("jobmanager")) == 2
    leader = cluster.leader
    world.runtime.kill_jobmanager("app", which="standby")
    world.run_until(lambda w: len(cluster.alive("jobmanager")) == 2, max_passes=5, what="a new standby")
    assert cluster.leader is leader and job.restarts == 0 and job.state == "RUNNING"
    assert "RecoverJobManager" in world.reasons("app") and len(world.runtime.requests) == 1


def test_a_dead_leader_fails_over_to_the_standby_with_the_same_job(world: World) -> None:
    deploy(world, application("app", conf=HA, jobmanager_replicas=2))
    [job] = world.runs("app")
    cluster = world.runtime.cluster("app")
    assert cluster is not None
    standby = next(p for p in cluster.alive("jobmanager") if p is not cluster.leader)
    submits = world.reasons("app").count("Submit")
    world.runtime.kill_jobmanager("app")
    world.run_until(
        lambda w: len(cluster.alive("jobmanager")) == 2 and running_stable("app")(w), what="failed over, new standby"
    )
    assert cluster.leader is standby and job.restarts == 1 and job.state == "RUNNING"
    assert world.runs("app") == [job], "the same job goes on: no redeploy"
    status = world.deployment_status("app")
    assert status.job_status.job_id == job.job_id and status.cluster_info["rest-url"] == standby.url
    reasons = world.reasons("app")
    assert reasons.count("Submit") == submits and "RecoverDeployment" not in reasons
    assert len(world.runtime.requests) == 1


def test_a_controller_restart_adopts_what_runs_and_changes_nothing(world: World) -> None:
    deploy(world, application("app"))
    [job] = world.runs("app")
    world.restart_controller()
    world.run_for(30)
    assert world.lifecycle("app") == "STABLE" and world.runs("app") == [job] and job.alive
    assert len(world.runtime.requests) == 1 and world.reasons("app").count("Submit") == 1
