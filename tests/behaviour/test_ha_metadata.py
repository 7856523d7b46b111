"""Flink's HA metadata and flinkops' restore decisions: exactly one job runs.

With Kubernetes HA, Flink keeps every job it runs in HA ConfigMaps and a JobManager that starts under the same
cluster id recovers them. flinkops decides itself what a new deployment restores (the stopped job's newest
checkpoint in storage, under a new job id), so a cluster it deletes or deploys must leave and find no HA metadata:
otherwise a last-state upgrade runs the old job (recovered by Flink) next to the new one, and a deployment created
again under an old name resurrects the jobs of its predecessor. The fake runtime models that recovery; the last
test shows the fakes catch the double run when the metadata is left behind."""

from __future__ import annotations

import pytest

from behaviour.steps import deploy, gone, no_job_ran_twice, restored, running_stable
from fakes.specs import application
from fakes.world import World
from flinkops.api.models import FlinkDeployment

KUBERNETES_HA = {"high-availability.type": "kubernetes"}


@pytest.fixture
def world() -> World:
    """A world whose runtime, like the Kubernetes one, cannot pre-start the next cluster."""
    kubernetes = World()
    kubernetes.runtime.refuse_prepare("pre-starting the next cluster is not supported on Kubernetes yet")
    return kubernetes


def ha_application(mode: str = "last-state", args: tuple[str, ...] = ("v1",)) -> FlinkDeployment:
    return application("app", mode=mode, args=args, conf=KUBERNETES_HA, jobmanager_replicas=2)


def test_a_last_state_upgrade_with_kubernetes_ha_runs_exactly_one_job(world: World) -> None:
    deploy(world, ha_application())
    world.run_for(5.0)  # a few checkpoints
    world.edit("app", job={"args": ["v2"]})
    world.run_until(running_stable("app", 2), what="the upgrade done")
    world.run_for(5.0)

    old, new = world.runs("app")
    assert new.args == ("v2",) and new.alive and not old.alive
    assert restored(world, new, [old, new]) == "checkpoint of run 0 (newest)"
    assert [job.job_id for job in world.flink.running()] == [new.job_id]
    assert [job.job_id for job in world.runtime.ha_metadata[world.runtime.cluster("app").key]] == [new.job_id]
    no_job_ran_twice(world)


def test_a_savepoint_upgrade_with_kubernetes_ha_runs_exactly_one_job(world: World) -> None:
    deploy(world, ha_application(mode="savepoint"))
    world.edit("app", job={"args": ["v2"]})
    world.run_until(running_stable("app", 2), what="the upgrade done")

    old, new = world.runs("app")
    assert restored(world, new, [old, new]) == "savepoint of run 0 (newest)"
    assert [job.job_id for job in world.flink.running()] == [new.job_id]
    no_job_ran_twice(world)


def test_a_deployment_created_again_under_its_old_name_does_not_resurrect_the_old_job(world: World) -> None:
    deploy(world, ha_application())
    world.run_for(3.0)
    world.delete("app")
    world.run_until(gone("app"), what="the deletion")
    assert world.runtime.ha_metadata == {}, "deleting the cluster removes its HA metadata"

    deploy(world, ha_application(args=("again",)))
    world.run_for(3.0)
    first, again = world.runs("app")
    assert [job.job_id for job in world.flink.running()] == [again.job_id]
    assert again.args == ("again",) and restored(world, again, [first, again]) == "empty"
    no_job_ran_twice(world)


def test_metadata_left_behind_would_run_the_old_job_next_to_the_new_one(world: World) -> None:
    """The defect the runtimes' promise prevents, reproduced on the fakes: the check above would catch it."""
    world.runtime.leave_ha_metadata()
    deploy(world, ha_application())
    world.run_for(3.0)
    world.edit("app", job={"args": ["v2"]})
    world.run_until(running_stable("app", 2), what="the upgrade done")

    running = {job.args for job in world.flink.running()}
    assert running == {("v1",), ("v2",)}, "Flink recovered the old job from its HA metadata"
    with pytest.raises(AssertionError, match=r"twice|at once"):
        no_job_ran_twice(world)
