"""Contract tests: the fakes behind the behaviour suites behave like the real stores.

Every scenario runs against the in-memory fake *and* the real implementation (``SqliteStore`` on a temporary
file, ``LocalSnapshotStore`` on a temporary directory tree), so a fake that drifts from what it stands in for
fails here, not silently in ``tests/behaviour``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import fakes.store as fake_store_module
import flinkops.stores.sqlite as sqlite_module
from fakes.snapshots import FakeSnapshots
from fakes.store import FakeStore
from flinkops.api.models import (
    FlinkDeployment,
    FlinkDeploymentSpec,
    FlinkDeploymentStatus,
    FlinkSessionJob,
    FlinkSessionJobSpec,
    JobSpec,
    ObjectMeta,
)
from flinkops.errors import Conflict, InvalidInput, NotFound, PermanentError
from flinkops.ports import ResourceKey, ResourceStore, SnapshotStore
from flinkops.snapshots.local import LocalSnapshotStore
from flinkops.stores.sqlite import SqliteStore

KEY = ResourceKey("FlinkDeployment", "default", "fd")


def deployment(name: str = "fd", parallelism: int = 1, namespace: str = "default", **meta: object) -> FlinkDeployment:
    return FlinkDeployment(
        metadata=ObjectMeta(name=name, namespace=namespace, **meta),
        spec=FlinkDeploymentSpec(job=JobSpec(jar_uri="local:///j.jar", parallelism=parallelism)),
    )


@pytest.fixture(params=["fake", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ResourceStore:
    if request.param == "fake":
        return FakeStore()
    return SqliteStore(tmp_path / "db.sqlite")


# ------------------------------------------------------------------------------------------ ResourceStore


def test_create_sets_metadata_and_reads_back_equal(store: ResourceStore) -> None:
    created = store.apply(deployment(labels={"team": "risk"}))
    meta = created.metadata
    assert (meta.generation, meta.labels) == (1, {"team": "risk"})
    assert meta.uid and meta.resource_version and meta.creation_timestamp
    assert meta.deletion_timestamp is None and created.status is None
    assert store.get(KEY) == created
    assert store.get(ResourceKey("FlinkDeployment", "default", "other")) is None


def test_generation_moves_only_when_the_spec_changes(store: ResourceStore) -> None:
    created = store.apply(deployment())
    same = store.apply(deployment(labels={"a": "b"}))
    assert same.metadata.generation == 1
    assert int(same.metadata.resource_version or 0) > int(created.metadata.resource_version or 0)
    changed = store.apply(deployment(parallelism=2))
    assert changed.metadata.generation == 2
    assert changed.metadata.uid == created.metadata.uid


def test_apply_keeps_the_status_and_ignores_one_sent_along(store: ResourceStore) -> None:
    read = store.apply(deployment())
    written = store.update_status(read.model_copy(update={"status": FlinkDeploymentStatus(error="kept")}))
    reapplied = store.apply(deployment(parallelism=3).model_copy(update={"status": FlinkDeploymentStatus(error="x")}))
    assert reapplied.status == written.status
    assert reapplied.metadata.generation == 2


def test_a_stale_status_write_conflicts_and_changes_nothing(store: ResourceStore) -> None:
    read = store.apply(deployment())
    written = store.update_status(read.model_copy(update={"status": FlinkDeploymentStatus(error="first")}))
    assert written.status is not None and written.status.error == "first"
    assert written.metadata.generation == 1
    with pytest.raises(Conflict):
        store.update_status(read.model_copy(update={"status": FlinkDeploymentStatus(error="stale")}))
    assert store.get(KEY) == written
    # A spec change in between also makes an older read stale.
    store.apply(deployment(parallelism=4))
    with pytest.raises(Conflict):
        store.update_status(written.model_copy(update={"status": FlinkDeploymentStatus(error="late")}))


def test_a_status_write_without_a_resource_version_is_unconditional(store: ResourceStore) -> None:
    read = store.apply(deployment())
    store.update_status(read.model_copy(update={"status": FlinkDeploymentStatus(error="one")}))
    blind = read.model_copy(update={"metadata": read.metadata.model_copy(update={"resource_version": None})})
    written = store.update_status(blind.model_copy(update={"status": FlinkDeploymentStatus(error="two")}))
    assert written.status is not None and written.status.error == "two"


def test_writing_the_status_of_a_missing_resource_is_not_found(store: ResourceStore) -> None:
    with pytest.raises(NotFound):
        store.update_status(deployment().model_copy(update={"status": FlinkDeploymentStatus()}))


def test_the_change_counter_moves_on_spec_changes_and_deletions_only(store: ResourceStore) -> None:
    start = store.change_counter()
    read = store.apply(deployment())
    created = store.change_counter()
    assert created > start
    store.update_status(read.model_copy(update={"status": FlinkDeploymentStatus()}))
    store.apply(deployment(labels={"only": "labels"}))
    assert store.change_counter() == created, "status writes and metadata-only applies do not wake the loop"
    store.apply(deployment(parallelism=2))
    changed = store.change_counter()
    assert changed > created
    store.request_deletion(KEY)
    deleting = store.change_counter()
    assert deleting > changed
    store.remove(KEY)
    assert store.change_counter() > deleting


def test_deletion_is_requested_then_the_resource_removed(store: ResourceStore) -> None:
    store.apply(deployment())
    store.record_event(KEY, "Normal", "Submit", "Starting deployment")
    deleting = store.request_deletion(KEY)
    stamp = deleting.metadata.deletion_timestamp
    assert stamp is not None
    assert store.request_deletion(KEY).metadata.deletion_timestamp == stamp, "the first request's time stays"
    with pytest.raises(Conflict):
        store.apply(deployment(parallelism=3))  # no resurrecting a resource while it is being deleted
    store.remove(KEY)
    assert store.get(KEY) is None and store.events(KEY) == []
    store.remove(KEY)  # idempotent
    with pytest.raises(NotFound):
        store.request_deletion(KEY)
    assert store.apply(deployment()).metadata.generation == 1, "a new resource of the same name starts over"


def test_repeated_events_are_counted_not_duplicated(store: ResourceStore) -> None:
    store.apply(deployment())
    for _ in range(3):
        store.record_event(KEY, "Warning", "Missing", "JobManager is gone")
    store.record_event(KEY, "Normal", "Submit", "Starting deployment")
    store.record_event(KEY, "Warning", "Missing", "JobManager is gone")
    events = store.events(KEY)
    assert [(e.type, e.reason, e.count) for e in events] == [
        ("Warning", "Missing", 3),
        ("Normal", "Submit", 1),
        ("Warning", "Missing", 1),
    ]
    assert all(e.key == KEY and e.first_timestamp <= e.last_timestamp for e in events)
    assert store.events(ResourceKey("FlinkDeployment", "default", "other")) == []


def test_events_are_capped_per_resource(store: ResourceStore, monkeypatch: pytest.MonkeyPatch) -> None:
    assert fake_store_module._MAX_EVENTS_PER_RESOURCE == sqlite_module._MAX_EVENTS_PER_RESOURCE == 200
    for module in (fake_store_module, sqlite_module):  # a smaller cap: 200 SQLite transactions take seconds
        monkeypatch.setattr(module, "_MAX_EVENTS_PER_RESOURCE", 4)
    store.apply(deployment())
    for n in range(7):
        store.record_event(KEY, "Normal", "Tick", f"tick {n}")
    assert [e.message for e in store.events(KEY)] == ["tick 3", "tick 4", "tick 5", "tick 6"]


def test_listing_is_sorted_and_filtered(store: ResourceStore) -> None:
    store.apply(deployment("b"))
    store.apply(deployment("a", namespace="team"))
    store.apply(deployment("a"))
    job = FlinkSessionJob(
        metadata=ObjectMeta(name="sj"),
        spec=FlinkSessionJobSpec(deployment_name="a", job=JobSpec(jar_uri="file:///j.jar")),
    )
    store.apply(job)
    names = [(r.kind, r.metadata.namespace, r.metadata.name) for r in store.list_resources()]
    assert names == [
        ("FlinkDeployment", "default", "a"),
        ("FlinkDeployment", "default", "b"),
        ("FlinkDeployment", "team", "a"),
        ("FlinkSessionJob", "default", "sj"),
    ]
    assert [r.metadata.name for r in store.list_resources(kind="FlinkSessionJob")] == ["sj"]
    assert [r.metadata.name for r in store.list_resources(namespace="team")] == ["a"]
    assert isinstance(store.get(ResourceKey("FlinkSessionJob", "default", "sj")), FlinkSessionJob)


def test_resource_versions_grow_across_resources(store: ResourceStore) -> None:
    versions = [int(store.apply(deployment(name)).metadata.resource_version or 0) for name in ("a", "b", "c")]
    assert versions == sorted(versions) and len(set(versions)) == 3


def test_what_a_caller_gets_is_a_copy(store: ResourceStore) -> None:
    read = store.apply(deployment())
    read.spec.flink_configuration["mutated"] = "yes"
    fetched = store.get(KEY)
    assert fetched is not None and "mutated" not in fetched.spec.flink_configuration


# ------------------------------------------------------------------------------------------ SnapshotStore

JOB_A = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
JOB_B = "ffee00112233445566778899aabbccdd"


@dataclass
class Storage:
    """A snapshot store under test, a root directory URI, and how snapshots get into it."""

    store: SnapshotStore
    root: str
    checkpoint: Callable[[str, str, int, int], str]  # (checkpoint dir, job, number, time ms) -> path
    savepoint: Callable[[str, str, int], str]  # (savepoint dir, job, time ms) -> path


def _local(tmp_path: Path) -> Storage:
    serial = iter(range(1, 1000))

    def metadata(directory: Path, time_ms: int) -> str:
        directory.mkdir(parents=True)
        (directory / "state").write_bytes(b"x" * 10)
        meta = directory / "_metadata"
        meta.write_bytes(b"m")
        os.utime(meta, ns=(time_ms * 1_000_000, time_ms * 1_000_000))
        return f"file:{directory}"

    def checkpoint(root: str, job: str, n: int, time_ms: int) -> str:
        return metadata(Path(root.removeprefix("file:")) / job / f"chk-{n}", time_ms)

    def savepoint(root: str, job: str, time_ms: int) -> str:
        return metadata(Path(root.removeprefix("file:")) / f"savepoint-{job[:6]}-{next(serial):012x}", time_ms)

    return Storage(LocalSnapshotStore(), f"file:{tmp_path}", checkpoint, savepoint)


def _fake() -> Storage:
    fake = FakeSnapshots()

    def checkpoint(root: str, job: str, n: int, time_ms: int) -> str:
        return fake.write_checkpoint(root, job, n, time_ms)

    def savepoint(root: str, job: str, time_ms: int) -> str:
        return fake.write_savepoint(root, job, time_ms)

    return Storage(fake, "file:/state", checkpoint, savepoint)


@pytest.fixture(params=["fake", "local"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return _fake() if request.param == "fake" else _local(tmp_path)


def test_snapshots_are_listed_oldest_first_with_their_jobs(storage: Storage) -> None:
    cp, sp = f"{storage.root}/cp", f"{storage.root}/sp"
    c3 = storage.checkpoint(cp, JOB_A, 3, 1_000_003_000)
    c10 = storage.checkpoint(cp, JOB_A, 10, 1_000_010_000)
    b1 = storage.checkpoint(cp, JOB_B, 1, 1_000_001_000)
    s1 = storage.savepoint(sp, JOB_A, 1_000_005_000)
    listed = storage.store.list(cp, sp, job_ids=[JOB_A])
    assert [s.path for s in listed] == [b1, c3, s1, c10]
    by_path = {s.path: s for s in listed}
    assert (by_path[c10].kind, by_path[c10].job_id, by_path[c10].checkpoint_id) == ("checkpoint", JOB_A, 10)
    assert (by_path[s1].kind, by_path[s1].job_id, by_path[s1].job_id_prefix) == ("savepoint", JOB_A, JOB_A[:6])
    assert by_path[s1].time_ms == 1_000_005_000
    assert storage.store.list(cp, None) == [s for s in listed if s.kind == "checkpoint"]
    assert storage.store.list(f"{storage.root}/nothing-here", None) == []
    unresolved = storage.store.list(None, sp)
    assert [s.job_id for s in unresolved] == [None], "a savepoint's job is only known from the ids given"


def test_the_latest_checkpoint_is_the_highest_number_of_that_job(storage: Storage) -> None:
    cp = f"{storage.root}/cp"
    storage.checkpoint(cp, JOB_A, 9, 1_000_000_000)
    newest = storage.checkpoint(cp, JOB_A, 12, 999_000_000)  # numbers, not times, decide
    storage.checkpoint(cp, JOB_B, 40, 1_000_000_000)
    assert storage.store.latest_checkpoint(cp, JOB_A) == newest
    assert storage.store.latest_checkpoint(cp, "c" * 32) is None
    assert storage.store.latest_checkpoint(cp, "../../etc") is None


def test_the_latest_savepoint_respects_not_before(storage: Storage) -> None:
    sp = f"{storage.root}/sp"
    storage.savepoint(sp, JOB_A, 1_000_000_000)
    newer = storage.savepoint(sp, JOB_A, 1_000_060_000)
    storage.savepoint(sp, JOB_B, 1_000_090_000)
    assert storage.store.latest_savepoint(sp, JOB_A) == newer
    assert storage.store.latest_savepoint(sp, JOB_A, not_before_ms=1_000_060_000) == newer
    assert storage.store.latest_savepoint(sp, JOB_A, not_before_ms=1_000_060_001) is None


def test_exists_and_inspect_accept_every_spelling(storage: Storage) -> None:
    path = storage.checkpoint(f"{storage.root}/cp", JOB_A, 7, 1_000_007_000)
    plain = path.removeprefix("file:")
    for spelling in (path, plain, f"file://{plain}", f"{path}/_metadata"):
        assert storage.store.exists(spelling), spelling
    found = storage.store.inspect(f"file://{plain}")
    assert found is not None and (found.path, found.kind, found.checkpoint_id) == (path, "checkpoint", 7)
    assert storage.store.inspect(f"{storage.root}/cp/{JOB_A}/chk-8") is None
    assert not storage.store.exists(f"{storage.root}/cp/{JOB_A}/chk-8")
    with pytest.raises(InvalidInput):
        storage.store.exists("relative/chk-1")


def test_dispose_removes_a_snapshot_once_and_refuses_anything_else(storage: Storage) -> None:
    sp = f"{storage.root}/sp"
    path = storage.savepoint(sp, JOB_A, 1_000_000_000)
    storage.store.dispose(path)
    assert not storage.store.exists(path) and storage.store.list(None, sp) == []
    storage.store.dispose(path)  # already gone: fine
    with pytest.raises(PermanentError):
        storage.store.dispose(f"{storage.root}/sp/not-a-snapshot")
