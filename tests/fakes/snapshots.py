"""Checkpoint and savepoint storage in memory: the ``SnapshotStore`` port, plus what Flink writes into it.

Snapshots are paths with times, laid out the way Flink names them (``<checkpoint dir>/<job id>/chk-<n>`` and
``<savepoint dir>/savepoint-<first 6 hex of the job id>-<12 hex>``) and normalised like the real stores
(``file:///state/x`` and ``/state/x`` are both kept and returned as ``file:/state/x``; a ``_metadata`` file
names its snapshot). Beyond the port, each snapshot carries the fake job's ``offset`` at the moment it was
taken (how far the job had read its input), so a test can tell whether a restored job continued from the state
it should have, and a ``ledger`` remembers every snapshot ever written, disposed of or lost.

Knobs: ``lose``/``wipe`` make snapshots vanish as if storage lost them (Flink subsuming checkpoints uses
``remove``); ``readable = False`` makes every call raise ``UnsupportedSnapshotStorage``, like storage on a pod's
disk that the operator cannot read.

Called by: ``fakes.flink.FakeFlink`` (writes checkpoints and savepoints), ``fakes.provisioning`` (hands it to
the controller) and tests.

Invariant: a path is listed, restorable and disposable exactly while it is in storage.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass, replace

from flinkops.api.snapshot_paths import (
    CHECKPOINT_NAME,
    JOB_ID,
    SAVEPOINT_NAME,
    job_id_with_prefix,
    normalise_snapshot_path,
    snapshot_dir_path,
)
from flinkops.errors import InvalidInput, PermanentError, Problem, UnsupportedSnapshotStorage
from flinkops.ports import Snapshot, SnapshotKind

__all__ = ["FakeSnapshots", "StoredSnapshot"]


@dataclass(frozen=True)
class StoredSnapshot:
    """A snapshot as storage holds it, with the fake job's input ``offset`` it captured."""

    snapshot: Snapshot
    offset: int = 0

    @property
    def path(self) -> str:
        return self.snapshot.path


def _split(path: str) -> tuple[str, str]:
    """(parent, name) of a normalised path."""
    parent, _, name = path.rpartition("/")
    return parent, name


class FakeSnapshots:
    """``SnapshotStore`` over a dictionary of paths."""

    def __init__(self) -> None:
        self._stored: dict[str, StoredSnapshot] = {}
        #: Every snapshot ever written, by path (kept after disposal or loss).
        self.ledger: dict[str, StoredSnapshot] = {}
        #: Paths disposed of through the port, in order.
        self.disposed: list[str] = []
        #: False: storage this target cannot read (every port call raises ``UnsupportedSnapshotStorage``).
        self.readable = True
        self._savepoints_written = 0

    # ------------------------------------------------------------------ writing (Flink's side, and tests)

    def write_checkpoint(
        self, checkpoint_dir: str, job_id: str, checkpoint_id: int, time_ms: int, *, offset: int = 0, size: int = 4096
    ) -> str:
        path = normalise_snapshot_path(f"{checkpoint_dir.rstrip('/')}/{job_id}/chk-{checkpoint_id}")
        snapshot = Snapshot(path, "checkpoint", time_ms, size, job_id, job_id[:6], checkpoint_id)
        return self._put(StoredSnapshot(snapshot, offset))

    def write_savepoint(
        self,
        savepoint_dir: str,
        job_id: str,
        time_ms: int,
        *,
        offset: int = 0,
        size: int = 4096,
        name: str | None = None,
    ) -> str:
        """A completed savepoint of ``job_id`` (named like Flink names it unless ``name`` is given)."""
        self._savepoints_written += 1
        name = name or f"savepoint-{job_id[:6]}-{self._savepoints_written:012x}"
        path = normalise_snapshot_path(f"{savepoint_dir.rstrip('/')}/{name}")
        match = SAVEPOINT_NAME.match(name)
        prefix = match.group(1) if match else None
        snapshot = Snapshot(path, "savepoint", time_ms, size, job_id if prefix else None, prefix)
        return self._put(StoredSnapshot(snapshot, offset))

    def _put(self, stored: StoredSnapshot) -> str:
        self._stored[stored.path] = stored
        self.ledger[stored.path] = stored
        return stored.path

    def remove(self, path: str) -> None:
        """Flink deleting a snapshot it owns (a subsumed checkpoint)."""
        self._stored.pop(snapshot_dir_path(path), None)

    def lose(self, path: str) -> None:
        """Storage loses one snapshot (a bucket lifecycle rule, an operator's ``rm``)."""
        self._stored.pop(snapshot_dir_path(path), None)

    def wipe(self, prefix: str = "") -> None:
        """Storage loses every snapshot under ``prefix`` (everything by default)."""
        wanted = normalise_snapshot_path(prefix) if prefix else ""
        for path in [p for p in self._stored if p.startswith(wanted)]:
            del self._stored[path]

    # ------------------------------------------------------------------ test helpers

    def stored(self, path: str) -> StoredSnapshot | None:
        """What storage holds at ``path`` now."""
        return self._stored.get(self._dir(path))

    def entry(self, path: str) -> StoredSnapshot | None:
        """What was ever written at ``path`` (also after disposal)."""
        return self.ledger.get(self._dir(path))

    def all(self, kind: SnapshotKind | None = None) -> builtins.list[StoredSnapshot]:
        """Everything in storage now, oldest first."""
        found = [s for s in self._stored.values() if kind is None or s.snapshot.kind == kind]
        return sorted(found, key=lambda s: (s.snapshot.time_ms, s.snapshot.checkpoint_id or 0, s.path))

    # ------------------------------------------------------------------ SnapshotStore

    def _check(self, path: str | None) -> None:
        if not self.readable:
            raise UnsupportedSnapshotStorage(f"{path or 'storage'} cannot be read from here (fake storage knob)")

    @staticmethod
    def _dir(path: str) -> str:
        try:
            return snapshot_dir_path(path)
        except ValueError as exc:
            raise InvalidInput([Problem("snapshot path", str(exc))]) from exc

    def list(
        self, checkpoint_dir: str | None, savepoint_dir: str | None, job_ids: Iterable[str] = ()
    ) -> builtins.list[Snapshot]:
        self._check(checkpoint_dir or savepoint_dir)
        known = tuple(j.lower() for j in job_ids)
        checkpoints = self._dir(checkpoint_dir) if checkpoint_dir else None
        savepoints = self._dir(savepoint_dir) if savepoint_dir else None
        found: builtins.list[Snapshot] = []
        for stored in self._stored.values():
            snapshot = stored.snapshot
            parent, _ = _split(snapshot.path)
            if snapshot.kind == "checkpoint" and checkpoints is not None:
                grandparent, job_dir = _split(parent)
                if grandparent == checkpoints and JOB_ID.match(job_dir):
                    found.append(snapshot)
            elif snapshot.kind == "savepoint" and savepoints is not None and parent == savepoints:
                found.append(replace(snapshot, job_id=job_id_with_prefix(snapshot.job_id_prefix, known)))
        return sorted(found, key=lambda s: (s.time_ms, s.checkpoint_id or 0, s.path))

    def inspect(self, path: str, job_ids: Iterable[str] = ()) -> Snapshot | None:
        self._check(path)
        stored = self._stored.get(self._dir(path))
        if stored is None:
            return None
        snapshot = stored.snapshot
        if snapshot.kind == "savepoint":
            known = tuple(j.lower() for j in job_ids)
            return replace(snapshot, job_id=job_id_with_prefix(snapshot.job_id_prefix, known))
        return snapshot

    def exists(self, path: str) -> bool:
        self._check(path)
        return self._dir(path) in self._stored

    def dispose(self, path: str) -> None:
        self._check(path)
        target = self._dir(path)
        _, name = _split(target)
        if not (CHECKPOINT_NAME.match(name) or SAVEPOINT_NAME.match(name)):
            raise PermanentError(
                f"refusing to dispose {path!r}: not a checkpoint (chk-<n>) or savepoint "
                "(savepoint-<6 hex>-<12 hex>) directory"
            )
        if self._stored.pop(target, None) is not None:
            self.disposed.append(target)

    def latest_checkpoint(self, checkpoint_dir: str, job_id: str) -> str | None:
        self._check(checkpoint_dir)
        if not JOB_ID.match(job_id.lower()):
            return None
        job_dir = f"{self._dir(checkpoint_dir)}/{job_id.lower()}"
        candidates = [
            s.snapshot
            for s in self._stored.values()
            if s.snapshot.kind == "checkpoint" and _split(s.path)[0] == job_dir
        ]
        return max(candidates, key=lambda s: s.checkpoint_id or 0).path if candidates else None

    def latest_savepoint(self, savepoint_dir: str, job_id: str, not_before_ms: int = 0) -> str | None:
        self._check(savepoint_dir)
        directory = self._dir(savepoint_dir)
        prefix = job_id.lower()[:6]
        candidates = [
            s.snapshot
            for s in self._stored.values()
            if s.snapshot.kind == "savepoint"
            and _split(s.path)[0] == directory
            and s.snapshot.job_id_prefix == prefix
            and s.snapshot.time_ms >= not_before_ms
        ]
        return max(candidates, key=lambda s: (s.time_ms, s.path)).path if candidates else None
