"""The resource store port: where FlinkDeployments and FlinkSessionJobs and their status live.

Implemented by ``stores.sqlite`` (local) and ``stores.kubernetes`` (the API server); the controller and the
service layer read and write resources only through it. Tests use ``tests/fakes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the models load on first use: `flinkops get` reads stored objects without them
    from flinkops.api.models import FlinkDeployment, FlinkSessionJob

    Resource = FlinkDeployment | FlinkSessionJob


def __getattr__(name: str) -> Any:
    if name == "Resource":
        from flinkops.api.models import FlinkDeployment, FlinkSessionJob

        return FlinkDeployment | FlinkSessionJob
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Event", "Resource", "ResourceKey", "ResourceStore"]


@dataclass(frozen=True, order=True)
class ResourceKey:
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"

    @classmethod
    def of(cls, resource: Resource) -> ResourceKey:
        return cls(resource.kind, resource.metadata.namespace, resource.metadata.name)


@dataclass(frozen=True)
class Event:
    """A Kubernetes-style event: ``type`` is Normal or Warning; repeated events bump ``count``."""

    key: ResourceKey
    type: str
    reason: str
    message: str
    count: int = 1
    first_timestamp: float = 0.0
    last_timestamp: float = 0.0


class ResourceStore(Protocol):
    """Where resources and their status live (SQLite locally, the API server on Kubernetes).

    ``metadata.resourceVersion`` changes on every write; ``metadata.generation`` only when the spec changes.
    """

    def get(self, key: ResourceKey) -> Resource | None: ...

    def list_resources(self, kind: str | None = None, namespace: str | None = None) -> list[Resource]: ...

    def apply(self, resource: Resource) -> Resource:
        """Create the resource or replace its spec; bumps the generation when the spec changed."""
        ...

    def update_status(self, resource: Resource) -> Resource:
        """Write ``resource.status`` if ``resource.metadata.resourceVersion`` is still current.

        Raises ``Conflict`` when someone wrote in between; returns the stored resource.
        """
        ...

    def request_deletion(self, key: ResourceKey) -> Resource:
        """Mark for deletion (sets ``metadata.deletionTimestamp``); the controller cleans up, then removes."""
        ...

    def remove(self, key: ResourceKey) -> None:
        """Forget the resource entirely (after its cleanup finished)."""
        ...

    def record_event(self, key: ResourceKey, type_: str, reason: str, message: str) -> None: ...

    def events(self, key: ResourceKey) -> list[Event]: ...

    def change_counter(self) -> int:
        """A number that grows whenever any spec changes or a deletion is requested: cheap polling."""
        ...
