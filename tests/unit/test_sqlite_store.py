"""The SQLite ResourceStore behaves like the API server: generations, conditional status writes, events."""

from __future__ import annotations

from pathlib import Path

import pytest

from flinkops.api.models import FlinkDeployment, FlinkDeploymentSpec, FlinkDeploymentStatus, JobSpec, ObjectMeta
from flinkops.errors import Conflict, NotFound
from flinkops.ports import ResourceKey
from flinkops.stores.sqlite import SqliteStore

KEY = ResourceKey("FlinkDeployment", "default", "fd")


def deployment(parallelism: int = 1, **meta: object) -> FlinkDeployment:
    return FlinkDeployment(
        metadata=ObjectMeta(name="fd", **meta),  # type: ignore[arg-type]
        spec=FlinkDeploymentSpec(job=JobSpec(jar_uri="local:///j.jar", parallelism=parallelism)),
    )


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "db.sqlite")


def test_generation_moves_only_when_the_spec_changes(store: SqliteStore) -> None:
    created = store.apply(deployment())
    assert created.metadata.generation == 1
    same = store.apply(deployment(labels={"team": "payments"}))
    assert same.metadata.generation == 1
    assert same.metadata.resource_version != created.metadata.resource_version
    changed = store.apply(deployment(parallelism=2))
    assert changed.metadata.generation == 2
    assert store.get(KEY) == changed


def test_a_stale_status_write_conflicts_and_changes_nothing(store: SqliteStore) -> None:
    read = store.apply(deployment())
    status = FlinkDeploymentStatus(error="first")
    written = store.update_status(read.model_copy(update={"status": status}))
    assert written.status == status and store.get(KEY) == written
    with pytest.raises(Conflict):
        store.update_status(read.model_copy(update={"status": FlinkDeploymentStatus(error="stale")}))
    assert store.get(KEY) == written


def test_spec_changes_and_deletions_move_the_change_counter(store: SqliteStore) -> None:
    read = store.apply(deployment())
    before = store.change_counter()
    store.update_status(read.model_copy(update={"status": FlinkDeploymentStatus()}))
    assert store.change_counter() == before  # status writes do not wake the loop
    deleting = store.request_deletion(KEY)
    assert deleting.metadata.deletion_timestamp is not None
    assert store.change_counter() > before
    with pytest.raises(Conflict):
        store.apply(deployment(parallelism=3))  # no resurrecting a resource while it is being deleted
    store.remove(KEY)
    assert store.get(KEY) is None
    with pytest.raises(NotFound):
        store.request_deletion(KEY)


def test_repeated_events_are_counted_not_duplicated(store: SqliteStore) -> None:
    store.apply(deployment())
    for _ in range(3):
        store.record_event(KEY, "Warning", "Missing", "JobManager is gone")
    store.record_event(KEY, "Normal", "Submit", "Starting deployment")
    events = store.events(KEY)
    assert [(e.reason, e.count) for e in events] == [("Missing", 3), ("Submit", 1)]
