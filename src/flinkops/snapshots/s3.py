"""Checkpoints and savepoints in S3 (``s3://``, ``s3a://``, ``s3p://``): list, inspect, dispose.

Same layout and rules as the local store (``flinkops.snapshots.local``), with objects for files and key prefixes
for directories: checkpoints under ``<checkpoint dir>/<32-hex job id>/chk-<n>/``, savepoints under
``<savepoint dir>/savepoint-<first 6 hex of the job id>-<12 hex>/``. A snapshot is complete once its
``_metadata`` object exists (Flink writes it last), so a prefix without one is an attempt that never finished:
it is never listed, never offered for a restore and never disposed.

Invariants:

* Paths come back in the scheme the caller used (``s3a://`` stays ``s3a://``), normalised by
  ``flinkops.api.snapshot_paths`` and without a trailing slash: ``s3://bucket/key/chk-7``.
* ``time_ms`` is the ``LastModified`` of ``_metadata`` as ListObjectsV2 reports it (every read of it goes
  through a listing, so ``list``, ``inspect`` and ``latest_savepoint`` always agree). That is the S3 server's
  clock, and AWS reports whole seconds; ``latest_savepoint`` therefore compares ``not_before_ms`` rounded down
  to its second, so a savepoint completed in the same second as its trigger is not missed.
* ``size_bytes`` sums the objects under the snapshot prefix (shared incremental state lives outside it).
* Reads list one prefix level at a time (ListObjectsV2 with ``Delimiter="/"``, paginated); only a single
  snapshot's own prefix is ever listed recursively (for its size, and to dispose of it), never a bucket.
* Disposal first writes a ``.flinkops-disposing`` marker object, then deletes ``_metadata`` (from then on the
  snapshot is neither listed nor restorable), then every other object under the prefix in DeleteObjects batches
  of at most 1000, and the marker last. A crash part-way leaves the marker, so a retry recognises the
  half-deleted prefix as ours and finishes it; a prefix with neither ``_metadata`` nor the marker is an
  unfinished snapshot that belongs to Flink and is refused, like on the local file system. (So disposal needs
  PutObject as well as DeleteObject and ListBucket permission on the prefix; Flink itself needs all three.)
* Versioned buckets: deletes are plain deletes, so S3 keeps the old versions behind delete markers; the snapshot
  is gone for Flink and for this store, and a bucket lifecycle rule reclaims the space. Nothing here deletes
  object versions.
* Errors: an unreachable endpoint, a timeout, throttling and 5xx answers raise ``TemporaryError``; a missing
  bucket, rejected credentials and other refusals raise ``flinkops.s3.S3Problem`` (a ``PermanentError``) naming
  the path. An empty or relative path raises ``InvalidInput``; a URI of another scheme
  ``UnsupportedSnapshotStorage``.

Called by: ``flinkops.snapshots.routing`` (which the controller and the CLI catalog use).
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from flinkops.api.snapshot_paths import (
    CHECKPOINT_NAME,
    JOB_ID,
    METADATA_FILE,
    SAVEPOINT_NAME,
    job_id_with_prefix,
    normalise_snapshot_path,
)
from flinkops.errors import InvalidInput, PermanentError, Problem
from flinkops.ports import Snapshot, SnapshotKind, SnapshotStore
from flinkops.s3 import S3Access, client, refusal, translate
from flinkops.snapshots.local import UnsupportedSnapshotStorage

__all__ = ["DELETE_BATCH", "DISPOSING_MARKER", "PAGE_SIZE", "S3_SCHEMES", "S3Location", "S3SnapshotStore"]

S3_SCHEMES = ("s3", "s3a", "s3p")
#: Keys (and common prefixes) per ListObjectsV2 page; S3's own maximum.
PAGE_SIZE = 1000
#: Keys per DeleteObjects request; S3's own maximum.
DELETE_BATCH = 1000
#: Written into a snapshot prefix before its ``_metadata`` is deleted; see the module docstring.
DISPOSING_MARKER = ".flinkops-disposing"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class S3Location:
    """A normalised S3 URI taken apart: ``key`` has no leading or trailing slash (empty for the bucket root)."""

    scheme: str
    bucket: str
    key: str

    @classmethod
    def parse(cls, path: str) -> S3Location:
        """``path`` as a location; raises ``InvalidInput`` (empty, no bucket) or ``UnsupportedSnapshotStorage``."""
        try:
            normalised = normalise_snapshot_path(path)
        except ValueError as exc:
            raise InvalidInput([Problem("snapshot path", str(exc))]) from exc
        scheme, _, rest = normalised.partition(":")
        if scheme not in S3_SCHEMES:
            raise UnsupportedSnapshotStorage(
                f"snapshot location {path!r} is not on S3; the S3 snapshot store reads "
                + ", ".join(f"{s}://" for s in S3_SCHEMES)
                + " locations only"
            )
        bucket, _, key = rest.removeprefix("//").partition("/") if rest.startswith("//") else ("", "", "")
        if not bucket:
            raise InvalidInput(
                [Problem("snapshot path", f"S3 location {path!r} names no bucket; write '{scheme}://bucket/key'")]
            )
        return cls(scheme, bucket, key.strip("/"))

    @property
    def name(self) -> str:
        """The last segment of the key ('' for the bucket root)."""
        return self.key.rpartition("/")[2]

    @property
    def prefix(self) -> str:
        """The key prefix of the objects "in" this location as a directory: ``key/`` (``""`` at the root)."""
        return f"{self.key}/" if self.key else ""

    @property
    def parent(self) -> S3Location:
        return S3Location(self.scheme, self.bucket, self.key.rpartition("/")[0])

    def child(self, name: str) -> S3Location:
        return S3Location(self.scheme, self.bucket, self.prefix + name)

    def uri(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.key}" if self.key else f"{self.scheme}://{self.bucket}"


def _millis(moment: datetime) -> int:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(milliseconds=1)


class S3SnapshotStore:
    """``SnapshotStore`` over S3. Keeps one boto3 client (created at first use, thread-safe); safe to share."""

    def __init__(self, access: S3Access, *, client_factory: Callable[[S3Access], Any] = client) -> None:
        self.access = access
        self._client_factory = client_factory
        self._client: Any = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ SnapshotStore

    def list(
        self, checkpoint_dir: str | None, savepoint_dir: str | None, job_ids: Iterable[str] = ()
    ) -> builtins.list[Snapshot]:
        known = tuple(j.lower() for j in job_ids)
        found: builtins.list[Snapshot] = []
        if checkpoint_dir:
            root = S3Location.parse(checkpoint_dir)
            with self._translating(f"list checkpoints in {checkpoint_dir!r}", root):
                found += self._checkpoints(root)
        if savepoint_dir:
            root = S3Location.parse(savepoint_dir)
            with self._translating(f"list savepoints in {savepoint_dir!r}", root):
                found += self._savepoints(root, known)
        return sorted(found, key=lambda s: (s.time_ms, s.checkpoint_id or 0, s.path))

    def inspect(self, path: str, job_ids: Iterable[str] = ()) -> Snapshot | None:
        target = self._snapshot_location(path)
        with self._translating(f"inspect {path!r}", target):
            chk = CHECKPOINT_NAME.match(target.name)
            if chk:
                parent = target.parent.name
                job = parent if JOB_ID.match(parent) else None
                return self._snapshot(
                    target, "checkpoint", job_id=job, job_id_prefix=job[:6] if job else None, checkpoint_id=int(chk[1])
                )
            savepoint = SAVEPOINT_NAME.match(target.name)
            prefix = savepoint[1] if savepoint else None
            known = tuple(j.lower() for j in job_ids)
            return self._snapshot(target, "savepoint", job_id=job_id_with_prefix(prefix, known), job_id_prefix=prefix)

    def exists(self, path: str) -> bool:
        location = S3Location.parse(path)
        with self._translating(f"look for {path!r}", location):
            if location.name == METADATA_FILE:
                return self._object_time(location) is not None
            return self._metadata_time(location) is not None

    def dispose(self, path: str) -> None:
        target = self._snapshot_location(path)
        if not (CHECKPOINT_NAME.match(target.name) or SAVEPOINT_NAME.match(target.name)):
            raise PermanentError(
                f"refusing to dispose {path!r}: not a checkpoint (chk-<n>) or savepoint "
                "(savepoint-<6 hex>-<12 hex>) prefix"
            )
        marker = target.child(DISPOSING_MARKER)
        with self._translating(f"dispose of {path!r}", target):
            if self._metadata_time(target) is not None:
                self._s3().put_object(Bucket=marker.bucket, Key=marker.key, Body=b"")
                metadata = target.child(METADATA_FILE)
                self._s3().delete_object(Bucket=metadata.bucket, Key=metadata.key)
            elif self._object_time(marker) is None:
                if self._any_object(target):
                    raise PermanentError(
                        f"refusing to dispose {path!r}: it holds no {METADATA_FILE} object, so it is not a completed "
                        "snapshot (an unfinished checkpoint belongs to Flink)"
                    )
                return  # already gone
            self._delete_prefix(target, keep=marker.key)
            self._s3().delete_object(Bucket=marker.bucket, Key=marker.key)

    def latest_checkpoint(self, checkpoint_dir: str, job_id: str) -> str | None:
        root = S3Location.parse(checkpoint_dir)
        if not JOB_ID.match(job_id.lower()):
            return None  # not a Flink job id, so no prefix of ours
        job_dir = root.child(job_id.lower())
        with self._translating(f"list checkpoints in {checkpoint_dir!r}", root):
            names = self._children(job_dir, "chk-")
            numbered = [(int(m[1]), name) for name in names if (m := CHECKPOINT_NAME.match(name))]
            for _, name in sorted(numbered, reverse=True):
                candidate = job_dir.child(name)
                if self._metadata_time(candidate) is not None:
                    return candidate.uri()
        return None

    def latest_savepoint(self, savepoint_dir: str, job_id: str, not_before_ms: int = 0) -> str | None:
        root = S3Location.parse(savepoint_dir)
        prefix = job_id.lower()[:6]
        since = not_before_ms - not_before_ms % 1000  # S3 times may be whole seconds (module docstring)
        best: tuple[int, str] | None = None
        with self._translating(f"list savepoints in {savepoint_dir!r}", root):
            for name in self._children(root, f"savepoint-{prefix}-"):
                match = SAVEPOINT_NAME.match(name)
                if match is None or match[1] != prefix:
                    continue
                location = root.child(name)
                completed = self._metadata_time(location)
                if completed is not None and completed >= since:
                    candidate = (completed, location.uri())
                    best = candidate if best is None or candidate > best else best
        return best[1] if best else None

    # ------------------------------------------------------------------ helpers

    def _s3(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._client_factory(self.access)
            return self._client

    @staticmethod
    def _snapshot_location(path: str) -> S3Location:
        location = S3Location.parse(path)
        return location.parent if location.name == METADATA_FILE else location

    def _children(self, directory: S3Location, start: str = "") -> Iterator[str]:
        """Names of the "sub-directories" of ``directory`` whose names start with ``start`` (one level only)."""
        prefix = directory.prefix + start
        paginator = self._s3().get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=directory.bucket, Prefix=prefix, Delimiter="/", PaginationConfig={"PageSize": PAGE_SIZE}
        )
        for page in pages:
            for common in page.get("CommonPrefixes", ()):
                name = str(common["Prefix"])[len(directory.prefix) : -1]
                if name and "/" not in name:
                    yield name

    def _objects(self, directory: S3Location) -> Iterator[dict[str, Any]]:
        """Every object under ``directory``'s prefix (recursively: callers pass one snapshot's prefix only)."""
        paginator = self._s3().get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=directory.bucket, Prefix=directory.prefix, PaginationConfig={"PageSize": PAGE_SIZE}
        )
        for page in pages:
            yield from page.get("Contents", ())

    def _object_time(self, location: S3Location) -> int | None:
        """``LastModified`` of the object ``location`` in milliseconds (from a listing), or None if absent.

        A key sorts before every longer key it prefixes, so the first listed key is the object if it exists."""
        answer = self._s3().list_objects_v2(Bucket=location.bucket, Prefix=location.key, MaxKeys=1)
        for item in answer.get("Contents", ()):
            if item["Key"] == location.key:
                return _millis(item["LastModified"])
        return None

    def _metadata_time(self, directory: S3Location) -> int | None:
        return self._object_time(directory.child(METADATA_FILE))

    def _any_object(self, directory: S3Location) -> bool:
        answer = self._s3().list_objects_v2(Bucket=directory.bucket, Prefix=directory.prefix, MaxKeys=1)
        return bool(answer.get("Contents"))

    def _delete_prefix(self, directory: S3Location, keep: str) -> None:
        """Delete every object under ``directory`` except ``keep``, at most ``DELETE_BATCH`` per request.

        Each round lists from the start again (deleted keys no longer show), so no continuation token has to
        survive the deletes."""
        while True:
            answer = self._s3().list_objects_v2(
                Bucket=directory.bucket, Prefix=directory.prefix, MaxKeys=min(PAGE_SIZE, DELETE_BATCH)
            )
            keys = [str(item["Key"]) for item in answer.get("Contents", ()) if item["Key"] != keep]
            if not keys:
                return
            result = self._s3().delete_objects(
                Bucket=directory.bucket, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True}
            )
            errors = result.get("Errors") or []
            if errors:
                first = errors[0]
                raise refusal(
                    self.access,
                    str(first.get("Code", "")),
                    None,
                    f"delete {len(errors)} object(s) under {directory.uri()!r} (first: {first.get('Key')!r}: "
                    f"{first.get('Message', '')})",
                    directory.uri(),
                )

    def _checkpoints(self, root: S3Location) -> builtins.list[Snapshot]:
        found: builtins.list[Snapshot] = []
        for job in self._children(root):
            if not JOB_ID.match(job):
                continue
            job_dir = root.child(job)
            for name in self._children(job_dir, "chk-"):
                match = CHECKPOINT_NAME.match(name)
                if match is None:
                    continue
                snapshot = self._snapshot(
                    job_dir.child(name), "checkpoint", job_id=job, job_id_prefix=job[:6], checkpoint_id=int(match[1])
                )
                if snapshot is not None:
                    found.append(snapshot)
        return found

    def _savepoints(self, root: S3Location, known: tuple[str, ...]) -> builtins.list[Snapshot]:
        found: builtins.list[Snapshot] = []
        for name in self._children(root, "savepoint-"):
            match = SAVEPOINT_NAME.match(name)
            if match is None:
                continue
            snapshot = self._snapshot(
                root.child(name), "savepoint", job_id=job_id_with_prefix(match[1], known), job_id_prefix=match[1]
            )
            if snapshot is not None:
                found.append(snapshot)
        return found

    def _snapshot(
        self,
        directory: S3Location,
        kind: SnapshotKind,
        *,
        job_id: str | None,
        job_id_prefix: str | None,
        checkpoint_id: int | None = None,
    ) -> Snapshot | None:
        """The snapshot under ``directory`` from one recursive listing of its prefix, or None without
        ``_metadata`` (unfinished, half disposed, or removed while we looked)."""
        if not directory.key:
            return None  # the bucket itself is no snapshot directory
        metadata_key = directory.child(METADATA_FILE).key
        completed: int | None = None
        total = 0
        for item in self._objects(directory):
            total += int(item.get("Size", 0))
            if item["Key"] == metadata_key:
                completed = _millis(item["LastModified"])
        if completed is None:
            return None
        return Snapshot(
            path=directory.uri(),
            kind=kind,
            time_ms=completed,
            size_bytes=total,
            job_id=job_id,
            job_id_prefix=job_id_prefix,
            checkpoint_id=checkpoint_id,
        )

    # ------------------------------------------------------------------ errors

    @contextmanager
    def _translating(self, action: str, location: S3Location) -> Iterator[None]:
        """Translate botocore's exceptions raised inside into ``TemporaryError`` or ``S3Problem``."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, self.access, action, location.uri()) from exc


if TYPE_CHECKING:
    _conforms: SnapshotStore = S3SnapshotStore(S3Access(None, None, None, True, "nowhere"))
