"""An in-memory ``ResourceStore`` with the semantics of ``stores.sqlite.SqliteStore``.

Resources are kept as the JSON shapes SQLite keeps (metadata + spec as applied, status separately) and rebuilt
on every read, so a caller can never mutate what the store holds and round-trips behave the same. Like the real
store: ``resourceVersion`` grows on every write (one counter for all resources), ``generation`` only when the
spec changes, ``update_status`` with a stale ``resourceVersion`` raises ``Conflict``, a resource being deleted
cannot be applied again, repeated identical events bump ``count``, and ``change_counter`` moves on spec changes,
creations, deletion requests and removals (never on status writes).

``tests/unit/test_store_contract.py`` runs the same scenarios against this fake and ``SqliteStore``, so the two
cannot drift apart.

Called by: ``fakes.world.World`` and tests of anything built on the ``ResourceStore`` port.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flinkops.api.models import FlinkDeployment, FlinkSessionJob
from flinkops.errors import Conflict, NotFound
from flinkops.ports import Clock, Event, Resource, ResourceKey

__all__ = ["FakeStore"]

_MODELS: dict[str, type[FlinkDeployment] | type[FlinkSessionJob]] = {
    "FlinkDeployment": FlinkDeployment,
    "FlinkSessionJob": FlinkSessionJob,
}
_MAX_EVENTS_PER_RESOURCE = 200


@dataclass
class _Row:
    uid: str
    generation: int
    resource_version: int
    created: str
    deletion_timestamp: str | None
    body: dict[str, Any]
    status: dict[str, Any] | None


class FakeStore:
    """``ResourceStore`` in dictionaries. ``clock`` stamps creation, deletion and event times (wall time when
    omitted)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock
        self._rows: dict[ResourceKey, _Row] = {}
        self._events: dict[ResourceKey, list[Event]] = {}
        self._resource_version = 0
        self._changes = 0
        #: Every successful status write, in order (key, lifecycle state written): for tests that check what a
        #: user could have seen between passes, such as the write-ahead intent.
        self.status_writes: list[tuple[ResourceKey, str | None]] = []

    # ------------------------------------------------------------------ helpers

    def _now(self) -> float:
        return self._clock.now() if self._clock is not None else time.time()

    def _iso(self) -> str:
        return datetime.fromtimestamp(self._now(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _next_version(self) -> int:
        self._resource_version += 1
        return self._resource_version

    @staticmethod
    def _build(key: ResourceKey, row: _Row) -> Resource:
        data: dict[str, Any] = {k: v for k, v in row.body.items()}
        meta = dict(data.get("metadata") or {})
        meta.update(
            {
                "uid": row.uid,
                "generation": row.generation,
                "resourceVersion": str(row.resource_version),
                "creationTimestamp": row.created,
            }
        )
        if row.deletion_timestamp:
            meta["deletionTimestamp"] = row.deletion_timestamp
        data["metadata"] = meta
        if row.status is not None:
            data["status"] = row.status
        return _MODELS[key.kind].model_validate(data)

    # ------------------------------------------------------------------ ResourceStore

    def get(self, key: ResourceKey) -> Resource | None:
        row = self._rows.get(key)
        return self._build(key, row) if row is not None else None

    def list_resources(self, kind: str | None = None, namespace: str | None = None) -> list[Resource]:
        keys = sorted(
            k
            for k in self._rows
            if (kind is None or k.kind == kind) and (namespace is None or k.namespace == namespace)
        )
        return [self._build(k, self._rows[k]) for k in keys]

    def apply(self, resource: Resource) -> Resource:
        key = ResourceKey.of(resource)
        user_meta = resource.metadata.model_dump(
            by_alias=True, exclude_none=True, mode="json", include={"name", "namespace", "labels", "annotations"}
        )
        body = {
            "apiVersion": resource.api_version,
            "kind": resource.kind,
            "metadata": user_meta,
            "spec": resource.spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
        }
        row = self._rows.get(key)
        if row is not None and row.deletion_timestamp:
            raise Conflict(f"{key} is being deleted; wait until it is gone, then apply again")
        version = self._next_version()
        if row is None:
            self._rows[key] = _Row(str(uuid.uuid4()), 1, version, self._iso(), None, body, None)
            self._changes += 1
        else:
            spec_changed = row.body.get("spec") != body["spec"]
            row.generation += 1 if spec_changed else 0
            row.resource_version = version
            row.body = body
            if spec_changed:
                self._changes += 1
        return self._build(key, self._rows[key])

    def update_status(self, resource: Resource) -> Resource:
        key = ResourceKey.of(resource)
        row = self._rows.get(key)
        if row is None:
            raise NotFound(f"{key} does not exist")
        expected = resource.metadata.resource_version
        if expected is not None and str(row.resource_version) != expected:
            raise Conflict(f"{key} changed since it was read (version {expected}, now {row.resource_version})")
        row.resource_version = self._next_version()
        status = resource.status
        row.status = status.model_dump(by_alias=True, exclude_none=True, mode="json") if status is not None else None
        lifecycle = status.lifecycle_state.value if status is not None and status.lifecycle_state else None
        self.status_writes.append((key, lifecycle))
        return self._build(key, row)

    def request_deletion(self, key: ResourceKey) -> Resource:
        row = self._rows.get(key)
        if row is None:
            raise NotFound(f"{key} does not exist")
        row.resource_version = self._next_version()
        row.deletion_timestamp = row.deletion_timestamp or self._iso()
        self._changes += 1
        return self._build(key, row)

    def remove(self, key: ResourceKey) -> None:
        self._rows.pop(key, None)
        self._events.pop(key, None)
        self._changes += 1

    def record_event(self, key: ResourceKey, type_: str, reason: str, message: str) -> None:
        now = self._now()
        events = self._events.setdefault(key, [])
        if events:
            last = events[-1]
            if (last.type, last.reason, last.message) == (type_, reason, message):
                events[-1] = Event(key, type_, reason, message, last.count + 1, last.first_timestamp, now)
                return
        events.append(Event(key, type_, reason, message, 1, now, now))
        del events[:-_MAX_EVENTS_PER_RESOURCE]

    def events(self, key: ResourceKey) -> list[Event]:
        return list(self._events.get(key, []))

    def change_counter(self) -> int:
        return self._changes
