"""What the controller records so a cost report is true: when each run's cluster was really gone (``releasedAt``,
after the runtime's delete returned, not when the delete was planned), what the run's cluster asked for
(``requested``) and how many checkpoints its job completed. On the fake world; a delete takes virtual time here,
as stopping real processes does."""

from __future__ import annotations

import pytest

from fakes.flink import JobScript
from fakes.specs import application
from fakes.world import World
from flinkops.api.models import DeploymentRecord


def _runs(world: World, name: str) -> list[DeploymentRecord]:
    return list(world.deployment_status(name).deployment_history)


def test_a_batch_runs_release_is_recorded_when_its_processes_are_gone_after_the_job_ended(world: World) -> None:
    world.runtime.stop_seconds = 4.0  # graceful stop of the JobManager and TaskManagers
    world.flink.script("batch", JobScript(finish_after=30, result={"records": "10"}))
    world.apply(application("ingest", args=["batch"], mode="stateless", conf={"taskmanager.numberOfTaskSlots": "2"}))
    world.run_until(lambda w: bool(w.runtime.released_at), what="the cluster released")
    world.run_for(5)  # the pass that released it has written its status
    run = _runs(world, "ingest")[-1]
    assert run.end_state == "FINISHED" and run.ended_at is not None
    gone = round(world.runtime.released_at[-1] * 1000)
    assert run.released_at == gone, "released_at is when the delete returned"
    # The idle tail holds the stop itself: the cluster cost money for those 4 s.
    assert run.released_at - run.ended_at >= 4000
    assert run.requested is not None
    assert (run.requested.task_managers, run.requested.task_slots, run.requested.job_managers) == (1, 2, 1)


def test_an_upgrade_releases_the_old_runs_cluster_and_not_the_new_one(world: World) -> None:
    world.apply(application("stream", mode="stateless"))
    world.run_until(lambda w: w.job_state("stream") == "RUNNING", what="running")
    world.edit("stream", job={"args": ["v2"], "parallelism": 3})
    world.run_until(lambda w: len(_runs(w, "stream")) == 2 and w.job_state("stream") == "RUNNING", what="v2 runs")
    first, second = _runs(world, "stream")
    assert first.released_at == round(world.runtime.released_at[0] * 1000)
    assert second.released_at is None, "the new run's cluster still runs"
    assert first.requested is not None and second.requested is not None
    assert (first.requested.task_managers, second.requested.task_managers) == (1, 3), "each run keeps its own"


def test_suspend_records_the_release_of_the_suspended_runs_cluster(world: World) -> None:
    world.runtime.stop_seconds = 2.0
    world.apply(application("stream"))
    world.run_until(lambda w: w.job_state("stream") == "RUNNING", what="running")
    world.run_for(5)  # checkpoints every virtual second
    world.suspend("stream")
    world.run_until(lambda w: w.lifecycle("stream") == "SUSPENDED", what="suspended")
    run = _runs(world, "stream")[-1]
    assert run.released_at == round(world.runtime.released_at[-1] * 1000)


def test_a_job_that_ends_records_how_many_checkpoints_it_completed(world: World) -> None:
    world.flink.script("bounded", JobScript(finish_after=20, result={"records": "5"}))
    world.apply(application("bounded", args=["bounded"]))  # checkpoints every virtual second
    world.run_until(lambda w: bool(w.runtime.released_at), what="the cluster released")
    world.run_for(5)
    run = _runs(world, "bounded")[-1]
    assert run.end_state == "FINISHED" and run.checkpoints is not None and run.checkpoints >= 10, run


def test_a_stable_jobs_checkpoints_are_not_worth_a_status_write_each(world: World) -> None:
    world.apply(application("stream"))
    world.run_until(lambda w: w.lifecycle("stream") == "STABLE", what="stable")
    writes = len(world.store.status_writes)
    world.run_for(600)
    assert len(world.store.status_writes) == writes


def test_a_runs_cluster_is_counted_from_when_it_was_asked_of_the_runtime(world: World) -> None:
    world.apply(application("stream"))
    world.run_until(lambda w: w.job_state("stream") == "RUNNING", what="running")
    run = _runs(world, "stream")[-1]
    assert run.deployed_at == round(world.runtime.deployed_at[-1] * 1000)
    assert run.deployed_at >= run.started_at


def test_a_running_jobs_usage_is_recorded_every_ten_minutes_and_at_its_end(world: World) -> None:
    """With Flink reporting its JVM metrics and checkpoint sizes, a stable job's run gets its used figures at most
    every ten minutes (one status write each), and once more when the job ends."""
    from flinkops.ports.flink import ClusterUsage

    world.flink.usage = lambda now: ClusterUsage(cpu_seconds=now * 0.5, memory_bytes=1 << 30)
    world.flink.checkpoint_sizes = (2 << 30, 1000)
    world.flink.script("bounded", JobScript(finish_after=2000, result={"records": "5"}))
    world.apply(application("bounded", args=["bounded"]))  # checkpoints every virtual second
    world.run_until(lambda w: w.lifecycle("bounded") == "STABLE", what="stable")
    world.run_for(30)
    writes = len(world.store.status_writes)
    world.run_for(1800)
    assert 2 <= len(world.store.status_writes) - writes <= 4, "a write per ten minutes, not per pass"
    run = _runs(world, "bounded")[-1]
    assert run.used_cpu_seconds is not None and run.used_gib_seconds is not None and run.usage_sampled_at
    assert run.state_gib_hours is not None and run.state_gib_hours > 0
    assert run.checkpoint_bytes is not None and run.checkpoint_bytes >= 1000 * 1000
    world.run_until(lambda w: bool(w.runtime.released_at), what="the cluster released")
    world.run_for(5)
    ended = _runs(world, "bounded")[-1]
    assert ended.end_state == "FINISHED" and ended.ended_at is not None
    assert ended.usage_sampled_at is not None and ended.usage_sampled_at >= ended.ended_at, "written at the end"
    assert ended.used_gib_seconds is not None
    assert ended.used_gib_seconds == pytest.approx((ended.usage_sampled_at - (run.usage_sampled_at or 0)) / 1000
                                                   + (run.used_gib_seconds or 0), rel=0.01)  # fmt: skip
