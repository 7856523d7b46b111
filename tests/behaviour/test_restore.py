"""Starting from a given snapshot: ``initialSavepointPath`` on a first deploy, point-in-time restore
(``flinkops restore``: a savepoint redeploy), and the refusals when the snapshot is not there, which must
never cost the running job."""

from __future__ import annotations

import pytest

from behaviour.steps import deploy, restored, running_stable
from fakes.specs import application
from fakes.world import World
from flinkops.api.snapshot_paths import same_snapshot


def test_a_first_deploy_starts_from_its_initial_savepoint(world: World) -> None:
    path = world.snapshots.write_savepoint("file:///backups", "ab" * 16, world.clock.now_ms(), offset=500)
    written = "file:///backups/" + path.split("/")[-1]  # spelled differently from how storage lists it
    deploy(world, application("app", mode="savepoint", initialSavepointPath=written))
    [job] = world.runs("app")
    assert same_snapshot(job.restored_from, path) and job.restored_offset == 500
    assert any(written in e.message for e in world.events("app") if e.reason == "Submit")


def test_an_initial_savepoint_that_does_not_exist_is_refused_and_nothing_starts(world: World) -> None:
    world.apply(application("app", mode="savepoint", initialSavepointPath="file:///backups/savepoint-abcdef-1"))
    world.run_for(30)
    status = world.deployment_status("app")
    assert status.error is not None and "does not exist" in status.error
    assert world.runtime.requests == [] and world.flink.started == []
    assert "ReconcileError" in world.reasons("app")


def test_restore_to_a_savepoint_redeploys_from_exactly_it_and_is_stable_at_once(world: World) -> None:
    deploy(world, application("app", mode="last-state"))
    world.request_savepoint("app")
    world.run_until(lambda w: bool(w.snapshots.all("savepoint")))
    [target] = world.snapshots.all("savepoint")
    world.run_for(20)
    [old] = world.runs("app")
    world.restore("app", target.path)
    world.run_until(running_stable("app", 3), what="restored")
    old, new = world.runs("app")
    assert new.restored_from == target.path == world.deployment_status("app").job_status.upgrade_savepoint_path
    assert restored(world, new, [old, new]) == "savepoint of run 0 (older)", "the state of that moment"
    assert new.restored_offset == target.offset < int(old.offset), "the records after it come again"
    recon = world.deployment_status("app").reconciliation_status
    assert recon.last_stable_spec == recon.last_reconciled_spec, "no rolling back past a restore"
    assert "SavepointRedeploy" in world.reasons("app")


def test_restore_to_an_earlier_checkpoint_of_the_running_job_restores_that_checkpoint(world: World) -> None:
    conf = {"execution.checkpointing.num-retained": "5"}
    deploy(world, application("app", conf=conf))
    [old] = world.runs("app")
    early = old.completed[0][1]
    world.restore("app", early)
    world.run_until(running_stable("app", 2))
    assert world.runs("app")[-1].restored_from == early


@pytest.mark.parametrize("path", ["file:///backups/savepoint-abcdef-000000000001", "file:///nowhere/chk-3"])
def test_restore_to_a_missing_snapshot_is_refused_and_the_running_job_untouched(world: World, path: str) -> None:
    deploy(world, application("app"))
    [job] = world.runs("app")
    world.restore("app", path)
    world.run_for(60)
    status = world.deployment_status("app")
    assert status.error is not None and "does not exist" in status.error and path.split("/")[-1] in status.error
    assert world.runs("app") == [job] and job.alive and job.state == "RUNNING"
    assert len(world.runtime.requests) == 1 and world.runtime.deleted == []
    assert world.lifecycle("app") == "STABLE"


def test_restore_to_a_checkpoint_of_an_earlier_run_restores_that_checkpoint(world: World) -> None:
    deploy(world, application("app", conf={"execution.checkpointing.num-retained": "5"}))
    world.edit("app", job={"args": ["v2"]})
    world.run_until(running_stable("app", 2))
    v1 = world.runs("app")[0]
    early = v1.completed[-3][1]
    assert world.snapshots.stored(early) is not None
    world.restore("app", early)
    world.run_until(running_stable("app", 3))
    assert world.runs("app")[-1].restored_from == early
