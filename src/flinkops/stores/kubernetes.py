"""ResourceStore over a Kubernetes API server: FlinkDeployment and FlinkSessionJob custom resources.

Two ways to use it:

* **cached** (the operator): ``start()`` runs an informer per kind and watched namespace; reads come from the
  cache, every spec change, new resource and deletion request bumps ``change_counter()`` and lands in
  ``changed_keys()``, so the loop reconciles exactly what changed. A status this process wrote is put into the
  cache at once, so the next pass never plans from an older status than its own.
* **direct** (the CLI): every call goes to the API server.

Status goes through the status subresource with the resourceVersion read (``PUT .../status``): a concurrent
writer makes it fail with ``Conflict`` and the controller re-reads and decides again; a status write is never
blindly retried. Deletion uses a finalizer (``FINALIZER``): ``request_deletion`` deletes, the API server keeps
the object with a deletionTimestamp until the controller has cleaned up and calls ``remove``, which takes the
finalizer off. Events are core/v1 Events on the resource; a repeated one bumps its count.

Called by: the operator (``controller.operator``) and the CLI's Kubernetes target.
Invariant: nothing here decides; writes are conditional where Kubernetes allows it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import ValidationError

from flinkops.api.models import API_VERSION, FlinkDeployment, FlinkSessionJob
from flinkops.errors import Conflict, InvalidInput, NotFound, Problem
from flinkops.kube.client import Expired, KubeClient, KubeRejected, object_path, parse_time, rfc3339_now
from flinkops.kube.informer import Informer
from flinkops.ports import Event, ResourceKey

__all__ = ["FINALIZER", "KINDS", "PLURALS", "KubernetesStore", "to_model"]

log = logging.getLogger("flinkops.store")

PLURALS = {"FlinkDeployment": "flinkdeployments", "FlinkSessionJob": "flinksessionjobs"}
KINDS = tuple(PLURALS)
FINALIZER = "flinkops.io/cleanup"
_MODELS: dict[str, type[FlinkDeployment] | type[FlinkSessionJob]] = {
    "FlinkDeployment": FlinkDeployment,
    "FlinkSessionJob": FlinkSessionJob,
}

Resource = FlinkDeployment | FlinkSessionJob
Obj = dict[str, Any]


def to_model(obj: Obj) -> Resource:
    """The pydantic model of a custom resource as the API server returns it. ``InvalidInput`` (with the field
    paths) when it does not fit, which the CRD schema makes rare but cannot exclude."""
    kind = str(obj.get("kind") or "")
    model = _MODELS.get(kind)
    if model is None:
        raise InvalidInput([Problem("kind", f"{kind!r} is not a kind flinkops manages")])
    data = dict(obj)
    meta = dict(data.get("metadata") or {})
    meta.pop("managedFields", None)  # bookkeeping of the API server, large and of no use here
    data["metadata"] = meta
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [Problem(".".join(str(p) for p in err["loc"]) or "(root)", err["msg"]) for err in exc.errors()[:20]]
        raise InvalidInput(problems) from exc


class KubernetesStore:
    """``namespaces``: the namespaces to serve; None or empty means all of them (cluster-wide lists)."""

    def __init__(
        self,
        client: KubeClient,
        namespaces: Sequence[str] | None = None,
        *,
        resync: float = 300.0,
        component: str = "flinkops",
    ) -> None:
        self.client = client
        self.namespaces: tuple[str, ...] = tuple(namespaces or ())
        self.resync = resync
        self.component = component
        self.instance = os.environ.get("POD_NAME") or os.uname().nodename
        self._informers: dict[tuple[str, str], Informer] = {}  # (kind, namespace or "") -> informer
        self._lock = threading.Lock()
        self._changes = 0
        self._dirty: set[ResourceKey] = set()
        self._seen: dict[ResourceKey, tuple[Any, Any]] = {}  # key -> (generation, deletionTimestamp)
        self._events: dict[tuple[ResourceKey, str, str, str], tuple[str, int, str]] = {}
        self.wakeup = threading.Event()  # set on every change, for a loop that sleeps until there is work

    # ------------------------------------------------------------------ cache

    def start(self) -> None:
        for kind, plural in PLURALS.items():
            for namespace in self.namespaces or ("",):
                informer = Informer(
                    self.client,
                    object_path(API_VERSION, plural, namespace or None),
                    on_change=self._on_change,
                    resync=self.resync,
                    name=f"{plural}@{namespace or '*'}",
                )
                self._informers[(kind, namespace)] = informer.start()

    def wait_synced(self, timeout: float) -> bool:
        return all(i.wait_synced(timeout) for i in self._informers.values())

    @property
    def synced(self) -> bool:
        return bool(self._informers) and all(i.synced for i in self._informers.values())

    def stop(self) -> None:
        for informer in self._informers.values():
            informer.stop()

    def _informer(self, kind: str, namespace: str) -> Informer | None:
        if not self._informers:
            return None
        return self._informers.get((kind, namespace)) or self._informers.get((kind, ""))

    def _on_change(self, type_: str, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        key = ResourceKey(str(obj.get("kind") or ""), str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        fingerprint = (meta.get("generation"), meta.get("deletionTimestamp"))
        with self._lock:
            if type_ == "DELETED":
                self._seen.pop(key, None)
            elif self._seen.get(key) == fingerprint:
                return  # a status write or metadata bookkeeping: nothing to reconcile
            else:
                self._seen[key] = fingerprint
            self._changes += 1
            self._dirty.add(key)
        self.wakeup.set()

    def changed_keys(self) -> set[ResourceKey]:
        """The resources whose spec changed, that appeared, went or are being deleted since the last call."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        return dirty

    # ------------------------------------------------------------------ ResourceStore

    @staticmethod
    def _plural(kind: str) -> str:
        plural = PLURALS.get(kind)
        if plural is None:
            raise InvalidInput([Problem("kind", f"{kind!r} is not FlinkDeployment or FlinkSessionJob")])
        return plural

    def _path(self, key: ResourceKey, subresource: str | None = None) -> str:
        return object_path(API_VERSION, self._plural(key.kind), key.namespace, key.name, subresource)

    def raw(self, key: ResourceKey) -> Obj | None:
        informer = self._informer(key.kind, key.namespace)
        if informer is not None and informer.synced:
            return informer.get(key.namespace, key.name)
        return self.client.get(self._path(key))

    def get(self, key: ResourceKey) -> Resource | None:
        obj = self.raw(key)
        return to_model(obj) if obj is not None else None

    def follow(self, key: ResourceKey, timeout: float) -> Iterator[Resource | None]:
        """The resource now, then each new version of it the API server sends (None once it is gone), for at most
        ``timeout`` seconds: one watch of this one object (a field selector on its name), not a poll."""
        deadline = time.monotonic() + timeout
        collection = object_path(API_VERSION, self._plural(key.kind), key.namespace)
        while True:
            obj = self.client.get(self._path(key))
            yield to_model(obj) if obj is not None else None
            if obj is None:
                return
            version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
            try:
                while (left := deadline - time.monotonic()) > 0:
                    for type_, changed in self.client.watch(
                        collection,
                        resource_version=version,
                        timeout_seconds=max(1, min(int(left), 300)),
                        field_selector=f"metadata.name={key.name}",
                    ):
                        version = str((changed.get("metadata") or {}).get("resourceVersion") or version)
                        if type_ == "DELETED":
                            yield None
                            return
                        if type_ in ("ADDED", "MODIFIED"):
                            yield to_model(changed)
                return
            except Expired:
                continue  # the version is too old to watch from: read the object again

    def list_raw(self, kind: str | None = None, namespace: str | None = None) -> list[Obj]:
        kinds = [kind] if kind else list(KINDS)
        found: list[Obj] = []
        for k in kinds:
            informers = [i for (kind, _ns), i in self._informers.items() if kind == k]
            if informers and all(i.synced for i in informers):
                objects = [o for i in informers for o in i.objects()]
                found += [o for o in objects if not namespace or o["metadata"].get("namespace") == namespace]
                continue
            scopes: list[str | None] = [namespace] if namespace else [*self.namespaces] or [None]
            for ns in scopes:
                found += self.client.list(object_path(API_VERSION, PLURALS[k], ns)).get("items") or []
        return sorted(
            found, key=lambda o: (o.get("kind", ""), o["metadata"].get("namespace", ""), o["metadata"]["name"])
        )

    def list_resources(self, kind: str | None = None, namespace: str | None = None) -> list[Resource]:
        resources: list[Resource] = []
        for obj in self.list_raw(kind, namespace):
            try:
                resources.append(to_model(obj))
            except InvalidInput as exc:
                meta = obj.get("metadata") or {}
                log.warning(
                    "%s/%s/%s does not fit the model: %s", obj.get("kind"), meta.get("namespace"), meta.get("name"), exc
                )
        return resources

    def resource_keys(self) -> list[ResourceKey]:
        """Every resource served, parseable or not (the operator reports the unparseable ones)."""
        return [
            ResourceKey(str(o.get("kind")), str(o["metadata"].get("namespace", "")), str(o["metadata"]["name"]))
            for o in self.list_raw()
        ]

    def apply(self, resource: Resource) -> Resource:
        key = ResourceKey.of(resource)
        meta = resource.metadata.model_dump(
            by_alias=True, exclude_none=True, mode="json", include={"name", "namespace", "labels", "annotations"}
        )
        body = {
            "apiVersion": API_VERSION,
            "kind": resource.kind,
            "metadata": meta,
            "spec": resource.spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
        }
        existing = self.client.get(self._path(key))
        if existing is not None and (existing.get("metadata") or {}).get("deletionTimestamp"):
            raise Conflict(f"{key} is being deleted; wait until it is gone, then apply again")
        return to_model(self._remember(self.client.apply(self._path(key), body)))

    def update_status(self, resource: Resource) -> Resource:
        key = ResourceKey.of(resource)
        status = resource.status.model_dump(by_alias=True, exclude_none=True, mode="json") if resource.status else {}
        body: Obj = {
            "apiVersion": API_VERSION,
            "kind": resource.kind,
            "metadata": {"name": key.name, "namespace": key.namespace},
            "status": status,
        }
        if resource.metadata.resource_version:
            body["metadata"]["resourceVersion"] = resource.metadata.resource_version
        written = self.client.replace(self._path(key, "status"), body)
        return to_model(self._remember(written))

    def write_raw_status(self, key: ResourceKey, status: Obj) -> None:
        """Merge ``status`` into a resource's status without reading it as a model: for resources that do not
        fit the model, so their error is still visible in ``kubectl get``."""
        self._remember(self.client.patch(self._path(key, "status"), {"status": status}))

    def ensure_finalizer(self, key: ResourceKey) -> None:
        """Add the cleanup finalizer unless the resource has it or is being deleted (conditional write)."""
        obj = self.raw(key)
        if obj is None:
            return
        meta = obj.get("metadata") or {}
        finalizers = list(meta.get("finalizers") or [])
        if FINALIZER in finalizers or meta.get("deletionTimestamp"):
            return
        self._set_finalizers(key, meta, [*finalizers, FINALIZER])

    def _set_finalizers(self, key: ResourceKey, meta: Obj, finalizers: list[str]) -> None:
        patch = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": meta.get("resourceVersion")},
            {"op": "add", "path": "/metadata/finalizers", "value": finalizers},
        ]
        try:
            self._remember(self.client.patch(self._path(key), patch, kind="json"))
        except NotFound:
            pass
        except KubeRejected as exc:
            # A failed JSON-patch test comes back as 422: someone wrote in between; read again and decide again.
            raise Conflict(f"{key} changed while its finalizers were updated") from exc

    def request_deletion(self, key: ResourceKey) -> Resource:
        # The answer is the object itself while a finalizer keeps it, a Status once it is gone.
        obj = self.client.delete(self._path(key), propagation="Background")
        if obj is None or obj.get("kind") != key.kind:
            raise NotFound(f"{key} is gone (it had no cleanup finalizer yet)")
        return to_model(self._remember(obj))

    def remove(self, key: ResourceKey) -> None:
        obj = self.client.get(self._path(key))
        if obj is None:
            return
        meta = obj.get("metadata") or {}
        finalizers = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
        if FINALIZER in (meta.get("finalizers") or []):
            self._set_finalizers(key, meta, finalizers)
        if not meta.get("deletionTimestamp"):
            self.client.delete(self._path(key), propagation="Background")

    def record_event(self, key: ResourceKey, type_: str, reason: str, message: str) -> None:
        now = rfc3339_now()
        memo = (key, type_, reason, message)
        with self._lock:
            known = self._events.get(memo)
        if known is not None:
            name, count, first = known
            try:
                self.client.patch(
                    object_path("v1", "events", key.namespace, name), {"count": count + 1, "lastTimestamp": now}
                )
                with self._lock:
                    self._events[memo] = (name, count + 1, first)
                return
            except NotFound:
                pass  # expired on the server: start a new one
        obj = self.raw(key) if key.kind in PLURALS else None
        involved: Obj = {"apiVersion": API_VERSION, "kind": key.kind, "name": key.name, "namespace": key.namespace}
        if obj is not None:
            involved["uid"] = obj["metadata"].get("uid")
        name = f"{key.name}.{uuid.uuid4().hex[:16]}"
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": key.namespace},
            "involvedObject": involved,
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.instance,
        }
        self.client.create(object_path("v1", "events", key.namespace), body)
        with self._lock:
            if len(self._events) > 10_000:
                self._events.clear()  # a bound on memory; at worst a repeat starts a new event
            self._events[memo] = (name, 1, now)

    def events(self, key: ResourceKey) -> list[Event]:
        selector = f"involvedObject.kind={key.kind},involvedObject.name={key.name}"
        items = self.client.list(object_path("v1", "events", key.namespace), field_selector=selector).get("items") or []
        found = [
            Event(
                key,
                str(e.get("type") or "Normal"),
                str(e.get("reason") or ""),
                str(e.get("message") or ""),
                int(e.get("count") or 1),
                parse_time(e.get("firstTimestamp") or (e.get("metadata") or {}).get("creationTimestamp")),
                parse_time(e.get("lastTimestamp") or e.get("firstTimestamp")),
            )
            for e in items
        ]
        return sorted(found, key=lambda e: (e.last_timestamp, e.first_timestamp))

    def change_counter(self) -> int:
        with self._lock:
            return self._changes

    # ------------------------------------------------------------------ helpers

    def _remember(self, obj: Obj) -> Obj:
        informer = self._informer(str(obj.get("kind") or ""), str((obj.get("metadata") or {}).get("namespace") or ""))
        if informer is not None:
            informer.remember(obj)
        return obj
