"""A deployment's life without upgrades: first deploy to STABLE, failures reported, batch jobs that end, bad
input, and deletion."""

from __future__ import annotations

from behaviour.steps import deploy, gone, settled
from fakes.flink import JobScript
from fakes.specs import application
from fakes.world import World
from flinkops.api.models import FlinkDeploymentStatus


def test_first_deploy_writes_its_intent_then_is_stable_once_running_with_a_checkpoint(world: World) -> None:
    world.apply(application("app"))
    world.run_until(lambda w: w.job_state("app") == "RUNNING", what="the job running")
    assert world.lifecycle("app") == "DEPLOYED", "RUNNING alone is not stable"
    world.run_until(settled("app", "STABLE"), what="STABLE")
    status = world.deployment_status("app")
    assert status.job_status.state == "RUNNING" and status.job_manager_deployment_status.value == "READY"
    recon = status.reconciliation_status
    assert recon.last_stable_spec == recon.last_reconciled_spec
    [run] = world.runs("app")
    assert status.job_status.job_id == run.job_id and run.restored_from is None
    assert run.completed, "stable only once the job completed a checkpoint"
    became_stable = world.clock.now()
    assert run.running_at is not None and became_stable - run.running_at >= 5, "and ran for the minimum time"
    assert world.store.status_writes[0][1] == "UPGRADING", "the intent is on record before the cluster starts"
    reasons = world.reasons("app")
    assert reasons.count("Submit") == 1 and "Stable" in reasons
    assert world.runtime.requests[0].generation == 1


def test_stability_is_timed_from_when_every_task_runs_not_from_the_job_state(world: World) -> None:
    world.flink.script("slow", JobScript(tasks_deploying=20))  # RUNNING at scheduling, tasks deploying for 20 s
    world.apply(application("app", args=["v1", "slow"]))
    world.run_until(lambda w: w.job_state("app") == "RUNNING")
    [job] = world.runs("app")
    assert job.running_at is not None
    world.run_until(settled("app", "STABLE"), what="STABLE")
    assert world.clock.now() >= job.running_at + 20 + 5, "5 s after the tasks run, not after the job state"


def test_a_job_that_never_checkpoints_never_becomes_stable(world: World) -> None:
    world.flink.script("stuck", JobScript(checkpoints=False))
    world.apply(application("app", args=["v1", "stuck"]))
    world.run_until(lambda w: w.job_state("app") == "RUNNING")
    world.run_for(120)
    assert world.lifecycle("app") == "DEPLOYED" and world.job_state("app") == "RUNNING"
    assert "Stable" not in world.reasons("app")


def test_without_checkpointing_running_for_the_minimum_time_is_enough(world: World) -> None:
    conf = {"execution.checkpointing.interval": None, "flinkops.stability.min-running-time": "20 s"}
    world.apply(application("app", conf=conf, mode="stateless"))
    world.run_until(lambda w: w.job_state("app") == "RUNNING")
    world.run_for(15)
    assert world.lifecycle("app") == "DEPLOYED"
    world.run_until(settled("app", "STABLE"), max_passes=20)
    [run] = world.runs("app")
    assert not run.completed


def test_a_job_that_throws_lands_in_failed_with_its_exception_and_its_cluster_is_released(world: World) -> None:
    cause = "java.lang.IllegalStateException: deliberate failure after 20 records"
    world.flink.script("failing", JobScript(fail_after=2, failure=cause))
    world.apply(application("failing", args=["failing"], conf={"restart-strategy.type": "none"}))
    world.run_until(settled("failing", "FAILED"))
    status = world.deployment_status("failing")
    assert status.job_status.state == "FAILED"
    assert status.error is not None and "deliberate failure after 20 records" in status.error
    assert any(e.type == "Warning" and e.reason == "Error" and cause in e.message for e in world.events("failing"))
    world.run_until(lambda w: w.runtime.cluster("failing") is None, max_passes=10, what="the cluster released")
    released = world.deployment_status("failing")
    assert released.deployment_history[-1].end_state == "FAILED"
    assert "ClusterReleased" in world.reasons("failing") and world.lifecycle("failing") == "FAILED"
    world.run_for(120)
    assert len(world.runs("failing")) == 1, "a failed job is reported, not restarted behind the user's back"


def test_a_main_that_throws_lands_in_failed(world: World) -> None:
    world.flink.script("bad-main", JobScript(fail_after=0, failure="java.lang.RuntimeException: main() refused"))
    world.apply(application("bad-main", args=["bad-main"]))
    world.run_until(settled("bad-main", "FAILED"))
    assert "main() refused" in (world.deployment_status("bad-main").error or "")


def test_a_missing_jar_is_an_error_on_the_resource_and_nothing_starts(world: World) -> None:
    world.provisioner.missing_jars.add("local:///opt/flink/usrlib/job.jar")
    world.apply(application("no-jar"))
    world.run_until(lambda w: bool(w.deployment_status("no-jar").error), max_passes=5)
    status = world.deployment_status("no-jar")
    assert status.error is not None and "does not exist" in status.error
    assert world.runtime.requests == [] and world.flink.started == []
    assert "ReconcileError" in world.reasons("no-jar")
    world.provisioner.missing_jars.clear()  # the jar shows up: the next retry deploys
    world.run_until(settled("no-jar", "STABLE"))
    assert world.deployment_status("no-jar").error is None


def test_a_deployment_whose_first_deploy_fails_shows_failed(world: World) -> None:
    world.provisioner.missing_jars.add("local:///opt/flink/usrlib/job.jar")
    world.apply(application("no-jar"))
    world.run_until(lambda w: bool(w.deployment_status("no-jar").error), max_passes=5)
    assert world.lifecycle("no-jar") == "FAILED"


def test_a_batch_job_finishes_records_its_result_and_releases_its_cluster(world: World) -> None:
    world.flink.script("batch", JobScript(finish_after=12, result={"records": "120"}))
    world.apply(application("ingest", args=["batch"], mode="stateless"))
    world.run_until(lambda w: w.job_state("ingest") == "FINISHED", what="FINISHED")
    world.run_until(lambda w: w.runtime.cluster("ingest") is None, max_passes=10, what="the cluster released")
    status = world.deployment_status("ingest")
    run = status.deployment_history[-1]
    assert (run.end_state, run.result) == ("FINISHED", {"records": "120"})
    assert run.job_duration_ms is not None and run.job_duration_ms >= 12_000
    assert world.lifecycle("ingest") == "STABLE" and "ClusterReleased" in world.reasons("ingest")
    world.run_for(300)
    assert len(world.runs("ingest")) == 1, "a finished batch job is never run again"


def test_delete_stops_the_running_job_and_keeps_its_checkpoints(world: World) -> None:
    deploy(world, application("app"))
    [run] = world.runs("app")
    world.delete("app")
    world.run_until(gone("app"), max_passes=5)
    assert world.runtime.cluster("app") is None and not run.alive
    assert world.flink.running() == []
    assert any(world.snapshots.stored(path) for _, path in run.completed), "checkpoints stay in storage"
    assert world.events("app") == [], "the resource and its events are gone"


def test_delete_of_a_suspended_deployment(world: World) -> None:
    deploy(world, application("app"))
    world.suspend("app")
    world.run_until(settled("app", "SUSPENDED"))
    deletes = len(world.runtime.deleted)
    world.delete("app")
    world.run_until(gone("app"), max_passes=5)
    assert len(world.runtime.deleted) == deletes, "nothing left to stop"


def test_an_invalid_change_is_reported_and_the_running_job_is_untouched(world: World) -> None:
    deploy(world, application("app"))
    [run] = world.runs("app")
    world.edit("app", job={"parallelism": 0})
    world.run_for(20)
    status = world.deployment_status("app")
    assert status.error is not None and status.error.startswith("ValidationError")
    assert world.reasons("app").count("ValidationError") == 1, "reported once, not every pass"
    assert world.runs("app") == [run] and run.alive and world.lifecycle("app") == "STABLE"
    world.edit("app", job={"parallelism": 1})
    world.run_for(10)
    assert world.deployment_status("app").error is None
    assert world.runs("app") == [run], "fixing the spec back changes nothing that runs"


def test_a_deployment_created_suspended_starts_nothing(world: World) -> None:
    world.apply(application("app", state="suspended"))
    world.run_until(settled("app", "SUSPENDED"), max_passes=5)
    assert world.runtime.requests == []
    status = world.status("app")
    assert isinstance(status, FlinkDeploymentStatus)
    world.resume("app")
    world.run_until(settled("app", "STABLE"))
    [run] = world.runs("app")
    assert run.restored_from is None


def test_a_failed_job_whose_jobmanager_exits_on_its_own_is_not_run_again(world: World) -> None:
    """Flink stops an application cluster's JobManager once its job ended; if that happens before flinkops
    released the cluster, the dead JobManager is the job's end, not a crash to recover from."""
    world.flink.script("broken", JobScript(fail_after=3, failure="java.lang.IllegalStateException: boom"))
    world.apply(application("ingest", args=["broken"], mode="stateless", conf={"restart-strategy.type": "none"}))
    world.run_until(lambda w: w.job_state("ingest") == "FAILED", what="FAILED")
    if world.runtime.cluster("ingest") is not None:
        world.runtime.kill_jobmanager("ingest")  # the JobManager shuts itself down after the job
    world.run_for(300)
    assert len(world.runs("ingest")) == 1, "a failed job is never run again on its own"
    assert world.lifecycle("ingest") == "FAILED" and world.runtime.cluster("ingest") is None
    assert "RecoverDeployment" not in world.reasons("ingest")
