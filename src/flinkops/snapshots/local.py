"""Checkpoints and savepoints in storage on the local file system: list, inspect, dispose.

Layout (as Flink writes it): checkpoints in ``<checkpoint dir>/<32-hex job id>/chk-<n>``, savepoints in
``<savepoint dir>/savepoint-<first 6 hex of the job id>-<12 hex>``. A snapshot is complete once its
``_metadata`` file exists (Flink writes it last), so a directory without one is an attempt that never finished:
it is never listed, never offered for a restore and never disposed.

Paths come in as ``file:/x``, ``file:///x`` or ``/x`` and go out normalised as ``file:/x`` (Flink's spelling;
``normalise_snapshot_path`` and ``same_snapshot`` from ``flinkops.api.snapshot_paths`` are re-exported here for
callers outside the pure layers). Other schemes (``s3://``) raise ``UnsupportedSnapshotStorage``.

Disposal renames the snapshot directory to a hidden ``.<name>.disposing`` sibling first and deletes that, so a
crash half-way never leaves a directory that still looks restorable, and a retry finishes the job.

Called by: the controller (recovery from stored checkpoints, savepoint history clean-up) and the CLI catalog.
"""

from __future__ import annotations

import builtins
import errno
import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from flinkops.api.snapshot_paths import (
    CHECKPOINT_NAME,
    JOB_ID,
    METADATA_FILE,
    SAVEPOINT_NAME,
    job_id_with_prefix,
    normalise_snapshot_path,
    same_snapshot,
)
from flinkops.errors import InvalidInput, PermanentError, Problem, TemporaryError, UnsupportedSnapshotStorage
from flinkops.ports import Snapshot, SnapshotKind, SnapshotStore

__all__ = [
    "LocalSnapshotStore",
    "PodLocalStorage",
    "UnsupportedSnapshotStorage",
    "latest_checkpoint",
    "local_path",
    "normalise_snapshot_path",
    "same_snapshot",
]


def local_path(path: str) -> Path:
    """The local directory or file that ``path`` names.

    Raises ``InvalidInput`` for an empty or relative path and ``UnsupportedSnapshotStorage`` for a non-local
    scheme, both naming the path.
    """
    try:
        normalised = normalise_snapshot_path(path)
    except ValueError as exc:
        raise InvalidInput([Problem("snapshot path", str(exc))]) from exc
    if not normalised.startswith("file:"):
        scheme = normalised.partition(":")[0]
        raise UnsupportedSnapshotStorage(
            f"snapshot location {path!r} is on {scheme}:// storage, which flinkops cannot read yet; "
            "only local paths (file:/..., /...) are supported"
        )
    return Path(normalised[len("file:") :])


def _uri(path: Path) -> str:
    return "file:" + str(path)


def _os_error(action: str, path: str, exc: OSError) -> PermanentError | TemporaryError:
    message = f"could not {action} {path!r}: {exc.strerror or exc}"
    if isinstance(exc, PermissionError) or exc.errno in (errno.EROFS, errno.ENOTDIR):
        return PermanentError(message)
    return TemporaryError(message)


def _subdirs(directory: Path) -> builtins.list[os.DirEntry[str]]:
    """The sub-directories of ``directory`` (not following symlinks); none if it does not exist."""
    try:
        with os.scandir(directory) as entries:
            return [e for e in entries if e.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _tree_size(directory: Path) -> int:
    """Bytes in the regular files under ``directory``; symlinks are not followed."""
    total = 0
    pending = [directory]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(Path(entry.path))
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except FileNotFoundError:
                        continue  # removed while we looked (Flink subsumed the checkpoint)
        except FileNotFoundError:
            continue
    return total


class LocalSnapshotStore:
    """``SnapshotStore`` over the local file system. Stateless; safe to share."""

    def list(
        self, checkpoint_dir: str | None, savepoint_dir: str | None, job_ids: Iterable[str] = ()
    ) -> builtins.list[Snapshot]:
        known = tuple(j.lower() for j in job_ids)
        found: builtins.list[Snapshot] = []
        try:
            if checkpoint_dir:
                found += self._checkpoints(local_path(checkpoint_dir))
            if savepoint_dir:
                found += self._savepoints(local_path(savepoint_dir), known)
        except OSError as exc:
            raise _os_error("list snapshots in", checkpoint_dir or savepoint_dir or "", exc) from exc
        return sorted(found, key=lambda s: (s.time_ms, s.checkpoint_id or 0, s.path))

    def inspect(self, path: str, job_ids: Iterable[str] = ()) -> Snapshot | None:
        target = local_path(path)
        if target.name == METADATA_FILE:
            target = target.parent
        chk = CHECKPOINT_NAME.match(target.name)
        if chk:
            parent = target.parent.name
            job = parent if JOB_ID.match(parent) else None
            return self._snapshot(
                target,
                "checkpoint",
                job_id=job,
                job_id_prefix=job[:6] if job else None,
                checkpoint_id=int(chk.group(1)),
            )
        savepoint = SAVEPOINT_NAME.match(target.name)
        prefix = savepoint.group(1) if savepoint else None
        job_id = job_id_with_prefix(prefix, tuple(j.lower() for j in job_ids))
        return self._snapshot(target, "savepoint", job_id=job_id, job_id_prefix=prefix)

    def exists(self, path: str) -> bool:
        target = local_path(path)
        if target.name == METADATA_FILE:
            return target.is_file()
        return (target / METADATA_FILE).is_file()

    def dispose(self, path: str) -> None:
        target = local_path(path)
        if target.name == METADATA_FILE:
            target = target.parent
        if not (CHECKPOINT_NAME.match(target.name) or SAVEPOINT_NAME.match(target.name)):
            raise PermanentError(
                f"refusing to dispose {path!r}: not a checkpoint (chk-<n>) or savepoint "
                "(savepoint-<6 hex>-<12 hex>) directory"
            )
        tombstone = target.with_name(f".{target.name}.disposing")
        try:
            if target.is_symlink():
                raise PermanentError(f"refusing to dispose {path!r}: it is a symbolic link, not a snapshot directory")
            if target.exists():
                if not target.is_dir() or not (target / METADATA_FILE).is_file():
                    raise PermanentError(
                        f"refusing to dispose {path!r}: it holds no {METADATA_FILE} file, so it is not a completed "
                        "snapshot (an unfinished checkpoint belongs to Flink)"
                    )
                if tombstone.exists():
                    shutil.rmtree(tombstone)  # left by an earlier attempt at a snapshot of the same name
                target.rename(tombstone)
            if tombstone.exists():
                shutil.rmtree(tombstone)
        except FileNotFoundError:
            return  # someone else removed it meanwhile: gone is what we wanted
        except OSError as exc:
            raise _os_error("dispose of", path, exc) from exc

    def latest_checkpoint(self, checkpoint_dir: str, job_id: str) -> str | None:
        root = local_path(checkpoint_dir)
        if not JOB_ID.match(job_id.lower()):
            return None  # not a Flink job id, so no directory of ours (and never a path to walk up)
        job_dir = root / job_id.lower()
        best: tuple[int, Path] | None = None
        try:
            for entry in _subdirs(job_dir):
                match = CHECKPOINT_NAME.match(entry.name)
                if match and os.path.isfile(os.path.join(entry.path, METADATA_FILE)):
                    number = int(match.group(1))
                    if best is None or number > best[0]:
                        best = (number, Path(entry.path))
        except OSError as exc:
            raise _os_error("list checkpoints in", checkpoint_dir, exc) from exc
        return _uri(best[1]) if best else None

    def latest_savepoint(self, savepoint_dir: str, job_id: str, not_before_ms: int = 0) -> str | None:
        prefix = job_id.lower()[:6]
        try:
            candidates = [
                s
                for s in self._savepoints(local_path(savepoint_dir), ())
                if s.job_id_prefix == prefix and s.time_ms >= not_before_ms
            ]
        except OSError as exc:
            raise _os_error("list savepoints in", savepoint_dir, exc) from exc
        return max(candidates, key=lambda s: (s.time_ms, s.path)).path if candidates else None

    # ------------------------------------------------------------------ helpers

    def _checkpoints(self, root: Path) -> builtins.list[Snapshot]:
        found: builtins.list[Snapshot] = []
        for job_entry in _subdirs(root):
            if not JOB_ID.match(job_entry.name):
                continue
            for entry in _subdirs(Path(job_entry.path)):
                match = CHECKPOINT_NAME.match(entry.name)
                if match is None:
                    continue
                snapshot = self._snapshot(
                    Path(entry.path),
                    "checkpoint",
                    job_id=job_entry.name,
                    job_id_prefix=job_entry.name[:6],
                    checkpoint_id=int(match.group(1)),
                )
                if snapshot is not None:
                    found.append(snapshot)
        return found

    def _savepoints(self, root: Path, known: tuple[str, ...]) -> builtins.list[Snapshot]:
        found: builtins.list[Snapshot] = []
        for entry in _subdirs(root):
            match = SAVEPOINT_NAME.match(entry.name)
            if match is None:
                continue
            prefix = match.group(1)
            snapshot = self._snapshot(
                Path(entry.path), "savepoint", job_id=job_id_with_prefix(prefix, known), job_id_prefix=prefix
            )
            if snapshot is not None:
                found.append(snapshot)
        return found

    @staticmethod
    def _snapshot(
        directory: Path,
        kind: SnapshotKind,
        *,
        job_id: str | None,
        job_id_prefix: str | None,
        checkpoint_id: int | None = None,
    ) -> Snapshot | None:
        try:
            metadata = (directory / METADATA_FILE).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None  # unfinished, or removed while we looked
        if not stat.S_ISREG(metadata.st_mode):
            return None
        return Snapshot(
            path=_uri(directory),
            kind=kind,
            time_ms=metadata.st_mtime_ns // 1_000_000,
            size_bytes=_tree_size(directory),
            job_id=job_id,
            job_id_prefix=job_id_prefix,
            checkpoint_id=checkpoint_id,
        )


def latest_checkpoint(directory_uri: str, job_id: str) -> str | None:
    """The newest completed checkpoint of ``job_id`` under ``directory_uri``, or None.

    Kept for the controller's recovery path: a location on storage this store cannot read (``s3://``) yields
    None rather than an error, as before; the result is spelled ``file:/abs/...`` like Flink's own paths.
    """
    try:
        return LocalSnapshotStore().latest_checkpoint(directory_uri, job_id)
    except (UnsupportedSnapshotStorage, InvalidInput):
        return None


if TYPE_CHECKING:
    _conforms: SnapshotStore = LocalSnapshotStore()


class PodLocalStorage:
    """``SnapshotStore`` for ``file://`` paths of clusters that run in pods: their files are on the pods' disks
    (or volumes), which the operator cannot read. Every call says so with ``UnsupportedSnapshotStorage``, which
    the controller treats as "ask Flink instead"; state that must outlive pods belongs on ``s3://``."""

    @staticmethod
    def _refuse(path: str | None) -> UnsupportedSnapshotStorage:
        return UnsupportedSnapshotStorage(
            f"{path or 'file://'} is on the Flink pods' own storage, which the operator cannot read; "
            "put checkpoints and savepoints on s3:// to let flinkops list, check and clean them"
        )

    def list(
        self, checkpoint_dir: str | None, savepoint_dir: str | None, job_ids: Iterable[str] = ()
    ) -> builtins.list[Snapshot]:
        raise self._refuse(checkpoint_dir or savepoint_dir)

    def inspect(self, path: str, job_ids: Iterable[str] = ()) -> Snapshot | None:
        raise self._refuse(path)

    def exists(self, path: str) -> bool:
        raise self._refuse(path)

    def dispose(self, path: str) -> None:
        raise self._refuse(path)

    def latest_checkpoint(self, checkpoint_dir: str, job_id: str) -> str | None:
        raise self._refuse(checkpoint_dir)

    def latest_savepoint(self, savepoint_dir: str, job_id: str, not_before_ms: int = 0) -> str | None:
        raise self._refuse(savepoint_dir)
