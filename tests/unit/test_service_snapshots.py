"""service.snapshots: taking one now (the nonce, and waiting for the controller's record), the catalogue read from
a checkpoint/savepoint directory tree, and which snapshot ``restore --to`` picks. No Flink process runs: the test
writes the directories Flink would, and the status the controller would."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flinkops.api.models import (
    DeploymentRecord,
    FlinkDeployment,
    FlinkDeploymentStatus,
    JobStatus,
    Savepoint,
    SavepointInfo,
)
from flinkops.errors import FlinkopsError, InvalidInput
from flinkops.ports import ResourceKey
from flinkops.service import apply, catalogue, checkpoint, resolve, restore, savepoint, trigger, wait_taken
from flinkops.service.snapshots import choose_restore_point, iso_time, parse_time
from flinkops.snapshots.local import LocalSnapshotStore
from support.service import JOB, TestTarget, deployment, session_cluster

KEY = ResourceKey("FlinkDeployment", "default", "fraud")
T0 = 1_700_000_000_000  # epoch ms


def snapshot(directory: Path, time_ms: int, size: int = 100) -> Path:
    directory.mkdir(parents=True)
    (directory / "state").write_bytes(b"x" * size)
    metadata = directory / "_metadata"
    metadata.write_bytes(b"m")
    os.utime(metadata, ns=(time_ms * 1_000_000, time_ms * 1_000_000))
    return directory


def stored(target: TestTarget) -> FlinkDeployment:
    found = resolve(target, "fraud")
    assert isinstance(found, FlinkDeployment)
    return found


def write_status(target: TestTarget, status: FlinkDeploymentStatus) -> None:
    target.store().update_status(stored(target).model_copy(update={"status": status}))


def completed(target: TestTarget, nonce: int | None, location: str = "file:/sp/savepoint-a1b2c3-1") -> None:
    """Record a completed savepoint the way the controller does."""
    taken = Savepoint(time_stamp=T0, location=location, trigger_type="MANUAL", trigger_nonce=nonce)
    info = SavepointInfo(last_savepoint=taken)
    write_status(target, FlinkDeploymentStatus(job_status=JobStatus(savepoint_info=info)))


def test_a_savepoint_bumps_the_nonce_and_waits_for_its_own_record(target: TestTarget) -> None:
    apply(target, [deployment()])
    asked = trigger(target, "fraud", "default", "savepoint")
    assert asked.nonce == 1 and asked.key == KEY
    job = stored(target).spec.job
    assert job is not None and job.savepoint_trigger_nonce == 1 and stored(target).metadata.generation == 2
    again = trigger(target, "fraud", "default", "savepoint")
    assert again.nonce == 2 and target.controller_starts == 3

    target.manual_clock.hooks.append(lambda: completed(target, nonce=1))  # the earlier request's savepoint
    with pytest.raises(FlinkopsError, match="timed out after 2s waiting for the savepoint"):
        wait_taken(target, again, timeout=2)
    target.manual_clock.hooks[:] = [lambda: completed(target, nonce=2, location="file:/sp/savepoint-a1b2c3-2")]
    taken = wait_taken(target, again, timeout=2)
    assert isinstance(taken, Savepoint) and taken.location == "file:/sp/savepoint-a1b2c3-2"


def test_waiting_for_a_snapshot_ends_with_the_controllers_error(target: TestTarget) -> None:
    apply(target, [deployment()])
    store = target.store()

    def completes() -> None:
        job = stored(target).spec.job
        assert job is not None
        completed(target, job.savepoint_trigger_nonce, "file:/sp/1")

    target.manual_clock.hooks.append(completes)
    taken = savepoint(target, "fraud", timeout=5)
    assert taken is not None and taken.location == "file:/sp/1"

    target.manual_clock.hooks[:] = [lambda: store.record_event(KEY, "Warning", "CheckpointError", "job is not running")]
    with pytest.raises(FlinkopsError, match="the checkpoint was not taken: job is not running"):
        checkpoint(target, "fraud", timeout=5)
    assert savepoint(target, "fraud", wait=False) is None


def test_a_session_cluster_has_no_job_to_snapshot(target: TestTarget) -> None:
    apply(target, [session_cluster()])
    with pytest.raises(InvalidInput, match="no job to savepoint"):
        trigger(target, "session", "default", "savepoint")


def test_the_catalogue_reads_the_default_state_directories(target: TestTarget) -> None:
    apply(target, [deployment()])
    state = target.home / "state" / "default" / "fraud"
    old_chk = snapshot(state / "checkpoints" / JOB / "chk-3", T0)
    manual = snapshot(state / "savepoints" / f"savepoint-{JOB[:6]}-0123456789ab", T0 + 5_000, size=2048)
    new_chk = snapshot(state / "checkpoints" / JOB / "chk-7", T0 + 10_000)
    (state / "checkpoints" / JOB / "chk-8").mkdir()  # in progress: no _metadata yet
    history = [Savepoint(time_stamp=T0 + 5_000, location=f"file:{manual}", trigger_type="MANUAL")]
    write_status(
        target,
        FlinkDeploymentStatus(
            job_status=JobStatus(job_id=JOB, savepoint_info=SavepointInfo(savepoint_history=history)),
            deployment_history=[DeploymentRecord(generation=1, job_id=JOB)],
        ),
    )
    found = catalogue(target, "fraud")
    assert found.checkpoint_dir == (state / "checkpoints").as_uri()
    assert [(e.snapshot.path, e.snapshot.kind, e.trigger, e.generation) for e in found.entries] == [
        (f"file:{old_chk}", "checkpoint", "checkpoint", 1),
        (f"file:{manual}", "savepoint", "MANUAL", 1),
        (f"file:{new_chk}", "checkpoint", "checkpoint", 1),
    ]
    assert found.entries[1].snapshot.size_bytes >= 2048


def test_restore_picks_the_newest_snapshot_at_or_before_a_time_or_the_one_at_a_path(
    target: TestTarget, tmp_path: Path
) -> None:
    apply(target, [deployment()])
    checkpoints = target.home / "state" / "default" / "fraud" / "checkpoints" / JOB
    first = snapshot(checkpoints / "chk-1", T0)
    second = snapshot(checkpoints / "chk-2", T0 + 60_000)
    elsewhere = snapshot(tmp_path / "old-run" / "chk-9", T0 - 60_000)

    with pytest.raises(InvalidInput, match="no snapshot at or before 2001-01-01T00:00:00Z"):
        restore(target, "fraud", "default", "2001-01-01T00:00:00Z")
    with pytest.raises(InvalidInput, match="not a completed checkpoint or savepoint"):
        restore(target, "fraud", "default", str(tmp_path / "nope"))
    assert stored(target).metadata.generation == 1  # bad input changed nothing

    at = restore(target, "fraud", "default", iso_time(T0 + 30_000))
    assert at.snapshot.path == f"file:{first}" and at.generation == 2
    job = stored(target).spec.job
    assert job is not None and job.initial_savepoint_path == f"file:{first}" and job.savepoint_redeploy_nonce == 1
    assert restore(target, "fraud", "default", str(T0 + 60_000)).snapshot.path == f"file:{second}"
    assert restore(target, "fraud", "default", str(elsewhere)).snapshot.path == f"file:{elsewhere}"
    job = stored(target).spec.job
    assert job is not None and job.savepoint_redeploy_nonce == 3
    assert target.controller_starts == 4


def test_times_parse_as_iso_8601_or_epoch_milliseconds() -> None:
    assert parse_time("2023-11-14T22:13:20Z") == T0
    assert parse_time("2023-11-14T23:13:20+01:00") == T0
    assert parse_time("2023-11-14T22:13:20") == T0  # naive means UTC
    assert parse_time(str(T0)) == T0
    with pytest.raises(InvalidInput, match="neither a time nor a snapshot path"):
        parse_time("yesterday")
    with pytest.raises(InvalidInput, match="none is retained"):
        choose_restore_point([], "2023-11-14T22:13:20Z", LocalSnapshotStore())
