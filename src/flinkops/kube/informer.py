"""A list-and-watch cache of one kind of Kubernetes object, for one namespace or all of them.

``Informer.start()`` lists the collection, then follows a watch from the list's resourceVersion in a daemon
thread; a watch that ends is resumed from the last version seen, one that expired (410) or broke leads to a new
list after a backoff. Every ``resync`` seconds the informer lists again even when nothing broke, so a missed
event can only delay, never lose, a change. Each add, change and removal is passed to ``on_change(kind, obj)``
(kind ``ADDED`` / ``MODIFIED`` / ``DELETED``) from the informer's thread.

**What is kept.** ``transform`` (default :func:`without_managed_fields`) turns every object the informer takes in
(listed, watched, or put in with ``remember``) into what it keeps and hands out: the cache holds as many objects as
the cluster has, for as long as they live, so it keeps only what its readers use. ``managedFields`` (the API
server's bookkeeping of server-side apply, often the largest part of an object) is never read by flinkops; a
caller that reads only a few fields of a kind passes a transform that keeps those (``runtimes.kubernetes.cached``).

Called by: ``stores.kubernetes`` (the custom resources) and ``runtimes.kubernetes`` (the children).
Invariant: ``objects()`` never returns an object older than one it returned before (versions only grow, and a
caller's own write can be put in with ``remember``, which keeps the newer of the two); every object handed out or
passed to ``on_change`` went through ``transform``, which keeps ``metadata.resourceVersion``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from flinkops.errors import FlinkopsError
from flinkops.kube.client import Expired, KubeClient

__all__ = ["Informer", "newer", "without_managed_fields"]

log = logging.getLogger("flinkops.kube")

Obj = dict[str, Any]
OnChange = Callable[[str, Obj], None]
Transform = Callable[[Obj], Obj]


def without_managed_fields(obj: Obj) -> Obj:
    """``obj`` without ``metadata.managedFields`` (a shallow copy when there were some; ``obj`` is not changed)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


def _version(obj: Obj) -> int:
    text = str((obj.get("metadata") or {}).get("resourceVersion") or "0")
    return int(text) if text.isdigit() else 0


def newer(candidate: Obj, current: Obj | None) -> bool:
    """Whether ``candidate`` is at least as new as ``current`` (etcd-backed versions are integers)."""
    return current is None or _version(candidate) >= _version(current)


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class Informer:
    def __init__(
        self,
        client: KubeClient,
        path: str,
        *,
        label_selector: str | None = None,
        on_change: OnChange | None = None,
        resync: float = 300.0,
        name: str = "",
        transform: Transform = without_managed_fields,
    ) -> None:
        self.client, self.path, self.label_selector = client, path, label_selector
        self.on_change = on_change
        self.transform = transform
        self.resync = resync
        self.name = name or path
        self._objects: dict[tuple[str, str], Obj] = {}
        self._lock = threading.Lock()
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    # ------------------------------------------------------------------ reading

    def get(self, namespace: str, name: str) -> Obj | None:
        with self._lock:
            return self._objects.get((namespace, name))

    def objects(self) -> list[Obj]:
        with self._lock:
            return list(self._objects.values())

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    def remember(self, obj: Obj) -> None:
        """Put an object this process just wrote into the cache, unless the cache already has a newer one."""
        obj = self.transform(obj)
        key = _key(obj)
        with self._lock:
            if newer(obj, self._objects.get(key)):
                self._objects[key] = obj

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._objects.pop((namespace, name), None)

    # ------------------------------------------------------------------ running

    def start(self) -> Informer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"informer {self.name}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                version = self._relist()
                self._synced.set()
                self.last_error = None
                backoff = 0.5
                self._follow(version)
            except Expired:
                continue  # list again at once: the version we held is too old
            except FlinkopsError as exc:
                self.last_error = str(exc)
                log.warning("%s: %s (list again in %.1fs)", self.name, exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _relist(self) -> str:
        page = self.client.list(self.path, label_selector=self.label_selector)
        version = str((page.get("metadata") or {}).get("resourceVersion") or "")
        fresh = {_key(o): o for o in map(self.transform, page.get("items") or [])}
        del page  # the list as received: only what ``transform`` kept stays
        changes: list[tuple[str, Obj]] = []
        with self._lock:
            for key, obj in fresh.items():
                old = self._objects.get(key)
                if old is None:
                    changes.append(("ADDED", obj))
                elif not newer(obj, old):
                    fresh[key] = old  # this process wrote a newer version than the list saw
                elif _version(obj) != _version(old):
                    changes.append(("MODIFIED", obj))
            for key, old in self._objects.items():
                if key not in fresh:
                    changes.append(("DELETED", old))
            self._objects = fresh
        self._notify(changes)
        return version

    def _follow(self, version: str) -> None:
        """Watch until the resync period is over (then list again) or the watch breaks."""
        remaining = self.resync
        while remaining > 0 and not self._stop.is_set():
            timeout = int(min(remaining, 300))
            for kind, obj in self.client.watch(
                self.path, resource_version=version, timeout_seconds=timeout, label_selector=self.label_selector
            ):
                if self._stop.is_set():
                    return
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind == "BOOKMARK":
                    continue
                obj = self.transform(obj)
                key = _key(obj)
                with self._lock:
                    if kind == "DELETED":
                        self._objects.pop(key, None)
                    elif newer(obj, self._objects.get(key)):
                        self._objects[key] = obj
                self._notify([(kind, obj)])
            remaining -= timeout

    def _notify(self, changes: list[tuple[str, Obj]]) -> None:
        if self.on_change is None:
            return
        for kind, obj in changes:
            try:
                self.on_change(kind, obj)
            except Exception:  # a listener's bug must not stop the cache
                log.exception("%s: change listener failed", self.name)
