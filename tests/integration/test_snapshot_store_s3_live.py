"""The S3 snapshot store against a real S3 API server (MinIO, started through ``flinkops.dev.services``), with
objects laid out as Flink writes them: what counts as a completed snapshot, times, sizes, job ids, paging past
1000 keys, disposal order and retry, error mapping; and the routing store reaching both real stores. Error
mapping without a server and routing by scheme are tests/unit/test_snapshot_store_s3.py."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flinkops.dev.process import free_port
from flinkops.errors import InvalidInput, PermanentError
from flinkops.s3 import S3Access, S3Problem, client
from flinkops.snapshots import s3 as s3_module
from flinkops.snapshots.local import LocalSnapshotStore, UnsupportedSnapshotStorage
from flinkops.snapshots.routing import RoutingSnapshotStore
from flinkops.snapshots.s3 import DISPOSING_MARKER, S3SnapshotStore
from support.snapshots import JOB_A, JOB_A_TWIN, JOB_B, every_call

pytestmark = pytest.mark.integration

# ---------------------------------------------------------------------------------------------- the server


@dataclass(frozen=True)
class Server:
    endpoint: str
    access_key: str
    secret_key: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """MinIO through the dev services of a private flinkops home, on a free port; stopped afterwards. (Only S3:
    the shared ``tests/support/dataplane.py`` would also start Kafka, which these tests do not need.)"""
    from flinkops.dev.services import DevServices

    services = DevServices(tmp_path_factory.mktemp("dataplane"))
    services.up(["s3"], ports={"s3": free_port()})
    try:
        settings = services.s3_settings()
        assert settings is not None
        yield Server(settings.endpoint, settings.access_key, settings.secret_key)
    finally:
        services.down(["s3"])


def access_of(server: Server, *, secret_key: str | None = None) -> S3Access:
    return S3Access(server.endpoint, server.access_key, secret_key or server.secret_key, True, "the test server")


@pytest.fixture(scope="module")
def s3(server: Server) -> Any:
    return client(access_of(server))


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"snap-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def store(server: Server) -> S3SnapshotStore:
    return S3SnapshotStore(access_of(server))


def put(s3: Any, bucket: str, key: str, size: int = 10) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=b"x" * size)


def keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    found: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found += [str(item["Key"]) for item in page.get("Contents", ())]
    return found


def last_modified_ms(s3: Any, bucket: str, key: str) -> int:
    (item,) = [i for i in s3.list_objects_v2(Bucket=bucket, Prefix=key)["Contents"] if i["Key"] == key]
    return int(item["LastModified"].timestamp() * 1000)


def checkpoint(s3: Any, bucket: str, root: str, job: str, n: int, *, complete: bool = True, state: int = 10) -> str:
    prefix = f"{root}/{job}/chk-{n}"
    put(s3, bucket, f"{prefix}/{uuid.uuid4()}", state)
    if complete:
        put(s3, bucket, f"{prefix}/_metadata", 5)
    return prefix


def savepoint(s3: Any, bucket: str, root: str, job: str, suffix: str, *, complete: bool = True) -> str:
    prefix = f"{root}/savepoint-{job[:6]}-{suffix}"
    put(s3, bucket, f"{prefix}/{uuid.uuid4()}", 100)
    if complete:
        put(s3, bucket, f"{prefix}/_metadata", 7)
    return prefix


class Recording:
    """A real boto3 client that records the writes and deletes made through it; ``fail_batches`` makes that many
    DeleteObjects calls fail (a crash part-way through a disposal)."""

    def __init__(self, real: Any, fail_batches: int = 0) -> None:
        self._real = real
        self.calls: list[tuple[str, list[str]]] = []
        self.fail_batches = fail_batches

    def put_object(self, **kwargs: Any) -> Any:
        self.calls.append(("put_object", [kwargs["Key"]]))
        return self._real.put_object(**kwargs)

    def delete_object(self, **kwargs: Any) -> Any:
        self.calls.append(("delete_object", [kwargs["Key"]]))
        return self._real.delete_object(**kwargs)

    def delete_objects(self, **kwargs: Any) -> Any:
        if self.fail_batches:
            self.fail_batches -= 1
            raise RuntimeError("simulated crash during a batch delete")
        self.calls.append(("delete_objects", [o["Key"] for o in kwargs["Delete"]["Objects"]]))
        return self._real.delete_objects(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def recording_store(server: Server, fail_batches: int = 0) -> tuple[S3SnapshotStore, Recording]:
    recorder = Recording(client(access_of(server)), fail_batches)
    return S3SnapshotStore(access_of(server), client_factory=lambda _access: recorder), recorder


# ---------------------------------------------------------------------------------------------- reading


def test_list_finds_completed_snapshots_as_flink_lays_them_out(s3: Any, bucket: str, store: S3SnapshotStore) -> None:
    started_ms = int(time.time() * 1000)
    chk1 = checkpoint(s3, bucket, "ck", JOB_A, 1, state=10)
    chk2 = checkpoint(s3, bucket, "ck", JOB_A, 2, state=20)
    put(s3, bucket, f"{chk2}/{uuid.uuid4()}", 30)  # a second state file
    checkpoint(s3, bucket, "ck", JOB_A, 3, complete=False)  # in progress: ignored
    put(s3, bucket, f"ck/{JOB_A}/shared/{uuid.uuid4()}", 1000)  # incremental state: neither a snapshot nor counted
    put(s3, bucket, f"ck/{JOB_A}/taskowned/{uuid.uuid4()}", 1000)
    checkpoint(s3, bucket, "ck", JOB_B, 1)
    put(s3, bucket, "ck/not-a-job-id/chk-1/_metadata")  # not Flink's layout: ignored
    put(s3, bucket, f"ck/{JOB_A}/chk-x/_metadata")
    put(s3, bucket, "ck/stray-object")
    sp_a = savepoint(s3, bucket, "sp", JOB_A, "0123456789ab")
    savepoint(s3, bucket, "sp", JOB_B, "ba9876543210", complete=False)  # unfinished: ignored
    put(s3, bucket, "sp/my-savepoint/_metadata")  # not named savepoint-*: not listed (inspect still reads it)

    found = store.list(f"s3://{bucket}/ck/", f"s3://{bucket}//sp", [JOB_A, JOB_B])

    by_path = {s.path: s for s in found}
    assert set(by_path) == {
        f"s3://{bucket}/{chk1}",
        f"s3://{bucket}/{chk2}",
        f"s3://{bucket}/ck/{JOB_B}/chk-1",
        f"s3://{bucket}/{sp_a}",
    }
    first, second = by_path[f"s3://{bucket}/{chk1}"], by_path[f"s3://{bucket}/{chk2}"]
    assert (first.kind, first.job_id, first.job_id_prefix, first.checkpoint_id) == ("checkpoint", JOB_A, "a1b2c3", 1)
    assert (first.size_bytes, second.size_bytes, second.checkpoint_id) == (15, 55, 2)
    assert first.time_ms == last_modified_ms(s3, bucket, f"{chk1}/_metadata")
    assert started_ms - 60_000 <= first.time_ms <= time.time() * 1000 + 60_000
    sp = by_path[f"s3://{bucket}/{sp_a}"]
    assert (sp.kind, sp.job_id, sp.job_id_prefix, sp.checkpoint_id, sp.size_bytes) == (
        "savepoint",
        JOB_A,
        "a1b2c3",
        None,
        107,
    )
    assert found == sorted(found, key=lambda s: (s.time_ms, s.checkpoint_id or 0, s.path))
    # Savepoint job ids resolve only from an unambiguous prefix; the scheme the caller wrote is kept.
    (ambiguous,) = store.list(None, f"s3a://{bucket}/sp", [JOB_A, JOB_A_TWIN])
    assert (ambiguous.path, ambiguous.job_id, ambiguous.job_id_prefix) == (f"s3a://{bucket}/{sp_a}", None, "a1b2c3")
    assert store.list(f"s3://{bucket}/nothing-here", f"s3p://{bucket}/no-savepoints") == []
    assert store.list(None, None) == []


def test_inspect_and_exists(s3: Any, bucket: str, store: S3SnapshotStore) -> None:
    chk = checkpoint(s3, bucket, "ck", JOB_A, 7)
    unfinished = checkpoint(s3, bucket, "ck", JOB_A, 8, complete=False)
    sp = savepoint(s3, bucket, "sp", JOB_A, "0123456789ab")
    put(s3, bucket, "named/my-savepoint/_metadata", 3)

    for spelling in (f"s3://{bucket}/{chk}", f"s3://{bucket}/{chk}/", f"s3://{bucket}/{chk}/_metadata"):
        snapshot = store.inspect(spelling)
        assert snapshot is not None
        assert (snapshot.path, snapshot.kind, snapshot.job_id, snapshot.checkpoint_id, snapshot.size_bytes) == (
            f"s3://{bucket}/{chk}",
            "checkpoint",
            JOB_A,
            7,
            15,
        )
        assert store.exists(spelling)
    saved = store.inspect(f"s3a://{bucket}/{sp}", [JOB_A])
    assert saved is not None and (saved.path, saved.kind, saved.job_id) == (f"s3a://{bucket}/{sp}", "savepoint", JOB_A)
    named = store.inspect(f"s3://{bucket}/named/my-savepoint")
    assert named is not None and (named.kind, named.job_id_prefix, named.size_bytes) == ("savepoint", None, 3)

    assert store.inspect(f"s3://{bucket}/{unfinished}") is None
    assert not store.exists(f"s3://{bucket}/{unfinished}")
    assert not store.exists(f"s3://{bucket}/{unfinished}/_metadata")
    assert store.inspect(f"s3://{bucket}/ck/{JOB_A}/chk-99") is None
    assert not store.exists(f"s3://{bucket}/ck/{JOB_A}/chk-99")
    assert not store.exists(f"s3://{bucket}/ck/{JOB_A}/chk-7/_meta")  # a prefix of _metadata is no snapshot


def test_latest_checkpoint_takes_the_highest_completed_number(s3: Any, bucket: str, store: S3SnapshotStore) -> None:
    for n in (2, 9, 10):
        checkpoint(s3, bucket, "ck", JOB_A, n)
    checkpoint(s3, bucket, "ck", JOB_A, 11, complete=False)  # newest attempt, unfinished
    checkpoint(s3, bucket, "ck", JOB_B, 50)

    assert store.latest_checkpoint(f"s3://{bucket}/ck", JOB_A) == f"s3://{bucket}/ck/{JOB_A}/chk-10"
    assert store.latest_checkpoint(f"s3a://{bucket}/ck/", JOB_A.upper()) == f"s3a://{bucket}/ck/{JOB_A}/chk-10"
    assert store.latest_checkpoint(f"s3://{bucket}/ck", JOB_A_TWIN) is None
    assert store.latest_checkpoint(f"s3://{bucket}/ck", "../../etc") is None
    assert store.latest_checkpoint(f"s3://{bucket}/elsewhere", JOB_A) is None


def test_latest_savepoint_by_job_prefix_and_completion_time(s3: Any, bucket: str, store: S3SnapshotStore) -> None:
    older = savepoint(s3, bucket, "sp", JOB_A, "000000000001")
    time.sleep(1.1)  # S3 times may be whole seconds
    newer = savepoint(s3, bucket, "sp", JOB_A, "000000000000")  # sorts first by name: time decides
    savepoint(s3, bucket, "sp", JOB_B, "000000000002")
    savepoint(s3, bucket, "sp", JOB_A, "000000000003", complete=False)
    newer_ms = last_modified_ms(s3, bucket, f"{newer}/_metadata")
    assert newer_ms > last_modified_ms(s3, bucket, f"{older}/_metadata")
    directory = f"s3://{bucket}/sp"

    assert store.latest_savepoint(directory, JOB_A) == f"{directory}/{newer.split('/')[-1]}"
    assert store.latest_savepoint(directory, JOB_A_TWIN) == f"{directory}/{newer.split('/')[-1]}"  # by prefix only
    # A trigger recorded later within the same second still finds it (S3 may report whole seconds) ...
    same_second = newer_ms - newer_ms % 1000 + 999
    assert store.latest_savepoint(directory, JOB_A, same_second) == f"{directory}/{newer.split('/')[-1]}"
    # ... but one in a later second does not.
    assert store.latest_savepoint(directory, JOB_A, newer_ms - newer_ms % 1000 + 1000) is None
    assert store.latest_savepoint(f"s3://{bucket}/nowhere", JOB_A) is None


# ---------------------------------------------------------------------------------------------- disposal


def test_dispose_deletes_metadata_first_then_everything_under_the_prefix(s3: Any, bucket: str, server: Server) -> None:
    store, recorder = recording_store(server)
    chk = checkpoint(s3, bucket, "ck", JOB_A, 1)
    put(s3, bucket, f"{chk}/nested/dir/file")
    sibling = checkpoint(s3, bucket, "ck", JOB_A, 10)  # chk-1 is a prefix of chk-10's name
    sibling_keys = keys(s3, bucket, sibling)

    store.dispose(f"s3://{bucket}/{chk}/_metadata")

    assert keys(s3, bucket, f"{chk}/") == []
    assert keys(s3, bucket, sibling) == sibling_keys and len(sibling_keys) == 2
    assert store.exists(f"s3://{bucket}/{sibling}")
    deletes = [(name, k) for name, k in recorder.calls if name.startswith("delete")]
    assert deletes[0] == ("delete_object", [f"{chk}/_metadata"])
    removed = {key for _, batch in deletes for key in batch}
    assert f"{chk}/nested/dir/file" in removed and not any(k.startswith(f"{sibling}/") for k in removed)
    # Idempotent: gone is gone.
    store.dispose(f"s3://{bucket}/{chk}")


def test_dispose_interrupted_after_metadata_is_finished_by_a_retry(s3: Any, bucket: str, server: Server) -> None:
    crashing, _ = recording_store(server, fail_batches=1)
    store = S3SnapshotStore(access_of(server))
    sp = savepoint(s3, bucket, "sp", JOB_A, "0123456789ab")
    path = f"s3://{bucket}/{sp}"

    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.dispose(path)

    left = keys(s3, bucket, f"{sp}/")
    assert f"{sp}/_metadata" not in left and f"{sp}/{DISPOSING_MARKER}" in left and len(left) == 2
    assert not store.exists(path) and store.inspect(path) is None and store.list(None, f"s3://{bucket}/sp") == []
    store.dispose(path)
    assert keys(s3, bucket, f"{sp}/") == []


def test_dispose_refuses_what_is_not_a_completed_snapshot(s3: Any, bucket: str, store: S3SnapshotStore) -> None:
    unfinished = checkpoint(s3, bucket, "ck", JOB_A, 3, complete=False)
    put(s3, bucket, "data/important/_metadata")

    with pytest.raises(PermanentError, match="_metadata"):
        store.dispose(f"s3://{bucket}/{unfinished}")
    assert len(keys(s3, bucket, f"{unfinished}/")) == 1
    with pytest.raises(PermanentError, match="not a checkpoint"):
        store.dispose(f"s3://{bucket}/data/important")
    with pytest.raises(PermanentError, match="not a checkpoint"):
        store.dispose(f"s3://{bucket}")
    assert keys(s3, bucket, "data/") == ["data/important/_metadata"]
    store.dispose(f"s3://{bucket}/sp/savepoint-a1b2c3-0123456789ab")  # never existed: nothing to do


def test_more_than_a_thousand_objects_page_and_delete_in_batches(
    s3: Any, bucket: str, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    sp = f"sp/savepoint-{JOB_A[:6]}-0123456789ab"
    names = [f"{sp}/op-{i // 100}/{uuid.uuid4()}" for i in range(1010)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda key: put(s3, bucket, key, 2), names))
    put(s3, bucket, f"{sp}/_metadata", 5)
    store, recorder = recording_store(server)
    path = f"s3://{bucket}/{sp}"

    snapshot = store.inspect(path)
    assert snapshot is not None and snapshot.size_bytes == 1010 * 2 + 5

    store.dispose(path)
    batches = [batch for name, batch in recorder.calls if name == "delete_objects"]
    assert len(batches) >= 2 and all(len(batch) <= 1000 for batch in batches)
    assert sum(len(batch) for batch in batches) == 1010
    assert keys(s3, bucket, f"{sp}/") == []

    # Listing one level pages through common prefixes too (a small page size stands in for 1000 of them).
    for n in range(1, 8):
        checkpoint(s3, bucket, "ck", JOB_A, n)
    monkeypatch.setattr(s3_module, "PAGE_SIZE", 2)
    listed = store.list(f"s3://{bucket}/ck", None)
    assert sorted(s.checkpoint_id or 0 for s in listed) == list(range(1, 8))
    assert store.latest_checkpoint(f"s3://{bucket}/ck", JOB_A) == f"s3://{bucket}/ck/{JOB_A}/chk-7"


def test_dispose_in_a_versioned_bucket_leaves_only_old_versions(s3: Any, bucket: str, store: S3SnapshotStore) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    chk = checkpoint(s3, bucket, "ck", JOB_A, 5)
    path = f"s3://{bucket}/{chk}"

    store.dispose(path)

    assert keys(s3, bucket, f"{chk}/") == []
    assert not store.exists(path) and store.inspect(path) is None and store.list(f"s3://{bucket}/ck", None) == []
    versions = s3.list_object_versions(Bucket=bucket, Prefix=f"{chk}/")
    assert len(versions.get("DeleteMarkers", [])) >= 2  # plain deletes: S3 keeps the versions behind markers
    store.dispose(path)


# ---------------------------------------------------------------------------------------------- errors


def test_a_missing_bucket_is_a_permanent_problem(store: S3SnapshotStore) -> None:
    for call in every_call(store, "s3://no-such-bucket-for-flinkops/state"):
        with pytest.raises(S3Problem, match=r"'no-such-bucket-for-flinkops'.*does not exist"):
            call()


def test_wrong_credentials_are_a_permanent_problem(server: Server, bucket: str) -> None:
    store = S3SnapshotStore(access_of(server, secret_key="not-the-secret"))
    for call in every_call(store, f"s3://{bucket}/state"):
        with pytest.raises(S3Problem, match=r"refused access.*credentials from the test server"):
            call()


def test_paths_that_name_no_bucket_or_another_scheme_are_refused(store: S3SnapshotStore) -> None:
    for bad in ("", "s3:///key/chk-1", "s3:/bucket/key", "relative/path"):
        with pytest.raises(InvalidInput):
            store.exists(bad)
    with pytest.raises(UnsupportedSnapshotStorage, match="not on S3"):
        store.exists("file:/tmp/x")


# ---------------------------------------------------------------------------------------------- routing


def test_routing_to_the_real_stores(s3: Any, bucket: str, server: Server, tmp_path: Path) -> None:
    router = RoutingSnapshotStore(LocalSnapshotStore(), lambda: S3SnapshotStore(access_of(server)))
    chk = checkpoint(s3, bucket, "ck", JOB_A, 4)
    local_chk = tmp_path / "ck" / JOB_A / "chk-3"
    local_chk.mkdir(parents=True)
    (local_chk / "_metadata").write_bytes(b"m")

    assert router.latest_checkpoint(f"s3://{bucket}/ck", JOB_A) == f"s3://{bucket}/{chk}"
    assert router.latest_checkpoint(str(tmp_path / "ck"), JOB_A) == f"file:{local_chk}"
    with pytest.raises(InvalidInput):
        router.exists("relative/chk-1")
    router.dispose(f"s3://{bucket}/{chk}")
    assert not router.exists(f"s3://{bucket}/{chk}")
