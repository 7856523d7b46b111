"""Crash loops are failures, not churn: a JobManager that exits on its own before its job ever ran (the local
runtime reports it as ``StartFailed``, with the exit code and the log's root cause) is started again after 10 s,
20 s, 40 s (``flinkops.crash-loop.backoff``, doubling up to ``flinkops.crash-loop.max-backoff``), three times
(``flinkops.crash-loop.retries``); ``status.error`` holds the cause all along, a Warning event counts the tries,
and after the budget the deployment is FAILED and stays so until its spec changes, or it rolls back to the last
stable spec when rollback is on. A failure Flink reports as the program's own (the entry class or the jar cannot
be loaded) cannot end otherwise on a retry and is FAILED at once.

The Kubernetes runtime's CrashLoop (the kubelet restarts the container itself) is in ``test_cluster_faults.py``."""

from __future__ import annotations

import itertools

import pytest

from behaviour.steps import deploy, restored, running_stable, settled
from fakes.specs import application, session_cluster
from fakes.world import World
from flinkops.api.loader import dump_resource
from flinkops.api.models import FlinkDeploymentStatus, JobManagerDeploymentStatus
from flinkops.cli.listing import _causes
from flinkops.errors import ClusterFault, ErrorReason, FlinkopsError, RuntimeFailure
from flinkops.ports import ClusterKey, ResourceKey
from flinkops.service.resources import ResourceView
from flinkops.service.waiting import wait_settled

CAUSE = (
    "JobManager process exited with code 1 after 4 s: ProgramInvocationException: The program's entry "
    "point class 'com.example.Nope' was not found in the jar file (root cause: java.lang.ClassNotFoundException: "
    "com.example.Nope); log kept in /tmp/x/log/crashed/jobmanager-0-1"
)
TRANSIENT = ClusterFault(ErrorReason.START_FAILED, "jobmanager", CAUSE)
PERMANENT = ClusterFault(ErrorReason.START_FAILED, "jobmanager", CAUSE, retryable=False)
# The new spec's cluster starts after the old job stops (no pre-started cluster), as a crash at start needs.
ROLLBACK = {"kubernetes.operator.deployment.rollback.enabled": "true", "flinkops.upgrade.prestart": "false"}


def tries(world: World, name: str = "app") -> list[str]:
    return [e.message for e in world.events(name) if e.type == "Warning" and e.reason == "StartFailed"]


def gave_up_after_three_backoffs(world: World, name: str) -> FlinkDeploymentStatus:
    """Assert the default budget was spent: four starts 10 s, 20 s, 40 s apart and the cause with "4 times" in
    ``status.error``; returns that status."""
    starts = world.runtime.deployed_at
    assert len(starts) == 4, "the first start and three retries"
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    for gap, backoff in zip(gaps, (10, 20, 40), strict=True):
        assert backoff <= gap <= backoff + 3, f"retries wait 10 s, 20 s, 40 s (plus a pass): {gaps}"
    status = world.deployment_status(name)
    assert status.error is not None and CAUSE in status.error and "4 times" in status.error
    assert status.error_reason == ErrorReason.START_FAILED
    return status


def test_a_jobmanager_that_dies_at_start_is_retried_with_exponential_backoff_and_then_fails(world: World) -> None:
    world.runtime.crash_at_start("app", TRANSIENT)
    world.apply(application("app"))
    world.run_until(lambda w: len(w.runtime.requests) == 2, what="the first retry")
    status = world.deployment_status("app")
    assert status.error is not None and CAUSE in status.error, "the cause is told from the first failure on"
    assert status.error_reason == ErrorReason.START_FAILED

    world.run_until(settled("app", "FAILED"), what="FAILED after the retry budget")
    status = gave_up_after_three_backoffs(world, "app")
    assert status.job_manager_deployment_status == JobManagerDeploymentStatus.ERROR
    told = tries(world)
    assert [("tried 1 time" in m, "tried 4 times" in m) for m in (told[0], told[-1])] == [(True, False), (False, True)]
    assert "retrying in 10 s" in told[0] and "giving up" in told[-1]
    assert world.runtime.cluster("app") is None, "nothing is left running for the dead JobManager"

    world.run_for(900)
    assert len(world.runtime.requests) == 4 and world.lifecycle("app") == "FAILED", "no start after the budget"
    assert len(tries(world)) == 4, "told once per try"

    world.runtime.crash_at_start("app", None)
    world.edit("app", job={"args": ["v2"]})  # the fix
    world.run_until(running_stable("app", 2), what="the fixed spec STABLE")
    assert world.deployment_status("app").error is None and len(world.runtime.requests) == 5


def test_between_tries_the_deployment_waits_with_its_error_instead_of_flipping_through_upgrades(world: World) -> None:
    world.runtime.crash_at_start("app", TRANSIENT)
    world.apply(application("app"))
    world.run_until(lambda w: bool(tries(w)), what="the first failure")
    seen = set()
    for _ in range(9):  # the 10 s wait before the first retry
        world.run_for(1)
        seen.add(world.lifecycle("app"))
        assert world.deployment_status("app").error is not None
    assert seen == {"DEPLOYED"} and len(world.runtime.requests) == 1


def test_a_stop_that_fails_after_the_failure_was_recorded_still_waits_out_the_backoff(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failed start is on record (write-ahead) but stopping what is left of its cluster fails once: the next
    pass stops it and waits out the backoff instead of taking the dead JobManager for one to recover at once."""
    world.runtime.crash_at_start("app", TRANSIENT)
    delete = world.runtime.delete
    failed: list[bool] = []

    def fails_once(key: ClusterKey, *, keep_prepared: bool = False) -> None:
        if not failed:
            failed.append(True)
            raise RuntimeFailure("could not stop the processes (test)")
        delete(key, keep_prepared=keep_prepared)

    monkeypatch.setattr(world.runtime, "delete", fails_once)
    world.apply(application("app"))
    world.run_until(lambda w: len(w.runtime.requests) == 2, what="the retry")
    first, second = world.runtime.deployed_at
    assert failed and 10 <= second - first <= 14, f"the backoff holds ({second - first} s)"
    assert len(tries(world)) == 1, "the failure told once"


def test_a_jobmanager_that_fails_once_and_then_starts_becomes_stable_and_drops_the_error(world: World) -> None:
    world.runtime.crash_at_start("app", TRANSIENT, times=1)
    world.apply(application("app"))
    world.run_until(running_stable("app"), what="STABLE on the retry")
    assert len(world.runtime.requests) == 2 and world.deployment_status("app").error is None
    assert len(tries(world)) == 1


def test_a_failure_of_the_program_itself_is_not_retried(world: World) -> None:
    world.runtime.crash_at_start("app", PERMANENT)
    world.apply(application("app"))
    passes = world.run_until(settled("app", "FAILED"), what="FAILED")
    assert passes <= 3, "known at the first pass that sees the JobManager gone"
    status = world.deployment_status("app")
    assert status.error is not None and CAUSE in status.error and status.error_reason == ErrorReason.START_FAILED
    [told] = tries(world)
    assert "tried 1 time" in told and "not retried" in told
    world.run_for(600)
    assert len(world.runtime.requests) == 1


@pytest.mark.parametrize(("retries", "backoff", "starts", "gap"), [("0", "10 s", 1, None), ("1", "2 s", 2, 2.0)])
def test_the_budget_and_backoff_are_set_per_deployment(
    world: World, retries: str, backoff: str, starts: int, gap: float | None
) -> None:
    world.runtime.crash_at_start("app", TRANSIENT)
    conf = {"flinkops.crash-loop.retries": retries, "flinkops.crash-loop.backoff": backoff}
    world.apply(application("app", conf=conf))
    world.run_until(settled("app", "FAILED"), what="FAILED")
    world.run_for(300)
    assert len(world.runtime.requests) == starts
    if gap is not None:
        first, second = world.runtime.deployed_at
        assert gap <= second - first <= gap + 2


def test_a_new_spec_whose_jobmanager_keeps_dying_rolls_back_after_the_budget_when_rollback_is_on(
    world: World,
) -> None:
    deploy(world, application("app", args=["v1"], conf=ROLLBACK))
    world.runtime.crash_at_start("app", TRANSIENT, args=["v2"])
    world.edit("app", job={"args": ["v2"]})
    back = running_stable("app", 2)
    world.run_until(lambda w: "Rollback" in w.reasons("app") and back(w), max_passes=150, what="rolled back")
    assert world.lifecycle("app") == "ROLLED_BACK"
    assert [r.application.args for r in world.runtime.requests if r.application] == [
        ("v1",), ("v2",), ("v2",), ("v2",), ("v2",), ("v1",)
    ]  # fmt: skip
    [rollback] = [e for e in world.events("app") if e.reason == "Rollback"]
    assert "4 times" in rollback.message and "ClassNotFoundException" in rollback.message
    assert not [e for e in world.events("app") if e.message.endswith("-> FAILED")], "never FAILED on the way"
    v1, back = world.runs("app")  # the v2 JobManagers never ran a job
    assert restored(world, back, [v1, back]) == "checkpoint of run 0 (newest)", "v1 goes on from its own state"
    world.run_for(600)
    assert len(world.runtime.requests) == 6, "no start of the broken spec again"


class WorldTarget:
    """What ``apply --wait`` polls (the store, a clock), with the controller running while it sleeps."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.clock = self

    def store(self) -> object:
        return self.world.store

    def now(self) -> float:
        return self.world.clock.now()

    def sleep(self, seconds: float) -> None:
        self.world.run_for(seconds)


@pytest.mark.parametrize("fault", [PERMANENT, TRANSIENT], ids=["not-retryable", "after-the-budget"])
def test_apply_wait_returns_with_the_cause_within_15_s_of_the_failure_being_final(
    world: World, fault: ClusterFault
) -> None:
    world.runtime.crash_at_start("app", fault)
    resource = world.apply(application("app"))
    seen: list[str] = []
    with pytest.raises(FlinkopsError) as failed:
        for _ in wait_settled(WorldTarget(world), [resource], 600, seen.append):  # type: ignore[arg-type]
            pass
    assert CAUSE in str(failed.value) and str(failed.value).startswith("failed: app: ")
    last_start = world.runtime.deployed_at[-1]  # the JobManager of the last try died right away
    assert world.clock.now() - last_start <= 15, "returned within 15 s of the final failure"
    if fault.retryable:
        assert len(world.runtime.deployed_at) == 4
        assert any(CAUSE in line and "retrying in" in line for line in seen), "the cause is shown while retrying"


def test_get_prints_the_cause_below_the_table(world: World) -> None:
    world.runtime.crash_at_start("app", PERMANENT)
    world.apply(application("app"))
    world.run_until(settled("app", "FAILED"), what="FAILED")
    resource = world.store.get(ResourceKey("FlinkDeployment", "default", "app"))
    assert resource is not None
    below = _causes([ResourceView.of(dump_resource(resource))])
    assert below.startswith("\napp: JobManager process exited") and CAUSE in below


# ------------------------------------------------------------------ session clusters (no spec.job)


def test_a_session_cluster_whose_jobmanager_dies_at_start_is_retried_with_backoff_and_then_fails(world: World) -> None:
    world.runtime.crash_at_start("session", TRANSIENT)
    world.apply(session_cluster("session"))
    world.run_until(settled("session", "FAILED"), what="FAILED after the retry budget")
    gave_up_after_three_backoffs(world, "session")
    told = tries(world, "session")
    assert len(told) == 4 and "tried 1 time" in told[0] and "tried 4 times" in told[-1]
    assert world.runtime.cluster("session") is None, "nothing is left running for the dead JobManager"
    world.run_for(900)
    assert len(world.runtime.requests) == 4 and world.lifecycle("session") == "FAILED", "no start after the budget"

    world.runtime.crash_at_start("session", None)
    world.edit("session", conf={"taskmanager.numberOfTaskSlots": "4"})  # the fix
    world.run_until(settled("session", "STABLE", generation=2), what="the fixed session cluster STABLE")
    assert world.deployment_status("session").error is None


def test_a_session_cluster_whose_program_cannot_start_is_not_retried(world: World) -> None:
    world.runtime.crash_at_start("session", PERMANENT)
    conf = {"flinkops.crash-loop.retries": "1", "flinkops.crash-loop.backoff": "2 s"}
    world.apply(session_cluster("session", conf=conf))
    world.run_until(settled("session", "FAILED"), what="FAILED")
    world.run_for(300)
    assert len(world.runtime.requests) == 1
    [told] = tries(world, "session")
    assert "not retried" in told


def test_a_session_cluster_uses_its_own_budget_and_backoff(world: World) -> None:
    world.runtime.crash_at_start("session", TRANSIENT)
    conf = {"flinkops.crash-loop.retries": "1", "flinkops.crash-loop.backoff": "2 s"}
    world.apply(session_cluster("session", conf=conf))
    world.run_until(settled("session", "FAILED"), what="FAILED")
    world.run_for(300)
    first, second = world.runtime.deployed_at
    assert 2 <= second - first <= 4 and len(world.runtime.requests) == 2


def test_a_session_cluster_that_fails_once_and_then_starts_becomes_stable_and_drops_the_error(world: World) -> None:
    world.runtime.crash_at_start("session", TRANSIENT, times=1)
    world.apply(session_cluster("session"))
    world.run_until(settled("session", "STABLE"), what="STABLE on the retry")
    assert len(world.runtime.requests) == 2 and world.deployment_status("session").error is None
    assert len(tries(world, "session")) == 1


def test_a_session_jobmanager_that_dies_after_its_rest_api_was_ready_is_recovered_at_once(world: World) -> None:
    world.apply(session_cluster("session"))
    world.run_until(settled("session", "STABLE"), what="STABLE")
    world.runtime.crash_at_start("session", TRANSIENT, times=1)  # the recovered JobManager dies at start once
    world.runtime.kill_jobmanager("session")
    world.run_until(lambda w: len(w.runtime.requests) == 2, what="the recovery")
    assert "RecoverDeployment" in world.reasons("session"), "a JobManager that was ready is recovered as before"
    world.run_until(
        lambda w: len(w.runtime.requests) == 3 and w.deployment_status("session").error is None,
        what="ready again after one retry, the error gone",
    )
    assert len(tries(world, "session")) == 1 and world.lifecycle("session") == "STABLE"
