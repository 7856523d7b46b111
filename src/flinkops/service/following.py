"""Following one resource as the controller changes it: what a waiting front end (an Airflow trigger, a
``--wait``) reads instead of polling at a fixed, long interval.

``follow`` yields the resource now and then each new version (None once it is gone). On Kubernetes that is one
watch of the object (``KubernetesStore.follow``); the local store is a SQLite file on this machine, so reading it
every ``interval`` (a quarter second) costs a few hundred microseconds and is what following means there.

Called by: ``flinkops_airflow`` (the provider's trigger and its synchronous path) and Python callers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from flinkops.api.models import FlinkDeployment, FlinkSessionJob
from flinkops.ports import ResourceKey
from flinkops.service.target import Target

__all__ = ["follow"]

Resource = FlinkDeployment | FlinkSessionJob


@runtime_checkable
class _Watchable(Protocol):
    """A store that can watch one object (the Kubernetes store)."""

    def follow(self, key: ResourceKey, timeout: float) -> Iterator[Resource | None]: ...


def follow(target: Target, key: ResourceKey, *, timeout: float, interval: float = 0.25) -> Iterator[Resource | None]:
    """The resource now, then each new version of it until ``timeout`` seconds have passed (the iterator then
    ends) or it is gone (a last None)."""
    store = target.store()
    if isinstance(store, _Watchable):
        yield from store.follow(key, timeout)
        return
    deadline = time.monotonic() + timeout
    seen: object = ()
    while True:
        current = store.get(key)
        version = (current.metadata.resource_version, current.status) if current is not None else None
        if version != seen:
            seen = version
            yield current
            if current is None:
                return
        if time.monotonic() >= deadline:
            return
        time.sleep(interval)
