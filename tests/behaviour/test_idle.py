"""A STABLE resource with nothing to do costs little: it is looked at once per reconcile interval (a minute by
default, ``kubernetes.operator.reconcile.interval``), nothing is written while nothing a user sees changes, and
what needs a look sooner still gets it at once: a dead process (of its cluster, or of a session job's session
cluster), a spec change, a due periodic snapshot. A failure that Flink handles inside the job shows in status
within the interval."""

from __future__ import annotations

from behaviour.steps import deploy, running_stable, settled
from fakes.flink import JobScript
from fakes.specs import application, session_cluster, session_job
from fakes.world import World
from flinkops.core.planner.steady import reconcile_interval

JOB = "FlinkSessionJob"


def quiet(world: World) -> tuple[int, int, int]:
    """Let a freshly stable world settle into its quiet passes; returns (passes, status writes, events) so far."""
    world.run_for(30)
    events = sum(len(world.events(r.metadata.name, r.kind)) for r in world.store.list_resources())
    return world.passes, len(world.store.status_writes), events


def test_a_stable_deployment_with_nothing_pending_is_looked_at_every_minute_and_never_written(world: World) -> None:
    deploy(world, application("app"))
    passes, writes, events = quiet(world)
    world.run_for(600)
    assert 9 <= world.passes - passes <= 11, "one pass a minute"
    assert len(world.store.status_writes) == writes, "nothing a user sees changed: no status write"
    assert len(world.events("app")) == events, "and no event"
    assert world.job_state("app") == "RUNNING" and world.lifecycle("app") == "STABLE"


def test_the_reconcile_interval_is_the_reference_operators_key(world: World) -> None:
    deploy(world, application("app", conf={"kubernetes.operator.reconcile.interval": "10 s"}))
    passes, writes, _ = quiet(world)
    world.run_for(600)
    assert 59 <= world.passes - passes <= 61, "every 10 s, as asked"
    assert len(world.store.status_writes) == writes


def test_a_dead_taskmanager_wakes_a_quiet_deployment_at_once(world: World) -> None:
    deploy(world, application("app"))
    quiet(world)
    [job] = world.runs("app")
    cluster = world.runtime.cluster("app")
    assert cluster is not None
    died_at = world.clock.now()
    world.runtime.kill_taskmanager("app")
    world.run_until(lambda w: len(cluster.alive("taskmanager")) == 1, what="a new TaskManager")
    assert world.clock.now() - died_at < 1, "replaced in the same second, not at the next scheduled pass"
    world.run_until(running_stable("app"))
    assert world.runs("app") == [job]


def test_a_job_that_fails_for_good_while_stable_shows_within_the_interval(world: World) -> None:
    world.flink.script("late", JobScript(fail_after=300, failure="java.lang.IllegalStateException: late failure"))
    deploy(world, application("late", args=["late"], conf={"restart-strategy.type": "none"}))
    [job] = world.runs("late")
    world.run_until(lambda w: job.state == "FAILED", what="the job failing in Flink")
    failed_at = world.clock.now()
    world.run_until(settled("late", "FAILED"), what="FAILED in status")
    assert world.clock.now() - failed_at <= 60, "seen at the next quiet pass at the latest"


def test_a_session_job_is_looked_at_at_once_when_its_session_cluster_loses_its_jobmanager(world: World) -> None:
    deploy(world, session_cluster("session"))
    world.apply(session_job("counter", "session"))
    world.run_until(settled("counter", "STABLE", kind=JOB), what="the session job STABLE")
    quiet(world)
    died_at = world.clock.now()
    world.runtime.kill_jobmanager("session")  # no HA: the session cluster is redeployed, empty
    world.run_until(lambda w: len(w.session_runs("session")) == 2, what="resubmitted")
    assert world.clock.now() - died_at < 15, "not a reconcile interval later"
    world.run_until(settled("counter", "STABLE", kind=JOB), what="STABLE again")


def test_an_unset_or_unreadable_interval_is_a_minute() -> None:
    assert reconcile_interval({}) == 60.0
    assert reconcile_interval({"kubernetes.operator.reconcile.interval": "2 min"}) == 120.0
    assert reconcile_interval({"kubernetes.operator.reconcile.interval": "soon"}) == 60.0
    assert reconcile_interval({"kubernetes.operator.reconcile.interval": "0"}) == 60.0


def test_a_stable_batch_job_is_looked_at_twice_a_second_its_end_is_what_its_user_waits_for(world: World) -> None:
    world.flink.script("batch", JobScript(finish_after=300, result={"records": "42"}))
    conf = {"execution.runtime-mode": "BATCH", "execution.checkpointing.interval": None}
    deploy(world, application("batch", args=["batch"], mode="stateless", conf=conf))
    [job] = world.runs("batch")
    world.run_for(30)  # stable, and past the pass that said so
    passes = world.passes
    world.run_for(120)
    assert 239 <= world.passes - passes <= 241, "every half second while it runs"
    world.run_until(lambda w: job.state == "FINISHED", what="the job finishing in Flink")
    finished_at = world.clock.now()
    world.run_until(lambda w: w.runtime.cluster("batch") is None, what="the cluster released")
    # Seen within 0.5 s, released once its result is read (Flink's 1 s REST cache): the pods then have the rest
    # of the 10 s goal to go (measured on the real node by tests/kubernetes/test_session_and_batch_on_node.py).
    assert world.clock.now() - finished_at <= 0.5 + 1.25 + 1, "seen within 0.5 s, released once its result is read"
    assert world.deployment_status("batch").deployment_history[-1].result == {"records": "42"}
    custom = {"execution.runtime-mode": "batch", "kubernetes.operator.reconcile.interval": "30 s"}
    assert reconcile_interval(custom) == 30.0, "the key still decides"
