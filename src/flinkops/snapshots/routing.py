"""One ``SnapshotStore`` for every storage flinkops reads: each call goes to the store of its path's scheme.

``file:`` URIs and plain paths go to the local store; ``s3://``, ``s3a://`` and ``s3p://`` to the S3 store, which
the factory creates at the first S3 path (so a controller that never meets S3 never builds an S3 client or needs
S3 credentials) and which is then kept. Any other scheme (``hdfs://``, ``gs://``) raises
``UnsupportedSnapshotStorage`` naming the path. A path that cannot be normalised (empty, relative) goes to the
local store, which raises ``InvalidInput`` for it exactly as before.

``list`` with a checkpoint and a savepoint directory on different storage asks each store for its own part and
merges the results in the stores' order (oldest first).

Invariant: the router holds no state but the lazily created S3 store; it adds no semantics of its own.

Called by: the controller and the CLI catalog (wiring left to them).
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from flinkops.api.snapshot_paths import normalise_snapshot_path
from flinkops.ports import Snapshot, SnapshotStore
from flinkops.snapshots.local import LocalSnapshotStore, UnsupportedSnapshotStorage
from flinkops.snapshots.s3 import S3_SCHEMES

__all__ = ["RoutingSnapshotStore"]


class RoutingSnapshotStore:
    """``SnapshotStore`` that dispatches each call by the scheme of its path (see the module docstring)."""

    def __init__(self, local: SnapshotStore, s3: Callable[[], SnapshotStore]) -> None:
        self._local = local
        self._s3_factory = s3
        self._s3: SnapshotStore | None = None
        self._lock = threading.Lock()

    def store_for(self, path: str) -> SnapshotStore:
        """The store that reads ``path``; raises ``UnsupportedSnapshotStorage`` for a scheme none reads."""
        try:
            normalised = normalise_snapshot_path(path)
        except ValueError:
            return self._local  # it raises InvalidInput naming the path
        scheme = normalised.partition(":")[0]
        if scheme == "file":
            return self._local
        if scheme in S3_SCHEMES:
            with self._lock:
                if self._s3 is None:
                    self._s3 = self._s3_factory()
                return self._s3
        raise UnsupportedSnapshotStorage(
            f"snapshot location {path!r} is on {scheme}:// storage, which flinkops cannot read; supported are "
            "local paths (file:/..., /...) and " + ", ".join(f"{s}://" for s in S3_SCHEMES)
        )

    def list(
        self, checkpoint_dir: str | None, savepoint_dir: str | None, job_ids: Iterable[str] = ()
    ) -> builtins.list[Snapshot]:
        known = tuple(job_ids)
        checkpoints = self.store_for(checkpoint_dir) if checkpoint_dir else None
        savepoints = self.store_for(savepoint_dir) if savepoint_dir else None
        if checkpoints is None or savepoints is None or checkpoints is savepoints:
            store = checkpoints or savepoints
            return store.list(checkpoint_dir, savepoint_dir, known) if store else []
        found = checkpoints.list(checkpoint_dir, None, known) + savepoints.list(None, savepoint_dir, known)
        return sorted(found, key=lambda s: (s.time_ms, s.checkpoint_id or 0, s.path))

    def inspect(self, path: str, job_ids: Iterable[str] = ()) -> Snapshot | None:
        return self.store_for(path).inspect(path, job_ids)

    def exists(self, path: str) -> bool:
        return self.store_for(path).exists(path)

    def dispose(self, path: str) -> None:
        self.store_for(path).dispose(path)

    def latest_checkpoint(self, checkpoint_dir: str, job_id: str) -> str | None:
        return self.store_for(checkpoint_dir).latest_checkpoint(checkpoint_dir, job_id)

    def latest_savepoint(self, savepoint_dir: str, job_id: str, not_before_ms: int = 0) -> str | None:
        return self.store_for(savepoint_dir).latest_savepoint(savepoint_dir, job_id, not_before_ms)


if TYPE_CHECKING:
    _conforms: SnapshotStore = RoutingSnapshotStore(LocalSnapshotStore(), LocalSnapshotStore)
