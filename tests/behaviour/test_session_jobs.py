"""FlinkSessionJobs on a session-mode FlinkDeployment: waiting for the session cluster, submitting through its
REST API (jar uploaded, then removed), upgrades that keep state, suspend/resume, deletion, and a job the session
cluster lost."""

from __future__ import annotations

from behaviour.steps import Predicate, deploy, gone, restored, settled
from fakes.specs import session_cluster, session_job
from fakes.world import World

JOB = "FlinkSessionJob"


def running(name: str, generation: int | None = None) -> Predicate:
    settle = settled(name, "STABLE", generation=generation, kind=JOB)
    return lambda w: settle(w) and w.job_state(name, JOB) == "RUNNING"


def stable_session_job(world: World, conf: dict[str, str] | None = None, mode: str = "last-state") -> None:
    deploy(world, session_cluster("session", conf=conf))
    world.apply(session_job("counter", "session", mode=mode))
    world.run_until(running("counter"), what="the session job running")


def test_a_session_job_waits_for_its_session_cluster_then_runs_on_it(world: World) -> None:
    world.apply(session_job("counter", "session"))
    world.run_for(30)
    assert world.flink.started == [] and world.status("counter", JOB).job_status.job_id is None
    deploy(world, session_cluster("session"))
    world.run_until(running("counter"), what="the session job running")
    [job] = world.session_runs("session")
    assert world.status("counter", JOB).job_status.job_id == job.job_id and job.state == "RUNNING"
    assert job.args == ("v1",) and job.restored_from is None
    url = world.deployment_status("session").cluster_info["rest-url"]
    assert world.flink.jars(url) == {}, "the uploaded jar is removed after the run"
    assert world.runtime.requests[0].application is None, "the session cluster runs no job of its own"


def waiting_condition(world: World, name: str) -> tuple[str, str, str]:
    [condition] = [c for c in world.status(name, JOB).conditions if c.type == "SessionClusterReady"]
    return condition.status, condition.reason, condition.message


def test_a_session_job_that_arrives_first_says_which_cluster_it_waits_for_without_an_error(world: World) -> None:
    # GitOps order: the jobs before their cluster. Waiting is not an error; the status names the cluster.
    world.apply(session_job("counter", "session"))
    world.run_for(10)
    status = world.status("counter", JOB)
    assert status.error is None and status.lifecycle_state is not None and status.lifecycle_state.value == "CREATED"
    state, reason, message = waiting_condition(world, "counter")
    assert (state, reason) == ("False", "SessionClusterNotFound") and "'session'" in message
    world.apply(session_cluster("session"))
    world.run_until(lambda w: waiting_condition(w, "counter")[1] == "SessionClusterNotReady", what="cluster seen")
    assert world.status("counter", JOB).error is None
    world.run_until(running("counter"), what="the session job running")
    assert waiting_condition(world, "counter")[:2] == ("True", "SessionClusterReady")


def test_a_last_state_upgrade_cancels_the_job_and_resubmits_it_from_its_newest_checkpoint(world: World) -> None:
    stable_session_job(world)
    world.edit("counter", kind=JOB, job={"args": ["v2"]})
    world.run_until(running("counter", 2), what="v2 running")
    old, new = world.session_runs("session")
    assert old.state == "CANCELED" and new.args == ("v2",)
    assert restored(world, new, [old, new]) == "checkpoint of run 0 (newest)"


def test_a_session_job_upgrade_while_flinks_statistics_lag_restores_a_checkpoint_in_storage(world: World) -> None:
    world.flink.checkpoint_stats_lag = 2.5  # REST statistics are cached; checkpoints complete every second
    stable_session_job(world)
    world.edit("counter", kind=JOB, job={"args": ["v2"]})
    world.run_until(running("counter", 2), max_passes=60, what="v2 running")
    old, new = world.session_runs("session")
    assert restored(world, new, [old, new]) == "checkpoint of run 0 (newest)"


def test_a_savepoint_upgrade_of_a_session_job_restores_a_savepoint(world: World) -> None:
    stable_session_job(world, mode="savepoint")
    world.edit("counter", kind=JOB, job={"args": ["v2"]})
    world.run_until(running("counter", 2), what="v2 running")
    old, new = world.session_runs("session")
    assert restored(world, new, [old, new]) == "savepoint of run 0 (newest)"


def test_suspend_cancels_the_job_and_resume_restores_its_state(world: World) -> None:
    stable_session_job(world)
    world.suspend("counter", kind=JOB)
    world.run_until(settled("counter", "SUSPENDED", kind=JOB), what="SUSPENDED")
    [old] = world.session_runs("session")
    assert old.state == "CANCELED"
    path = world.status("counter", JOB).job_status.upgrade_savepoint_path
    assert path is not None and f"/{old.job_id}/chk-" in path
    world.resume("counter", kind=JOB)
    world.run_until(running("counter", 3), what="running again")
    old, new = world.session_runs("session")
    assert restored(world, new, [old, new]) == "checkpoint of run 0 (newest)"


def test_a_session_job_suspended_for_long_resumes_from_its_state(world: World) -> None:
    stable_session_job(world, conf={"jobstore.expiration-time": "10 min"})  # Flink's default: 1 h
    world.suspend("counter", kind=JOB)
    world.run_until(settled("counter", "SUSPENDED", kind=JOB), what="SUSPENDED")
    world.run_for(11 * 60)
    world.resume("counter", kind=JOB)
    world.run_until(running("counter", 3), what="running again")
    old, new = world.session_runs("session")
    assert restored(world, new, [old, new]) == "checkpoint of run 0 (newest)"


def test_a_job_the_session_cluster_lost_is_resubmitted_with_its_state(world: World) -> None:
    stable_session_job(world)
    world.runtime.kill_jobmanager("session")  # no HA: the session cluster is redeployed, empty
    world.run_until(lambda w: len(w.session_runs("session")) == 2, what="resubmitted")
    world.run_until(running("counter"), what="running again")
    assert "Missing" in world.reasons("counter", JOB)
    old, new = world.session_runs("session")
    assert restored(world, new, [old, new]) == "checkpoint of run 0 (newest)"


def test_deleting_a_session_job_cancels_it_and_leaves_the_session_cluster(world: World) -> None:
    stable_session_job(world)
    [job] = world.session_runs("session")
    world.delete("counter", kind=JOB)
    world.run_until(gone("counter", JOB), max_passes=10)
    assert job.state == "CANCELED"
    assert world.lifecycle("session") == "STABLE" and world.runtime.cluster("session") is not None


def test_a_deleted_session_job_is_removed_only_once_its_job_stopped_cancelling(world: World) -> None:
    world.flink.cancel_duration = 8.0  # tasks take their time to stop
    stable_session_job(world)
    [job] = world.session_runs("session")
    world.delete("counter", kind=JOB)
    world.run_until(lambda w: job.state == "CANCELLING", what="the job cancelling")
    world.run_until(lambda w: w.clock.now() >= job.state_since + 6, what="the cancel under way")
    assert world.lifecycle("counter", JOB) == "DELETING", "removed while its job still runs"
    world.run_until(gone("counter", JOB), what="removed")
    assert job.state == "CANCELED"
    assert job.ended_at is not None and world.clock.now() >= job.ended_at


def test_a_session_job_whose_job_never_stops_cancelling_is_removed_after_five_minutes(world: World) -> None:
    world.flink.cancel_duration = 3600.0
    stable_session_job(world)
    [job] = world.session_runs("session")
    world.delete("counter", kind=JOB)
    asked = world.clock.now()
    world.run_until(gone("counter", JOB), what="removed", max_passes=1000)
    assert job.state == "CANCELLING"
    assert 300 <= world.clock.now() - asked < 330


def test_a_missing_session_job_jar_is_an_error_and_nothing_is_submitted(world: World) -> None:
    deploy(world, session_cluster("session"))
    world.provisioner.missing_jars.add("file:///jobs/counter.jar")
    world.apply(session_job("counter", "session"))
    world.run_for(20)
    status = world.status("counter", JOB)
    assert status.error is not None and "does not exist" in status.error
    assert world.session_runs("session") == []


def test_a_savepoint_suspend_of_a_session_job_records_the_savepoint_and_resume_restores_it(world: World) -> None:
    stable_session_job(world, mode="savepoint")
    world.suspend("counter", kind=JOB)
    world.run_until(settled("counter", "SUSPENDED", kind=JOB), what="SUSPENDED")
    [old] = world.session_runs("session")
    assert old.state == "FINISHED", "stopped with a savepoint, not cancelled"
    path = world.status("counter", JOB).job_status.upgrade_savepoint_path
    assert path is not None and "/savepoint-" in path
    world.resume("counter", kind=JOB)
    world.run_until(running("counter", 3), what="running again")
    old, new = world.session_runs("session")
    assert new.restored_from == path and restored(world, new, [old, new]) == "savepoint of run 0 (newest)"


def test_a_failed_upgrade_savepoint_of_a_session_job_is_tried_again_and_the_job_keeps_running(world: World) -> None:
    stable_session_job(world, mode="savepoint")
    world.flink.fail_savepoints(1)
    world.edit("counter", kind=JOB, job={"args": ["v2"]})
    world.run_until(lambda w: "SavepointError" in w.reasons("counter", JOB), what="the failed savepoint")
    [old] = world.session_runs("session")
    assert old.state == "RUNNING", "a failed stop-with-savepoint leaves the job running"
    world.run_until(running("counter", 2), what="v2 running")
    old, new = world.session_runs("session")
    assert restored(world, new, [old, new]) == "savepoint of run 0 (newest)"


def test_a_session_job_records_each_run_and_where_its_state_came_from(world: World) -> None:
    stable_session_job(world)
    world.edit("counter", kind=JOB, job={"args": ["v2"]})
    world.run_until(running("counter", 2), what="v2 running")
    old, new = world.session_runs("session")
    history = world.status("counter", JOB).deployment_history
    assert [(r.job_id, r.reason) for r in history] == [(old.job_id, "first-deploy"), (new.job_id, "upgrade")]
    assert history[0].checkpointed and history[0].stopped_for == "upgrade"
    assert history[1].restored_from == new.restored_from and history[1].downtime_ms is not None


def test_a_lost_session_job_whose_checkpoints_are_gone_requires_a_manual_restore(world: World) -> None:
    stable_session_job(world)
    world.snapshots.wipe()
    world.runtime.kill_jobmanager("session")
    world.run_until(lambda w: bool(w.status("counter", JOB).error), what="the error")
    status = world.status("counter", JOB)
    assert status.error is not None and status.error.startswith("Manual restore required")
    assert world.lifecycle("counter", JOB) == "FAILED", "nothing runs until someone decides"
    world.run_for(120)
    assert len(world.session_runs("session")) == 1, "nothing was submitted from empty state"
    assert world.reasons("counter", JOB).count("ManualRestoreRequired") == 1

    world.edit("counter", kind=JOB, job={"upgrade_mode": "stateless"})
    world.run_until(lambda w: len(w.session_runs("session")) == 2, what="started empty")
    world.run_until(running("counter"), what="running again")
    assert world.session_runs("session")[1].restored_from is None
    assert world.status("counter", JOB).error is None


def test_an_upgrade_whose_checkpoints_vanished_stops_and_waits_for_a_decision(world: World) -> None:
    stable_session_job(world)
    world.snapshots.wipe()
    world.edit("counter", kind=JOB, job={"args": ["v2"]})
    world.run_until(lambda w: bool(w.status("counter", JOB).error), what="the error")
    [old] = world.session_runs("session")
    assert old.state == "CANCELED"
    status = world.status("counter", JOB)
    assert status.error is not None and status.error.startswith("Manual restore required")
    assert world.lifecycle("counter", JOB) == "FAILED", "nothing runs until someone decides"
    world.run_for(60)
    assert len(world.session_runs("session")) == 1, "nothing was submitted from empty state"

    world.edit("counter", kind=JOB, job={"upgrade_mode": "stateless"})
    world.run_until(running("counter", 3), what="v2 running, empty")
    old, new = world.session_runs("session")
    assert new.args == ("v2",) and new.restored_from is None


def test_an_upgrade_savepoint_whose_result_the_session_cluster_forgot_is_found_in_storage() -> None:
    world = World(restart_delay=5.0)  # the controller stays dead for 5 s after its crash
    stable_session_job(world, mode="savepoint")
    world.crash_at("after", "TriggerSavepoint")
    world.edit("counter", kind=JOB, job={"args": ["v2"]})
    world.run_until(lambda w: bool(w.crashes), what="the crash")
    world.clock.advance(1.0)  # the savepoint completes and the job stops with it while nobody watches
    world.runtime.kill_jobmanager("session")  # ... then the session cluster forgets the trigger and the job
    world.run_until(running("counter", 2), what="v2 running")
    old, new = world.session_runs("session")
    assert restored(world, new, [old, new]) == "savepoint of run 0 (newest)"
    assert "SavepointFallback" not in world.reasons("counter", JOB)
