"""The S3 snapshot store's error mapping without a server (an endpoint nobody listens on, answers worth a retry
from a stand-in client) and the routing store that picks the local or the S3 store by scheme, on fakes. The
store against a real S3 server (MinIO) is tests/integration/test_snapshot_store_s3_live.py."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

import pytest

from flinkops.errors import TemporaryError
from flinkops.ports import Snapshot, SnapshotStore
from flinkops.s3 import S3Access, S3Problem
from flinkops.snapshots.local import UnsupportedSnapshotStorage
from flinkops.snapshots.routing import RoutingSnapshotStore
from flinkops.snapshots.s3 import S3SnapshotStore
from support.snapshots import JOB_A, every_call


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------------------------------- errors


def test_an_unreachable_endpoint_is_temporary() -> None:
    port = _free_port()  # nothing listens there
    store = S3SnapshotStore(S3Access(f"http://127.0.0.1:{port}", "key", "secret", True, "the test"))
    for call in every_call(store, "s3://bucket/state"):
        with pytest.raises(TemporaryError, match=f"127.0.0.1:{port} did not answer"):
            call()


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("SlowDown", 503, TemporaryError),
        ("InternalError", 500, TemporaryError),
        ("", 502, TemporaryError),
        ("TooManyRequests", 429, TemporaryError),
        ("AccessDenied", 403, S3Problem),
        ("NoSuchBucket", 404, S3Problem),
        ("InvalidArgument", 400, S3Problem),
    ],
)
def test_answers_that_are_worth_a_retry_are_temporary(code: str, status: int, error: type[Exception]) -> None:
    """Throttling and 5xx cannot be provoked on a healthy local server: a client that answers with them."""
    from botocore.exceptions import ClientError

    class Answering:
        def __getattr__(self, operation: str) -> Any:
            def call(*_args: Any, **_kwargs: Any) -> Any:
                answer = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}
                raise ClientError(answer, operation)

            return call

    store = S3SnapshotStore(S3Access(None, None, None, False, "nowhere"), client_factory=lambda _a: Answering())
    with pytest.raises(error) as raised:
        store.latest_checkpoint("s3://bucket/ck", JOB_A)
    assert not (error is S3Problem and isinstance(raised.value, TemporaryError))
    with pytest.raises(error):
        store.list("s3://bucket/ck", None)


# ---------------------------------------------------------------------------------------------- routing


class Fake:
    """A snapshot store that answers with one snapshot per directory and records the calls."""

    def __init__(self, time_ms: int) -> None:
        self.time_ms = time_ms
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def _one(self, path: str) -> Snapshot:
        return Snapshot(path=path, kind="savepoint", time_ms=self.time_ms, size_bytes=0)

    def list(
        self, checkpoint_dir: str | None, savepoint_dir: str | None, job_ids: Iterable[str] = ()
    ) -> list[Snapshot]:
        self.calls.append(("list", (checkpoint_dir, savepoint_dir, tuple(job_ids))))
        return [self._one(d) for d in (checkpoint_dir, savepoint_dir) if d]

    def inspect(self, path: str, job_ids: Iterable[str] = ()) -> Snapshot | None:
        self.calls.append(("inspect", (path, tuple(job_ids))))
        return self._one(path)

    def exists(self, path: str) -> bool:
        self.calls.append(("exists", (path,)))
        return True

    def dispose(self, path: str) -> None:
        self.calls.append(("dispose", (path,)))

    def latest_checkpoint(self, checkpoint_dir: str, job_id: str) -> str | None:
        self.calls.append(("latest_checkpoint", (checkpoint_dir, job_id)))
        return checkpoint_dir

    def latest_savepoint(self, savepoint_dir: str, job_id: str, not_before_ms: int = 0) -> str | None:
        self.calls.append(("latest_savepoint", (savepoint_dir, job_id, not_before_ms)))
        return savepoint_dir


def test_routing_dispatches_by_scheme_and_creates_the_s3_store_lazily() -> None:
    local, remote = Fake(time_ms=2), Fake(time_ms=1)
    made: list[Fake] = []

    def make_s3() -> SnapshotStore:
        made.append(remote)
        return remote

    router = RoutingSnapshotStore(local, make_s3)
    assert router.exists("/state/chk-1") and router.exists("file:///state/chk-1")
    router.dispose("file:/state/chk-1")
    assert router.latest_checkpoint("/state", JOB_A) == "/state"
    assert made == [] and len(local.calls) == 4

    assert router.latest_savepoint("s3a://bkt/sp", JOB_A, 5) == "s3a://bkt/sp"
    assert router.inspect("S3://bkt/sp/savepoint-a1b2c3-0123456789ab/", [JOB_A]) is not None
    router.exists("s3p://bkt/x")
    assert made == [remote] and [name for name, _ in remote.calls] == ["latest_savepoint", "inspect", "exists"]

    # Checkpoints and savepoints on different storage: each store lists its part, merged oldest first.
    merged = router.list("s3://bkt/ck", "/state/sp", [JOB_A])
    assert [s.path for s in merged] == ["s3://bkt/ck", "/state/sp"]
    assert remote.calls[-1] == ("list", ("s3://bkt/ck", None, (JOB_A,)))
    assert local.calls[-1] == ("list", (None, "/state/sp", (JOB_A,)))
    router.list("/state/ck", "file:/state/sp")
    assert local.calls[-1] == ("list", ("/state/ck", "file:/state/sp", ()))
    assert router.list(None, None) == [] and made == [remote]

    with pytest.raises(UnsupportedSnapshotStorage, match="hdfs://"):
        router.exists("hdfs://namenode/state/chk-1")
