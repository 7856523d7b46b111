"""ResourceStore over SQLite: the local stand-in for the Kubernetes API server.

One row per resource holds its metadata+spec (as the user applied it, CRD-shaped JSON) and, separately, its
status. ``resource_version`` grows on every write and makes status writes conditional (a stale writer gets
``Conflict`` and re-reads), ``generation`` grows only when the spec changes, exactly like Kubernetes. A
``changes`` counter lets the controller poll for spec changes with one cheap query.

WAL journal mode and a busy timeout let the CLI and the controller daemon (separate processes) write
concurrently. Every method opens its own short transaction.

``document``/``documents`` return the CRD-shaped objects as stored, without building the pydantic models: every
row was written from a validated model (``model_dump`` by alias, ``None`` left out), so a stored object is what
``dump_resource`` of its model gives. ``flinkops get`` reads these; the models load only when a method returns
them.

Called by: the service layer's local target (apply, get, delete, ...) and the controller.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flinkops.errors import Conflict, NotFound, PermanentError
from flinkops.ports import Event, ResourceKey

if TYPE_CHECKING:
    from flinkops.api.models import FlinkDeployment, FlinkSessionJob

    Resource = FlinkDeployment | FlinkSessionJob

__all__ = ["SqliteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    uid TEXT NOT NULL,
    generation INTEGER NOT NULL,
    resource_version INTEGER NOT NULL,
    created TEXT NOT NULL,
    deletion_timestamp TEXT,
    body TEXT NOT NULL,
    status TEXT,
    PRIMARY KEY (kind, namespace, name)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    reason TEXT NOT NULL,
    message TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_ts REAL NOT NULL,
    last_ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_resource ON events (kind, namespace, name);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('changes', 0);
INSERT OR IGNORE INTO counters VALUES ('resource_version', 0);
"""

_MAX_EVENTS_PER_RESOURCE = 200
_KEY = "kind = ? AND namespace = ? AND name = ?"  # every resource and event is addressed by these three


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_dict(resource: Resource) -> dict[str, Any]:
    return resource.spec.model_dump(by_alias=True, exclude_none=True, mode="json")


def _model(document: dict[str, Any]) -> Resource:
    from flinkops.api.models import FlinkDeployment, FlinkSessionJob

    if document["kind"] == "FlinkDeployment":
        return FlinkDeployment.model_validate(document)
    return FlinkSessionJob.model_validate(document)


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._readers = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(path, timeout=30.0)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)  # idempotent; executescript manages its own transaction
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise PermanentError(f"cannot open the flinkops store at {path}: {exc}") from exc

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read connection kept open per thread: the controller polls ``change_counter`` twice a second, and
        opening a connection cost more than the query. In WAL mode every autocommit SELECT reads the newest
        committed state, so a kept connection never sees stale data."""
        db: sqlite3.Connection | None = getattr(self._readers, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=True)
            db.execute("PRAGMA busy_timeout=30000")
            self._readers.db = db
        yield db

    @staticmethod
    def _next(db: sqlite3.Connection, counter: str) -> int:
        db.execute("UPDATE counters SET value = value + 1 WHERE name = ?", (counter,))
        row = db.execute("SELECT value FROM counters WHERE name = ?", (counter,)).fetchone()
        return int(row[0])

    @staticmethod
    def _document(row: tuple[Any, ...]) -> dict[str, Any]:
        """The CRD-shaped object of one row, metadata in the models' field order (as ``dump_resource`` has it)."""
        _kind, _ns, _name, uid, generation, rv, created, deletion, body, status = row
        data: dict[str, Any] = json.loads(body)
        meta = {
            **data.get("metadata", {}),
            "uid": uid,
            "resourceVersion": str(rv),
            "generation": generation,
            "creationTimestamp": created,
        }
        if deletion:
            meta["deletionTimestamp"] = deletion
        data["metadata"] = meta
        if status:
            data["status"] = json.loads(status)
        return data

    @classmethod
    def _build(cls, row: tuple[Any, ...]) -> Resource:
        return _model(cls._document(row))

    _COLUMNS = "kind, namespace, name, uid, generation, resource_version, created, deletion_timestamp, body, status"

    def _select(self, db: sqlite3.Connection, key: ResourceKey) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = db.execute(
            f"SELECT {self._COLUMNS} FROM resources WHERE {_KEY}", (key.kind, key.namespace, key.name)
        ).fetchone()
        return row

    def _written(self, db: sqlite3.Connection, key: ResourceKey) -> tuple[Any, ...]:
        """The row as this transaction left it: callers get what they wrote without a second connection."""
        row = self._select(db, key)
        assert row is not None
        return row

    # ------------------------------------------------------------------ ResourceStore

    def get(self, key: ResourceKey) -> Resource | None:
        document = self.document(key)
        return _model(document) if document is not None else None

    def list_resources(self, kind: str | None = None, namespace: str | None = None) -> list[Resource]:
        return [_model(d) for d in self.documents(kind, namespace)]

    # ------------------------------------------------------------------ stored objects, no models

    def document(self, key: ResourceKey) -> dict[str, Any] | None:
        """The stored object of ``key`` in its CRD shape, or None."""
        with self._read() as db:
            row = self._select(db, key)
        return self._document(row) if row else None

    def documents(self, kind: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        """Stored objects in their CRD shape, by kind, namespace and name."""
        query = f"SELECT {self._COLUMNS} FROM resources WHERE 1 = 1"
        args: list[str] = []
        if kind:
            query += " AND kind = ?"
            args.append(kind)
        if namespace:
            query += " AND namespace = ?"
            args.append(namespace)
        with self._read() as db:
            rows = db.execute(query + " ORDER BY kind, namespace, name", args).fetchall()
        return [self._document(r) for r in rows]

    def apply(self, resource: Resource) -> Resource:
        return self.apply_all([resource])[0]

    def apply_all(self, resources: Sequence[Resource]) -> list[Resource]:
        """``apply`` each of ``resources`` in one transaction: all are written, or (on any error) none is."""
        with self._tx() as db:
            written = [self._apply_in(db, resource) for resource in resources]
        return [self._build(row) for row in written]

    def _apply_in(self, db: sqlite3.Connection, resource: Resource) -> tuple[Any, ...]:
        key = ResourceKey.of(resource)
        user_meta = resource.metadata.model_dump(
            by_alias=True,
            exclude_none=True,
            mode="json",
            include={"name", "namespace", "labels", "annotations"},
        )
        body = {
            "apiVersion": resource.api_version,
            "kind": resource.kind,
            "metadata": user_meta,
            "spec": _spec_dict(resource),
        }
        row = db.execute(
            f"SELECT generation, body, deletion_timestamp FROM resources WHERE {_KEY}",
            (key.kind, key.namespace, key.name),
        ).fetchone()
        rv = self._next(db, "resource_version")
        if row is None:
            db.execute(
                "INSERT INTO resources VALUES (?, ?, ?, ?, 1, ?, ?, NULL, ?, NULL)",
                (key.kind, key.namespace, key.name, str(uuid.uuid4()), rv, _now_iso(), json.dumps(body)),
            )
            self._next(db, "changes")
        else:
            generation, old_body, deletion = row
            if deletion:
                raise Conflict(f"{key} is being deleted; wait until it is gone, then apply again")
            old_spec = json.loads(old_body).get("spec")
            spec_changed = old_spec != body["spec"]
            db.execute(
                f"UPDATE resources SET generation = ?, resource_version = ?, body = ? WHERE {_KEY}",
                (
                    generation + (1 if spec_changed else 0),
                    rv,
                    json.dumps(body),
                    key.kind,
                    key.namespace,
                    key.name,
                ),
            )
            if spec_changed:
                self._next(db, "changes")
        return self._written(db, key)

    def update_status(self, resource: Resource) -> Resource:
        key = ResourceKey.of(resource)
        expected = resource.metadata.resource_version
        status = (
            resource.status.model_dump(by_alias=True, exclude_none=True, mode="json")
            if resource.status is not None
            else None
        )
        with self._tx() as db:
            row = db.execute(
                f"SELECT resource_version FROM resources WHERE {_KEY}",
                (key.kind, key.namespace, key.name),
            ).fetchone()
            if row is None:
                raise NotFound(f"{key} does not exist")
            if expected is not None and str(row[0]) != expected:
                raise Conflict(f"{key} changed since it was read (version {expected}, now {row[0]})")
            rv = self._next(db, "resource_version")
            db.execute(
                f"UPDATE resources SET status = ?, resource_version = ? WHERE {_KEY}",
                (json.dumps(status) if status is not None else None, rv, key.kind, key.namespace, key.name),
            )
            written = self._written(db, key)
        return self._build(written)

    def request_deletion(self, key: ResourceKey) -> Resource:
        with self._tx() as db:
            rv = self._next(db, "resource_version")
            cursor = db.execute(
                "UPDATE resources SET deletion_timestamp = COALESCE(deletion_timestamp, ?), resource_version = ? "
                f"WHERE {_KEY}",
                (_now_iso(), rv, key.kind, key.namespace, key.name),
            )
            if cursor.rowcount == 0:
                raise NotFound(f"{key} does not exist")
            self._next(db, "changes")
            written = self._written(db, key)
        return self._build(written)

    def remove(self, key: ResourceKey) -> None:
        with self._tx() as db:
            db.execute(
                f"DELETE FROM resources WHERE {_KEY}",
                (key.kind, key.namespace, key.name),
            )
            db.execute(
                f"DELETE FROM events WHERE {_KEY}",
                (key.kind, key.namespace, key.name),
            )
            self._next(db, "changes")

    def record_event(self, key: ResourceKey, type_: str, reason: str, message: str) -> None:
        now = time.time()
        with self._tx() as db:
            last = db.execute(
                f"SELECT id, type, reason, message FROM events WHERE {_KEY} ORDER BY id DESC LIMIT 1",
                (key.kind, key.namespace, key.name),
            ).fetchone()
            if last and (last[1], last[2], last[3]) == (type_, reason, message):
                db.execute("UPDATE events SET count = count + 1, last_ts = ? WHERE id = ?", (now, last[0]))
                return
            db.execute(
                "INSERT INTO events (kind, namespace, name, type, reason, message, count, first_ts, last_ts) "
                "VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)",
                (key.kind, key.namespace, key.name, type_, reason, message, now, now),
            )
            db.execute(
                f"DELETE FROM events WHERE {_KEY} AND id NOT IN ("
                f"SELECT id FROM events WHERE {_KEY} ORDER BY id DESC LIMIT ?)",
                (key.kind, key.namespace, key.name) * 2 + (_MAX_EVENTS_PER_RESOURCE,),
            )

    def events(self, key: ResourceKey) -> list[Event]:
        with self._read() as db:
            rows = db.execute(
                f"SELECT type, reason, message, count, first_ts, last_ts FROM events WHERE {_KEY} ORDER BY id",
                (key.kind, key.namespace, key.name),
            ).fetchall()
        return [Event(key, r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    def change_counter(self) -> int:
        with self._read() as db:
            row = db.execute("SELECT value FROM counters WHERE name = 'changes'").fetchone()
        return int(row[0]) if row else 0
