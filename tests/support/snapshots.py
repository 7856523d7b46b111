"""Job ids and the every-operation sweep shared by the snapshot store tests.

Used by tests/unit/test_snapshot_store_s3.py (error mapping without a server, routing) and
tests/integration/test_snapshot_store_s3_live.py (the store against a real S3 server). Nothing here does I/O
until a returned call is made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flinkops.ports import SnapshotStore

__all__ = ["JOB_A", "JOB_A_TWIN", "JOB_B", "every_call"]

JOB_A = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
JOB_B = "ffee00112233445566778899aabbccdd"
JOB_A_TWIN = "a1b2c3000000000000000000000000ff"  # same first 6 hex as JOB_A


def every_call(store: SnapshotStore, directory: str) -> Iterable[Callable[[], object]]:
    """Each of the store's operations on ``directory`` (or a savepoint under it), not yet called."""
    snapshot = f"{directory}/savepoint-a1b2c3-0123456789ab"
    yield lambda: store.list(directory, None)
    yield lambda: store.list(None, directory)
    yield lambda: store.inspect(snapshot)
    yield lambda: store.exists(snapshot)
    yield lambda: store.dispose(snapshot)
    yield lambda: store.latest_checkpoint(directory, JOB_A)
    yield lambda: store.latest_savepoint(directory, JOB_A)
