"""Canary resources (label ``flink.apache.org/canary: "true"``): the reference operator's probe of its own
control loop. They need no spec, deploy nothing, are reconciled like any resource, and a canary the loop stops
reconciling makes the operator unhealthy (``kubernetes.operator.health.canary.resource.timeout``, 1 min)."""

from __future__ import annotations

from behaviour.steps import gone
from fakes.world import World
from flinkops.controller.canary import CanaryMonitor
from flinkops.ports import ResourceKey

CANARIES = """\
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: canary
  labels:
    "flink.apache.org/canary": "true"
---
apiVersion: flink.apache.org/v1beta1
kind: FlinkSessionJob
metadata:
  name: canary-job
  labels:
    flink.apache.org/canary: "true"
"""


def test_canaries_are_reconciled_and_deploy_nothing(world: World) -> None:
    world.apply(CANARIES)
    world.run_for(120)
    assert world.runtime.requests == [] and world.flink.started == []
    for name, kind in (("canary", "FlinkDeployment"), ("canary-job", "FlinkSessionJob")):
        status = world.status(name, kind)
        assert status.error is None and status.observed_generation == 1, status
    assert world.controller.canaries.problems(world.clock.now()) == []


def test_a_canary_the_loop_stops_reconciling_makes_the_controller_unhealthy(world: World) -> None:
    world.apply(CANARIES)
    world.run_for(5)
    monitor = world.controller.canaries
    assert monitor.problems(world.clock.now()) == []
    world.clock.advance(61)  # no pass ran for longer than the canary timeout
    (first, second) = monitor.problems(world.clock.now())
    assert "FlinkDeployment default/canary" in first and "not reconciled" in first
    assert "FlinkSessionJob default/canary-job" in second
    world.run_for(1)  # the loop runs again: healthy again
    assert monitor.problems(world.clock.now()) == []


def test_a_canary_spec_change_must_be_reconciled_within_the_timeout() -> None:
    monitor = CanaryMonitor(timeout=60.0)
    key = ResourceKey("FlinkDeployment", "default", "canary")
    monitor.reconciled(key, 1, now=0.0)
    monitor.seen(key, 2, now=10.0)  # the spec changed (the generation the store holds is newer)
    assert monitor.problems(50.0) == []
    assert monitor.problems(71.0) == ["FlinkDeployment default/canary: generation 2 not reconciled for 61s"]
    monitor.reconciled(key, 2, now=72.0)
    assert monitor.problems(73.0) == []


def test_a_deleted_canary_is_removed_and_no_longer_watched(world: World) -> None:
    world.apply(CANARIES)
    world.run_for(5)
    world.delete("canary")
    world.run_until(gone("canary"), what="canary removed")
    world.clock.advance(120)
    assert not any("default/canary:" in p for p in world.controller.canaries.problems(world.clock.now()))
