"""Rollback to the last stable spec, with the state the failed spec's job left: on job failure, on the readiness
timeout, and by hand; never without being enabled, and never back to the broken spec on its own."""

from __future__ import annotations

import json

from behaviour.steps import deploy, restored, running_stable, settled
from fakes.flink import JobScript
from fakes.specs import application
from fakes.world import World

ROLLBACK = {
    "kubernetes.operator.deployment.rollback.enabled": "true",
    "kubernetes.operator.deployment.readiness.timeout": "60 s",
}


def reconciled_args(world: World, name: str = "app") -> tuple[list[str], list[str]]:
    recon = world.deployment_status(name).reconciliation_status
    assert recon.last_reconciled_spec and recon.last_stable_spec
    last = json.loads(recon.last_reconciled_spec)["spec"]["job"]["args"]
    stable = json.loads(recon.last_stable_spec)["spec"]["job"]["args"]
    return last, stable


def test_a_new_spec_whose_job_fails_rolls_back_at_once_with_its_state(world: World) -> None:
    world.flink.script("v3", JobScript(fail_after=3, failure="java.lang.IllegalStateException: deliberate v3 failure"))
    deploy(world, application("app", mode="savepoint", args=["v2"], conf=ROLLBACK))
    world.edit("app", job={"args": ["v3"]})
    world.run_until(running_stable("app", 2), what="rolled back and running")
    assert world.lifecycle("app") == "ROLLED_BACK"
    assert reconciled_args(world) == (["v2"], ["v2"]), "the stable (v2) spec runs again"
    events = world.events("app")
    assert any(e.reason == "Rollback" and "deliberate v3 failure" in e.message for e in events)
    v2, v3, back = world.runs("app")
    assert [r.args for r in (v2, v3, back)] == [("v2",), ("v3",), ("v2",)]
    assert restored(world, v3, [v2, v3, back]) == "savepoint of run 0 (newest)"
    assert restored(world, back, [v2, v3, back]) == "checkpoint of run 1 (newest)", "state carries over"
    assert world.deployment_status("app").deployment_history[-1].reason == "rollback"

    world.run_for(300)
    assert len(world.runs("app")) == 3, "no upgrade back to the broken spec"
    assert world.lifecycle("app") == "ROLLED_BACK"

    world.edit("app", job={"args": ["v4"]})  # a new generation is applied normally
    world.run_until(running_stable("app", 3), what="v4 running")
    assert world.lifecycle("app") == "STABLE" and world.runs("app")[-1].args == ("v4",)


def test_a_spec_that_never_becomes_stable_rolls_back_after_the_readiness_timeout(world: World) -> None:
    world.flink.script("v3", JobScript(fail_after=2, crash_loop=True))
    deploy(world, application("app", args=["v2"], conf=ROLLBACK))
    world.edit("app", job={"args": ["v3"]})
    world.run_for(45)
    assert world.lifecycle("app") == "DEPLOYED" and len(world.runs("app")) == 2, "not before the timeout"
    world.run_until(running_stable("app", 2), what="rolled back")
    assert world.lifecycle("app") == "ROLLED_BACK"
    assert any(e.reason == "Rollback" and "within 60 s" in e.message for e in world.events("app"))
    v2, v3, back = world.runs("app")
    assert back.args == ("v2",) and back.restored_from is not None
    assert restored(world, back, [v2, v3, back]).startswith("checkpoint of run 1")


def test_no_rollback_unless_enabled(world: World) -> None:
    world.flink.script("v3", JobScript(fail_after=3))
    deploy(world, application("app", args=["v2"]))
    world.edit("app", job={"args": ["v3"]})
    world.run_until(settled("app", "FAILED"), what="FAILED")
    world.run_for(600)
    assert [r.args for r in world.runs("app")] == [("v2",), ("v3",)]
    assert "Rollback" not in world.reasons("app") and world.lifecycle("app") == "FAILED"


def test_applying_the_last_stable_spec_again_rolls_back_by_hand(world: World) -> None:
    deploy(world, application("app", mode="savepoint"))
    world.edit("app", job={"args": ["v2"]}, conf={"flinkops.stability.min-running-time": "10 min"})
    world.run_until(
        lambda w: settled("app", "DEPLOYED", generation=2)(w) and w.job_state("app") == "RUNNING", what="v2 up"
    )
    world.run_for(20)
    assert world.lifecycle("app") == "DEPLOYED", "up, not trusted yet"
    world.rollback("app")
    world.run_until(running_stable("app"), what="rolled back by hand")
    status = world.deployment_status("app")
    assert status.lifecycle_state is not None and status.lifecycle_state.value == "ROLLED_BACK"
    v1, v2, back = world.runs("app")
    assert [r.args for r in (v1, v2, back)] == [("v1",), ("v2",), ("v1",)]
    assert restored(world, back, [v1, v2, back]) == "checkpoint of run 1 (newest)"
    world.suspend("app")
    world.run_until(settled("app", "SUSPENDED"))
    assert world.flink.running() == []
