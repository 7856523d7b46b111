"""Savepoints and checkpoints on demand (nonces) and on a schedule, and savepoint retention: by count and age,
with and without disposing of the data, also while the job is stopped, never touching what a restore needs."""

from __future__ import annotations

from behaviour.steps import deploy, running_stable, settled
from fakes.flink import JobScript
from fakes.specs import application
from fakes.world import World

PERIODIC = {"kubernetes.operator.periodic.savepoint.interval": "3 s"}
DISPOSE = {"kubernetes.operator.savepoint.dispose-on-delete": "true"}


def history(world: World, name: str = "app") -> list[str]:
    info = world.deployment_status(name).job_status.savepoint_info
    return [s.location for s in info.savepoint_history] if info else []


# ------------------------------------------------------------------ on demand


def test_a_savepoint_nonce_takes_one_manual_savepoint_without_restarting(world: World) -> None:
    deploy(world, application("app", mode="savepoint"))
    [job] = world.runs("app")
    nonce = world.request_savepoint("app")

    def taken(w: World) -> bool:
        info = w.deployment_status("app").job_status.savepoint_info
        return bool(info and info.last_savepoint and info.last_savepoint.trigger_nonce == nonce)

    world.run_until(taken, what="the savepoint")
    info = world.deployment_status("app").job_status.savepoint_info
    assert info is not None and info.last_savepoint is not None
    location = info.last_savepoint.location
    assert info.last_savepoint.trigger_type == "MANUAL" and world.snapshots.stored(location) is not None
    assert world.runs("app") == [job] and job.alive, "no restart"
    world.run_for(60)
    assert len(world.snapshots.all("savepoint")) == 1, "a nonce is served once"
    assert "SavepointCompleted" in world.reasons("app")


def test_a_checkpoint_nonce_takes_a_checkpoint(world: World) -> None:
    world.apply(application("app", conf={"execution.checkpointing.interval": "10 min"}))
    world.run_until(lambda w: w.job_state("app") == "RUNNING")
    [job] = world.runs("app")
    before = len(job.completed)
    nonce = world.request_checkpoint("app")

    def taken(w: World) -> bool:
        info = w.deployment_status("app").job_status.checkpoint_info
        return bool(info and info.last_checkpoint and info.last_checkpoint.trigger_nonce == nonce)

    world.run_until(taken, what="the checkpoint")
    assert len(job.completed) == before + 1 and world.runs("app") == [job]
    assert "CheckpointCompleted" in world.reasons("app")


def test_a_savepoint_nonce_while_the_job_restarts_waits_until_it_runs(world: World) -> None:
    deploy(world, application("app", mode="savepoint"))
    world.runtime.kill_taskmanager("app")
    nonce = world.request_savepoint("app")
    world.run_until(running_stable("app"), what="running again")

    def taken(w: World) -> bool:
        info = w.deployment_status("app").job_status.savepoint_info
        return bool(info and info.last_savepoint and info.last_savepoint.trigger_nonce == nonce)

    world.run_until(taken, what="the deferred savepoint")
    assert len(world.snapshots.all("savepoint")) == 1


def test_a_savepoint_nonce_for_a_job_that_does_not_run_is_reported(world: World) -> None:
    world.flink.script("v1", JobScript(fail_after=3))
    world.apply(application("app"))
    world.run_until(lambda w: w.runtime.cluster("app") is None and w.lifecycle("app") == "FAILED")
    world.request_savepoint("app")
    world.run_for(10)
    assert any(e.reason == "SavepointError" and "not running" in e.message for e in world.events("app"))
    assert world.snapshots.all("savepoint") == []


def test_a_failed_manual_savepoint_is_reported_and_the_job_keeps_running(world: World) -> None:
    deploy(world, application("app"))
    [job] = world.runs("app")
    world.flink.fail_savepoints(1, "java.io.IOException: bucket refused the write")
    world.request_savepoint("app")
    world.run_until(lambda w: "SavepointError" in w.reasons("app"), what="the failure")
    assert any("bucket refused" in e.message for e in world.events("app"))
    info = world.deployment_status("app").job_status.savepoint_info
    assert info is not None and info.trigger_id is None, "the trigger is cleared: the next request can go"
    assert job.alive and world.lifecycle("app") == "STABLE"


# ------------------------------------------------------------------ periodic, and retention


def test_periodic_savepoints_are_trimmed_to_the_max_count_and_disposed(world: World) -> None:
    conf = {**PERIODIC, **DISPOSE, "kubernetes.operator.savepoint.history.max.count": "2"}
    deploy(world, application("app", mode="savepoint", conf=conf))
    world.run_until(lambda w: w.reasons("app").count("SavepointRetention") >= 2, what="two retention passes")
    kept = history(world)
    info = world.deployment_status("app").job_status.savepoint_info
    assert info is not None and 1 <= len(kept) <= 2
    assert all(s.trigger_type == "PERIODIC" for s in info.savepoint_history)
    in_storage = {s.path for s in world.snapshots.all("savepoint")}
    assert set(kept) <= in_storage, "kept savepoints are still in storage"
    assert len(in_storage) <= 3, f"trimmed savepoints are disposed (one may be in flight): {in_storage}"
    assert world.snapshots.disposed and not set(world.snapshots.disposed) & in_storage

    # Retention keeps working while the job is stopped, and never removes the savepoint it would resume from.
    world.suspend("app")
    world.run_until(settled("app", "SUSPENDED"))
    resume_from = world.deployment_status("app").job_status.upgrade_savepoint_path
    assert resume_from is not None
    world.run_for(60)
    assert world.snapshots.stored(resume_from) is not None
    world.resume("app")
    world.run_until(running_stable("app", 3))
    assert world.runs("app")[-1].restored_from == resume_from


def test_periodic_savepoints_on_a_cron_schedule(world: World) -> None:
    deploy(world, application("app", conf={"kubernetes.operator.periodic.savepoint.interval": "0 * * * * ?"}))
    world.run_for(185)  # the clock starts on a minute: savepoints are due at +60 s, +120 s and +180 s
    taken = [s.snapshot.time_ms for s in world.snapshots.all("savepoint")]
    assert len(taken) == 3
    start_ms = world.runs("app")[0].submitted_at * 1000
    assert [round((t - start_ms) / 60_000) for t in taken] == [1, 2, 3]
    assert all((t - start_ms) % 60_000 < 6_000 for t in taken), "within one pass of the minute"


def test_retention_by_age_disposes_old_savepoints_and_keeps_the_newest(world: World) -> None:
    conf = {**PERIODIC, **DISPOSE, "kubernetes.operator.savepoint.history.max.age": "10 s"}
    deploy(world, application("app", conf=conf))
    world.run_for(40)
    info = world.deployment_status("app").job_status.savepoint_info
    assert info is not None and info.savepoint_history
    now_ms = world.clock.now_ms()
    assert all(now_ms - s.time_stamp <= 10_000 + 3_000 for s in info.savepoint_history), "old entries go"
    assert len(world.snapshots.disposed) >= 5
    assert info.last_savepoint is not None and world.snapshots.stored(info.last_savepoint.location) is not None


def test_retention_also_trims_while_the_job_is_suspended(world: World) -> None:
    deploy(world, application("app", mode="savepoint", conf={**PERIODIC, **DISPOSE}))
    world.run_until(lambda w: len(history(w)) >= 3, what="three savepoints")
    world.suspend("app")
    world.run_until(settled("app", "SUSPENDED"))
    resume_from = world.deployment_status("app").job_status.upgrade_savepoint_path
    assert resume_from is not None and len(history(world)) >= 4
    world.edit("app", conf={"kubernetes.operator.savepoint.history.max.count": "1"})
    world.run_for(10)
    assert history(world) == [resume_from], "trimmed while nothing runs, keeping what the resume needs"
    assert [s.path for s in world.snapshots.all("savepoint")] == [resume_from]
    assert len(world.runtime.requests) == 1, "and nothing was started for it"


def test_without_dispose_on_delete_the_history_is_trimmed_but_the_data_kept(world: World) -> None:
    conf = {**PERIODIC, "kubernetes.operator.savepoint.history.max.count": "2"}
    deploy(world, application("app", conf=conf))
    world.run_until(lambda w: "SavepointRetention" in w.reasons("app"))
    world.run_for(15)
    assert len(history(world)) <= 2 and world.snapshots.disposed == []
    assert len(world.snapshots.all("savepoint")) > 2
    assert any("data kept" in e.message for e in world.events("app"))


def test_periodic_checkpoints_are_triggered_on_their_schedule(world: World) -> None:
    conf = {"execution.checkpointing.interval": "10 min", "kubernetes.operator.periodic.checkpoint.interval": "5 s"}
    deploy(world, application("app", conf=conf), "DEPLOYED", "STABLE")
    [job] = world.runs("app")
    world.run_for(30)
    info = world.deployment_status("app").job_status.checkpoint_info
    assert info is not None and info.last_checkpoint is not None and info.last_checkpoint.trigger_type == "PERIODIC"
    assert len(job.completed) >= 4, "a checkpoint every 5 s, although Flink's own interval is 10 min"
    assert world.lifecycle("app") == "STABLE"


def test_deleting_a_deployment_keeps_its_savepoints(world: World) -> None:
    deploy(world, application("app", mode="savepoint", conf=DISPOSE))
    world.request_savepoint("app")
    world.run_until(lambda w: bool(w.snapshots.all("savepoint")))
    world.delete("app")
    world.run_until(lambda w: w.resource("app") is None)
    assert len(world.snapshots.all("savepoint")) == 1 and world.snapshots.disposed == []
