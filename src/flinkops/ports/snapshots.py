"""The snapshot store port: the checkpoints and savepoints in storage (``file://``, ``s3://``).

Implemented by ``snapshots.local``, ``snapshots.s3`` and ``snapshots.routing`` (by scheme).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["Snapshot", "SnapshotKind", "SnapshotStore"]

SnapshotKind = Literal["checkpoint", "savepoint"]


@dataclass(frozen=True)
class Snapshot:
    """One completed checkpoint or savepoint in storage (its ``_metadata`` file exists).

    ``path`` is the snapshot directory, normalised (``file:/abs/dir/chk-7``, as Flink prints it; compare paths
    with ``flinkops.api.snapshot_paths.same_snapshot``). ``time_ms`` is when it completed (the modification
    time of ``_metadata``); ``size_bytes`` sums the files under the directory (shared incremental state lives
    outside it and is not counted). Checkpoints live in ``<checkpoint dir>/<job id>/chk-<n>``, so ``job_id``
    and ``checkpoint_id`` are known. Savepoint directories are named ``savepoint-<first 6 hex of the job
    id>-<12 hex>``: ``job_id_prefix`` is those 6 characters and ``job_id`` is set only when exactly one of the
    job ids the caller passed starts with them.
    """

    path: str
    kind: SnapshotKind
    time_ms: int
    size_bytes: int
    job_id: str | None = None
    job_id_prefix: str | None = None
    checkpoint_id: int | None = None


class SnapshotStore(Protocol):
    """Lists, inspects and disposes checkpoints and savepoints in checkpoint/savepoint storage.

    Paths are accepted as ``file:/x``, ``file:///x`` or ``/x`` and returned normalised (``file:/x``).
    A location on storage the implementation cannot reach raises a ``PermanentError`` naming the path;
    a relative or empty path raises ``InvalidInput``.
    """

    def list(
        self, checkpoint_dir: str | None, savepoint_dir: str | None, job_ids: Iterable[str] = ()
    ) -> builtins.list[Snapshot]:
        """Every completed checkpoint (``<checkpoint_dir>/<job id>/chk-<n>``) and savepoint
        (``<savepoint_dir>/savepoint-*``), oldest first. ``job_ids`` only resolves savepoint job ids; it
        does not filter. A directory that does not exist (yet) holds no snapshots."""
        ...

    def inspect(self, path: str, job_ids: Iterable[str] = ()) -> Snapshot | None:
        """The snapshot at ``path`` (its directory or its ``_metadata`` file), or None if not restorable."""
        ...

    def exists(self, path: str) -> bool:
        """Whether ``path`` can be restored from: a directory holding ``_metadata``, or a ``_metadata`` file."""
        ...

    def dispose(self, path: str) -> None:
        """Delete a completed snapshot's directory (``chk-<n>`` or ``savepoint-*``, or its ``_metadata``).

        Refuses (``PermanentError``) anything else, including a directory without ``_metadata``.
        Idempotent: a snapshot that is already gone is not an error.
        """
        ...

    def latest_checkpoint(self, checkpoint_dir: str, job_id: str) -> str | None:
        """The completed checkpoint of ``job_id`` with the highest checkpoint number, or None."""
        ...

    def latest_savepoint(self, savepoint_dir: str, job_id: str, not_before_ms: int = 0) -> str | None:
        """The newest savepoint named after ``job_id`` (by its 6-character prefix) completed at or after
        ``not_before_ms``, or None."""
        ...
