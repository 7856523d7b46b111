"""A controller crash at any step of any action is a non-event.

Each scenario (an upgrade in each mode, suspend, resume, rollbacks, savepoints and checkpoints on demand,
retention, rescaling, recovery from dead processes, batch and failed jobs releasing their clusters, restore,
deletion, session jobs) runs twice: once without interruption, and once with the controller killed ``before``
writing the intent of a plan holding an action, or ``after`` executing it, then replaced by a new controller on
the same store, clusters, Flink and storage. Both runs must end the same way, as a user sees it: lifecycle, job
state, error or not, the jobs that ran (their versions, where each one's state came from, which still run),
how many savepoints were taken and disposed of, whether a cluster and the resource still exist. No job may run
twice, and no two jobs of one deployment at once.

``test_the_crash_points_cover_every_step_of_each_scenario`` keeps the matrix honest: every action a scenario's
uninterrupted run performs is in its list, and every listed point is reached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from behaviour.steps import Predicate, deploy, gone, no_job_ran_twice, running_stable, runs, settled
from fakes.flink import JobScript
from fakes.specs import application, session_cluster, session_job
from fakes.world import World
from flinkops.api.snapshot_paths import same_snapshot

ROLLBACK = {
    "kubernetes.operator.deployment.rollback.enabled": "true",
    "kubernetes.operator.deployment.readiness.timeout": "60 s",
}
HA = {"high-availability.type": "zookeeper", "high-availability.zookeeper.quorum": "127.0.0.1:2181"}
JOB = "FlinkSessionJob"
NO_PRESTART = {"flinkops.upgrade.prestart": "false"}


def _nothing(world: World) -> None:
    return None


@dataclass(frozen=True)
class Scenario:
    name: str
    prepare: Callable[[World], None]  # before the crash point is armed
    act: Callable[[World], object]  # what the user (or a fault) does
    done: Predicate  # when the outcome has settled
    points: tuple[str, ...]  # the action types whose steps are crash points
    subject: str = "app"
    kind: str = "FlinkDeployment"
    #: Crash points known to end differently, by (when, action, downtime label or "*"), with the reason (strict
    #: xfail).
    known: dict[tuple[str, str, str], str] = field(default_factory=dict)


# ------------------------------------------------------------------ scenario steps


def _deployed(mode: str = "last-state", **kw: Any) -> Callable[[World], None]:
    return lambda world: deploy(world, application("app", mode=mode, **kw))


def _lagging(prepare: Callable[[World], None]) -> Callable[[World], None]:
    """Flink's REST checkpoint statistics trail storage by 2.5 s while checkpoints complete every second, so the
    latest checkpoint Flink reports has often been subsumed (deleted) already, as with a real cache."""

    def lagging(world: World) -> None:
        world.flink.checkpoint_stats_lag = 2.5
        prepare(world)

    return lagging


def _refusing_prepare(prepare: Callable[[World], None]) -> Callable[[World], None]:
    """The runtime cannot hold a second cluster: the upgrade runs in the usual order."""

    def refusing(world: World) -> None:
        world.runtime.refuse_prepare()
        prepare(world)

    return refusing


def _slow_prepare(prepare: Callable[[World], None]) -> Callable[[World], None]:
    """The pre-started cluster never gets ready in time: the upgrade falls back after the bound."""

    def slow(world: World) -> None:
        world.runtime.prepare_delay = 1_000.0
        prepare(world)

    return slow


def _upgraded(world: World) -> None:
    world.edit("app", job={"args": ["v2"]})


def _suspended(mode: str) -> Callable[[World], None]:
    def prepare(world: World) -> None:
        deploy(world, application("app", mode=mode))
        world.suspend("app")
        world.run_until(settled("app", "SUSPENDED"))

    return prepare


def _failing_upgrade(script: JobScript) -> Callable[[World], None]:
    def prepare(world: World) -> None:
        world.flink.script("v3", script)
        deploy(world, application("app", mode="savepoint", args=["v2"], conf=ROLLBACK))
        world.edit("app", job={"args": ["v3"]})
        world.run_until(lambda w: len(w.runs("app")) == 2 and w.lifecycle("app") == "DEPLOYED", what="v3 up")

    return prepare


def _unstable_v2(world: World) -> None:
    deploy(world, application("app", mode="savepoint"))
    world.edit("app", job={"args": ["v2"]}, conf={"flinkops.stability.min-running-time": "10 min"})
    world.run_until(lambda w: settled("app", "DEPLOYED", generation=2)(w) and bool(w.runs("app")[-1].completed))


def _savepoint_taken(nonce: int) -> Predicate:
    def check(world: World) -> bool:
        info = world.deployment_status("app").job_status.savepoint_info
        return bool(info and info.last_savepoint and info.last_savepoint.trigger_nonce == nonce)

    return check


def _checkpoint_taken(world: World) -> bool:
    info = world.deployment_status("app").job_status.checkpoint_info
    return bool(info and info.last_checkpoint and info.last_checkpoint.trigger_nonce == 1)


def _retention_ready(world: World) -> None:
    conf = {
        "kubernetes.operator.savepoint.history.max.count": "1",
        "kubernetes.operator.savepoint.dispose-on-delete": "true",
    }
    deploy(world, application("app", mode="savepoint", conf=conf))
    world.request_savepoint("app")
    world.run_until(_savepoint_taken(1))


def _savepoint_on_record(world: World) -> None:
    deploy(world, application("app"))
    world.request_savepoint("app")
    world.run_until(_savepoint_taken(1))
    world.run_for(10)


def _restore_first_savepoint(world: World) -> None:
    world.restore("app", world.snapshots.all("savepoint")[0].path)


def _released(state: str) -> Predicate:
    def check(world: World) -> bool:
        status = world.deployment_status("app")
        history = status.deployment_history
        return world.runtime.cluster("app") is None and bool(history) and history[-1].end_state == state

    return check


def _running_batch(script: JobScript) -> Callable[[World], None]:
    def prepare(world: World) -> None:
        world.flink.script("v1", script)
        world.apply(application("app", mode="stateless"))
        world.run_until(lambda w: w.job_state("app") == "RUNNING")

    return prepare


def _session_running(world: World, mode: str = "last-state") -> None:
    deploy(world, session_cluster("session"))
    world.apply(session_job("app", "session", mode=mode))
    world.run_until(_session_job_running(1))


def _session_running_in(mode: str) -> Callable[[World], None]:
    return lambda world: _session_running(world, mode)


def _session_job_running(generation: int) -> Predicate:
    settle = settled("app", "STABLE", generation=generation, kind=JOB)
    return lambda w: settle(w) and w.job_state("app", JOB) == "RUNNING"


def _tm_back(world: World) -> bool:
    cluster = world.runtime.cluster("app")
    return cluster is not None and len(cluster.alive("taskmanager")) == 1 and running_stable("app")(world)


def _ha_back(world: World) -> bool:
    cluster = world.runtime.cluster("app")
    return cluster is not None and len(cluster.alive("jobmanager")) == 2 and running_stable("app")(world)


def _scaled(world: World) -> bool:
    [job] = world.runs("app")
    return job.parallelism == 2 and running_stable("app", 2)(world)


SCENARIOS = [
    Scenario(
        "first-deploy",
        _nothing,
        lambda w: w.apply(application("app")),
        settled("app", "STABLE"),
        ("DeployCluster",),
    ),
    # Savepoint and last-state upgrades pre-start the new cluster (PrepareCluster) unless opted out.
    Scenario(
        "savepoint-upgrade",
        _deployed("savepoint"),
        _upgraded,
        running_stable("app", 2),
        ("PrepareCluster", "TriggerSavepoint", "DeleteCluster", "DeployCluster"),
    ),
    Scenario(
        "savepoint-upgrade-without-prestart",
        _deployed("savepoint", conf=NO_PRESTART),
        _upgraded,
        running_stable("app", 2),
        ("TriggerSavepoint", "DeleteCluster", "DeployCluster"),
    ),
    Scenario(
        "savepoint-upgrade-prestart-refused",
        _refusing_prepare(_deployed("savepoint")),
        _upgraded,
        running_stable("app", 2),
        ("PrepareCluster", "TriggerSavepoint", "DeleteCluster", "DeployCluster"),
    ),
    Scenario(
        "savepoint-upgrade-prestart-timeout",
        _slow_prepare(_deployed("savepoint")),
        _upgraded,
        running_stable("app", 2),
        ("PrepareCluster", "TriggerSavepoint", "DeleteCluster", "DeployCluster"),
    ),
    Scenario(
        "last-state-upgrade",
        _deployed("last-state"),
        _upgraded,
        running_stable("app", 2),
        ("PrepareCluster", "DeleteCluster", "DeployCluster"),
    ),
    Scenario(
        "last-state-upgrade-without-prestart",
        _deployed("last-state", conf=NO_PRESTART),
        _upgraded,
        running_stable("app", 2),
        ("DeleteCluster", "DeployCluster"),
    ),
    Scenario(
        "last-state-upgrade-lagging-stats",
        _lagging(_deployed("last-state")),
        _upgraded,
        running_stable("app", 2),
        ("PrepareCluster", "DeleteCluster", "DeployCluster"),
    ),
    Scenario(
        "stateless-upgrade",
        _deployed("stateless"),
        _upgraded,
        running_stable("app", 2),
        ("DeleteCluster", "DeployCluster"),
    ),
    Scenario(
        "savepoint-suspend",
        _deployed("savepoint"),
        lambda w: w.suspend("app"),
        settled("app", "SUSPENDED"),
        ("TriggerSavepoint", "DeleteCluster"),
    ),
    Scenario(
        "last-state-suspend",
        _deployed("last-state"),
        lambda w: w.suspend("app"),
        settled("app", "SUSPENDED"),
        ("DeleteCluster",),
    ),
    Scenario(
        "last-state-suspend-lagging-stats",
        _lagging(_deployed("last-state")),
        lambda w: w.suspend("app"),
        settled("app", "SUSPENDED"),
        ("DeleteCluster",),
    ),
    Scenario(
        "resume",
        _suspended("savepoint"),
        lambda w: w.resume("app"),
        running_stable("app", 3),
        ("DeployCluster",),
    ),
    Scenario(
        "rollback-on-job-failure",
        _failing_upgrade(JobScript(fail_after=3)),
        _nothing,
        lambda w: w.lifecycle("app") == "ROLLED_BACK" and w.job_state("app") == "RUNNING",
        ("DeleteCluster", "DeployCluster"),
    ),
    Scenario(
        "rollback-on-job-failure-lagging-stats",
        _lagging(_failing_upgrade(JobScript(fail_after=4))),
        _nothing,
        lambda w: w.lifecycle("app") == "ROLLED_BACK" and w.job_state("app") == "RUNNING",
        ("DeleteCluster", "DeployCluster"),
    ),
    Scenario(
        "rollback-on-readiness-timeout",
        _failing_upgrade(JobScript(fail_after=2, crash_loop=True)),
        _nothing,
        lambda w: w.lifecycle("app") == "ROLLED_BACK" and w.job_state("app") == "RUNNING",
        ("DeleteCluster", "DeployCluster"),
    ),
    Scenario(
        "manual-rollback",
        _unstable_v2,
        lambda w: w.rollback("app"),
        lambda w: w.lifecycle("app") == "ROLLED_BACK" and w.job_state("app") == "RUNNING",
        ("DeleteCluster", "DeployCluster"),
    ),
    Scenario(
        "manual-savepoint",
        _deployed("savepoint"),
        lambda w: w.request_savepoint("app"),
        _savepoint_taken(1),
        ("TriggerSavepoint",),
    ),
    Scenario(
        "manual-checkpoint",
        _deployed("last-state"),
        lambda w: w.request_checkpoint("app"),
        _checkpoint_taken,
        ("TriggerCheckpoint",),
    ),
    Scenario(
        "retention",
        _retention_ready,
        lambda w: w.request_savepoint("app"),
        lambda w: _savepoint_taken(2)(w) and len(w.snapshots.disposed) == 1,
        ("TriggerSavepoint", "DisposeSnapshots"),
    ),
    Scenario(
        "scale-in-place",
        _deployed(conf={"jobmanager.scheduler": "adaptive"}),
        lambda w: w.edit("app", job={"parallelism": 2}),
        _scaled,
        ("ScaleInPlace",),
    ),
    Scenario(
        "jobmanager-recovery",
        _deployed("last-state"),
        lambda w: w.runtime.kill_jobmanager("app"),
        lambda w: len(w.runs("app")) == 2 and running_stable("app")(w),
        ("DeleteCluster", "DeployCluster"),
    ),
    Scenario(
        "taskmanager-replacement",
        _deployed("last-state"),
        lambda w: w.runtime.kill_taskmanager("app"),
        _tm_back,
        ("ReplaceMissingProcesses",),
    ),
    Scenario(
        "ha-failover",
        _deployed(conf=HA, jobmanager_replicas=2),
        lambda w: w.runtime.kill_jobmanager("app"),
        _ha_back,
        ("ReplaceMissingProcesses",),
    ),
    Scenario(
        "batch-job-finished",
        _running_batch(JobScript(finish_after=10, result={"records": "100"})),
        _nothing,
        _released("FINISHED"),
        ("DeleteCluster",),
    ),
    Scenario(
        "failed-job-released",
        _running_batch(JobScript(fail_after=10)),
        _nothing,
        _released("FAILED"),
        ("DeleteCluster",),
    ),
    Scenario(
        "restore-savepoint",
        _savepoint_on_record,
        _restore_first_savepoint,
        running_stable("app", 3),
        ("DeleteCluster", "DeployCluster"),
    ),
    Scenario(
        "delete",
        _deployed(),
        lambda w: w.delete("app"),
        gone("app"),
        ("DeleteCluster", "RemoveResource"),
    ),
    Scenario(
        "session-job-submit",
        lambda w: deploy(w, session_cluster("session")),
        lambda w: w.apply(session_job("app", "session")),
        _session_job_running(1),
        ("SubmitSessionJob",),
        kind=JOB,
    ),
    Scenario(
        "session-job-upgrade",
        _session_running,
        lambda w: w.edit("app", kind=JOB, job={"args": ["v2"]}),
        _session_job_running(2),
        ("CancelSessionJob", "SubmitSessionJob"),
        kind=JOB,
    ),
    Scenario(
        "session-job-upgrade-lagging-stats",
        _lagging(_session_running),
        lambda w: w.edit("app", kind=JOB, job={"args": ["v2"]}),
        _session_job_running(2),
        ("CancelSessionJob", "SubmitSessionJob"),
        kind=JOB,
    ),
    Scenario(
        "session-job-savepoint-upgrade",
        _session_running_in("savepoint"),
        lambda w: w.edit("app", kind=JOB, job={"args": ["v2"]}),
        _session_job_running(2),
        ("TriggerSavepoint", "SubmitSessionJob"),
        kind=JOB,
    ),
    Scenario(
        "session-job-savepoint-suspend",
        _session_running_in("savepoint"),
        lambda w: w.suspend("app", kind=JOB),
        settled("app", "SUSPENDED", kind=JOB),
        ("TriggerSavepoint",),
        kind=JOB,
    ),
    Scenario(
        "session-job-lost-by-its-cluster",
        _session_running,
        lambda w: w.runtime.kill_jobmanager("session"),
        lambda w: len(w.session_runs("session")) == 2 and _session_job_running(1)(w),
        ("DeleteCluster", "DeployCluster", "SubmitSessionJob"),
        kind=JOB,
    ),
    Scenario(
        "session-job-suspend",
        _session_running,
        lambda w: w.suspend("app", kind=JOB),
        settled("app", "SUSPENDED", kind=JOB),
        ("CancelSessionJob",),
        kind=JOB,
    ),
    Scenario(
        "session-job-delete",
        _session_running,
        lambda w: w.delete("app", kind=JOB),
        gone("app", JOB),
        ("CancelSessionJob", "RemoveResource"),
        kind=JOB,
    ),
]
BY_NAME = {s.name: s for s in SCENARIOS}


def outcome(world: World, scenario: Scenario) -> dict[str, Any]:
    """What a user sees once the scenario settled."""
    resource = world.resource(scenario.subject, scenario.kind)
    status = resource.status if resource is not None else None
    jobs = world.runs(scenario.subject) if scenario.kind != JOB else world.session_runs("session")
    current = next((j for j in reversed(jobs) if status and j.job_id == status.job_status.job_id), None)
    recorded = status.job_status.upgrade_savepoint_path if status else None
    return {
        "resource": resource is not None,
        "lifecycle": world.lifecycle(scenario.subject, scenario.kind),
        "job state": world.job_state(scenario.subject, scenario.kind),
        "error": bool(status and status.error),
        "restore point in storage": bool(
            status is None
            or not status.job_status.upgrade_savepoint_path
            or world.snapshots.stored(status.job_status.upgrade_savepoint_path)
        ),
        "status names what the job restored": current is None
        or current.restored_from == recorded
        or same_snapshot(current.restored_from, recorded),
        "runs": runs(world, jobs),
        "savepoints taken": sum(1 for e in world.snapshots.ledger.values() if e.snapshot.kind == "savepoint"),
        "disposed": len(world.snapshots.disposed),
        "cluster": world.runtime.cluster(scenario.subject) is not None,
        "prepared cluster left": world.runtime.prepared(scenario.subject) is not None,
    }


def play(scenario: Scenario, crash: tuple[str, str] | None = None, down: float = 0.0) -> World:
    world = World(restart_delay=down)
    scenario.prepare(world)
    world.steps.clear()
    if crash is not None:
        world.crash_at(*crash)
    scenario.act(world)
    world.run_until(scenario.done, what=f"{scenario.name} done")
    return world


_CALM: dict[str, tuple[World, dict[str, Any]]] = {}


def calm(scenario: Scenario) -> tuple[World, dict[str, Any]]:
    """The uninterrupted run of a scenario (once per test session)."""
    if scenario.name not in _CALM:
        world = play(scenario)
        _CALM[scenario.name] = (world, outcome(world, scenario))
    return _CALM[scenario.name]


#: How long the controller stays dead: restarted at once, or after Flink went on for a few seconds (savepoints
#: complete, checkpoints are taken and subsumed, jobs end) with nobody watching.
DOWNTIMES = {"at-once": 0.0, "down-3s": 3.0}


def _matrix() -> list[Any]:
    params = []
    for scenario in SCENARIOS:
        for action in scenario.points:
            for when in ("before", "after"):
                if (when, action) == ("after", "RemoveResource"):
                    continue  # nothing of the controller runs after the resource is gone
                for label, down in DOWNTIMES.items():
                    marks = []
                    known = scenario.known.get((when, action, label)) or scenario.known.get((when, action, "*"))
                    if known:
                        marks.append(pytest.mark.xfail(strict=True, reason=known))
                    ident = f"{scenario.name}-{when}-{action}-{label}"
                    params.append(pytest.param(scenario.name, when, action, down, id=ident, marks=marks))
    return params


@pytest.mark.parametrize(("name", "when", "action", "down"), _matrix())
def test_a_controller_crash_at_any_step_ends_as_without_it(name: str, when: str, action: str, down: float) -> None:
    scenario = BY_NAME[name]
    _, expected = calm(scenario)
    world = play(scenario, crash=(when, action), down=down)
    assert [(c.when, c.action) for c in world.crashes] == [(when, action)], "the controller died there"
    assert world.controllers == 2
    assert outcome(world, scenario) == expected
    no_job_ran_twice(world)


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_the_crash_points_cover_every_step_of_each_scenario(name: str) -> None:
    scenario = BY_NAME[name]
    world, _ = calm(scenario)
    performed = {action for _, action in world.steps}
    assert performed == set(scenario.points), "the matrix lists exactly the actions this scenario performs"
    no_job_ran_twice(world)


# ------------------------------------------------------------------ the write-ahead log, as a user sees it


@pytest.mark.parametrize(
    "point",
    ["after:TriggerSavepoint", "before:DeleteCluster", "after:DeleteCluster", "after:DeployCluster"],
    ids=["savepoint-triggered", "savepoint-done-not-recorded", "old-cluster-deleted", "new-cluster-starting"],
)
def test_a_controller_killed_mid_upgrade_leaves_the_intent_on_record_and_its_successor_finishes(point: str) -> None:
    when, action = point.split(":")
    world = World()
    deploy(world, application("app", mode="savepoint"))
    [old] = world.runs("app")
    world.crash_at(when, action)
    world.edit("app", job={"args": ["v2"]})
    world.run_until(lambda w: bool(w.crashes), what="the crash")
    assert world.deployment_status("app").reconciliation_status.state.value == "UPGRADING"
    world.run_until(running_stable("app", 2), what="the upgrade finished")
    assert [r.args for r in world.runs("app")] == [("v1",), ("v2",)] and not old.alive
    cluster = world.runtime.cluster("app")
    assert cluster is not None and cluster.request.generation == 2, "exactly one new cluster"
    no_job_ran_twice(world)


def test_an_intent_that_was_never_acted_on_is_carried_out_with_the_recorded_job_id() -> None:
    world = World()
    world.runtime.refuse_deploys()
    world.apply(application("app"))
    world.run_until(lambda w: bool(w.deployment_status("app").error), what="the deploy refused")
    recorded = world.deployment_status("app").job_status.job_id
    assert recorded is not None and world.lifecycle("app") == "UPGRADING"
    world.restart_controller()
    world.runtime.allow_deploys()
    world.run_until(settled("app", "STABLE"), what="STABLE")
    [job] = world.runs("app")
    assert job.job_id == recorded, "the job id written ahead is the one that runs"


@pytest.mark.parametrize(
    ("name", "action", "reason"),
    [
        ("first-deploy", "DeployCluster", "Submit"),
        ("rollback-on-job-failure", "DeployCluster", "Rollback"),
        ("jobmanager-recovery", "DeployCluster", "RecoverDeployment"),
        ("retention", "DisposeSnapshots", "SavepointRetention"),
    ],
)
def test_a_crash_after_acting_keeps_the_events_of_what_was_done(name: str, action: str, reason: str) -> None:
    scenario = BY_NAME[name]
    world = play(scenario, crash=("after", action))
    assert world.crashes and reason in world.reasons(scenario.subject, scenario.kind)
