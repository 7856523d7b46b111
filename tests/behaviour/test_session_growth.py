"""Session clusters that grow (local runtime): TaskManagers are started when the session jobs need more slots
than the cluster has, up to ``slotmanager.number-of-slots.max``, and the ones started on demand are stopped
once idle for ``resourcemanager.taskmanager-timeout`` (Flink's own keys for its native resource manager, whose
behaviour this follows). A TaskManager that runs tasks is never stopped."""

from __future__ import annotations

from behaviour.steps import gone
from fakes.specs import session_cluster, session_job
from fakes.world import World

JOB = "FlinkSessionJob"


def running(*names: str) -> object:
    return lambda w: all(w.job_state(n, JOB) == "RUNNING" for n in names)


def taskmanagers(world: World) -> int:
    cluster = world.runtime.cluster("session")
    assert cluster is not None
    return len(cluster.alive("taskmanager"))


def test_jobs_that_need_more_slots_than_the_cluster_has_get_taskmanagers_started_for_them(world: World) -> None:
    world.runtime.elastic_sessions = True
    # GitOps order, and the second job needs more slots than the cluster starts with (1 TaskManager, 2 slots).
    world.apply(session_job("small", "session", parallelism=2))
    world.apply(session_job("big", "session", parallelism=3))
    world.apply(session_cluster("session"))
    world.run_until(running("small", "big"), what="both session jobs running")
    assert taskmanagers(world) == 3  # 5 slots needed, 2 per TaskManager
    assert sorted(j.parallelism for j in world.session_runs("session")) == [2, 3]
    events = [e.message for e in world.events("session")]
    assert any("starting 2 TaskManager(s)" in m for m in events), events


def test_taskmanagers_started_on_demand_are_released_when_idle_and_running_jobs_keep_running(world: World) -> None:
    world.runtime.elastic_sessions = True
    world.apply(session_cluster("session", conf={"resourcemanager.taskmanager-timeout": "30 s"}))
    world.apply(session_job("small", "session", parallelism=2))
    world.apply(session_job("big", "session", parallelism=2))
    world.run_until(running("small", "big"), what="both session jobs running")
    assert taskmanagers(world) == 2
    small = world.status("small", JOB).job_status.job_id
    world.delete("big", kind=JOB)
    world.run_until(gone("big", kind=JOB), what="big deleted")
    world.run_for(20)
    assert taskmanagers(world) == 2, "not idle long enough yet"
    world.run_for(40)
    assert taskmanagers(world) == 1, "the idle TaskManager started on demand is released"
    [job] = [j for j in world.session_runs("session") if j.job_id == small]
    assert job.state == "RUNNING" and world.status("small", JOB).job_status.job_id == small, "never restarted"


def test_the_cluster_grows_no_further_than_its_slot_limit(world: World) -> None:
    world.runtime.elastic_sessions = True
    world.apply(session_cluster("session", conf={"slotmanager.number-of-slots.max": "4"}))
    world.apply(session_job("a", "session", parallelism=2))
    world.apply(session_job("b", "session", parallelism=2))
    world.apply(session_job("c", "session", parallelism=2))
    world.run_until(running("a", "b"), what="two jobs running")
    world.run_for(60)
    assert taskmanagers(world) == 2 and world.job_state("c", JOB) != "RUNNING"
    events = [e.message for e in world.events("session")]
    assert any("slotmanager.number-of-slots.max" in m for m in events), events


def test_a_runtime_that_cannot_grow_leaves_the_taskmanager_count_alone(world: World) -> None:
    world.apply(session_cluster("session"))
    world.apply(session_job("big", "session", parallelism=3))
    world.run_for(60)
    assert taskmanagers(world) == 1 and world.job_state("big", JOB) != "RUNNING"
