"""The interfaces the controller talks to, and the plain values that cross them.

The controller depends on these protocols only; ``stores/``, ``runtimes/`` and ``flink/`` implement them and
tests substitute small in-memory fakes. Values crossing a port are frozen dataclasses so a caller can never
mutate what an implementation keeps.

Invariant: nothing here performs I/O; implementations translate their own failures into ``flinkops.errors``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from flinkops.api.models import FlinkDeployment, FlinkSessionJob

__all__ = [
    "ApplicationJob",
    "Clock",
    "ClusterKey",
    "ClusterObservation",
    "ClusterRequest",
    "ClusterRuntime",
    "Event",
    "ResourceKey",
    "ResourceStore",
    "SystemClock",
]

Resource = FlinkDeployment | FlinkSessionJob


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


@dataclass(frozen=True)
class ClusterKey:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ApplicationJob:
    """The job an application cluster runs at start (application mode)."""

    entry_class: str
    args: tuple[str, ...]
    job_id: str
    jar_paths: tuple[Path, ...] = ()
    python: bool = False


@dataclass(frozen=True)
class ClusterRequest:
    """Everything a runtime needs to start one Flink cluster for one FlinkDeployment generation."""

    key: ClusterKey
    generation: int
    flink_config: Mapping[str, str]
    jobmanager_replicas: int = 1
    taskmanager_replicas: int = 1
    application: ApplicationJob | None = None
    log_config: Mapping[str, str] = field(default_factory=dict)
    working_dir: Path | None = None


@dataclass(frozen=True)
class ClusterObservation:
    """What a runtime sees of a cluster right now. ``rest_url`` is set once a JobManager process lives."""

    key: ClusterKey
    generation: int
    jobmanagers_alive: int
    jobmanagers_expected: int
    taskmanagers_alive: int
    taskmanagers_expected: int
    rest_url: str | None
    job_id: str | None = None
    started_at: float = 0.0
    log_dir: Path | None = None

    @property
    def jobmanager_up(self) -> bool:
        return self.jobmanagers_alive > 0


class ClusterRuntime(Protocol):
    """Starts, observes and stops Flink clusters (local processes, or Kubernetes Deployments)."""

    def deploy(self, request: ClusterRequest) -> ClusterObservation: ...

    def observe(self, key: ClusterKey) -> ClusterObservation | None: ...

    def delete(self, key: ClusterKey) -> None:
        """Stop every process of the cluster and wait until they are gone. Idempotent."""
        ...

    def replace_missing_processes(self, key: ClusterKey) -> int:
        """Start TaskManagers and standby JobManagers that died; returns how many were started."""
        ...

    def log_files(self, key: ClusterKey, component: str | None = None) -> Sequence[Path]: ...


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock. Only the daemon loop and adapters use it; tests inject a virtual one."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
