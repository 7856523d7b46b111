"""The interfaces the controller talks to, and the plain values that cross them.

The controller depends on these protocols only; ``stores/``, ``runtimes/`` and ``flink/`` implement them and
tests substitute small in-memory fakes. Values crossing a port are frozen dataclasses so a caller can never
mutate what an implementation keeps.

Invariant: nothing here performs I/O; implementations translate their own failures into ``flinkops.errors``.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:  # annotations only: the CLI reads ResourceKey and friends without building the models
    from flinkops.api.models import FlinkDeployment, FlinkSessionJob

    Resource = FlinkDeployment | FlinkSessionJob

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
    "Snapshot",
    "SnapshotKind",
    "SnapshotStore",
    "SystemClock",
]


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
    #: The job jar as the spec names it (``local:///opt/flink/...`` inside the image): what a Kubernetes runtime
    #: passes on, where the local runtime uses ``jar_paths``.
    jar_uri: str | None = None


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
    #: Extra environment of every Flink process: secrets such as S3 credentials go here, never into the
    #: rendered configuration files.
    environment: Mapping[str, str] = field(default_factory=dict)
    #: Optional plugins to enable, by plugin directory name (``s3-fs-presto``) → the plugin's jar.
    plugins: Mapping[str, Path] = field(default_factory=dict)
    #: Jars added to the cluster's ``lib/`` next to the distribution's (connectors such as Kafka).
    lib_jars: tuple[Path, ...] = ()
    #: The FlinkDeployment with the spec being deployed: a Kubernetes runtime renders pod templates, resources
    #: and owner references from it.
    resource: FlinkDeployment | None = None


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

    def scale_taskmanagers(self, key: ClusterKey, count: int, environment: Mapping[str, str] | None = None) -> int:
        """Run ``count`` TaskManagers (start or stop some); returns how many were added (negative: removed).
        ``environment`` is the deploy's extra process environment (secrets are not kept by the runtime)."""
        ...

    def changed_clusters(self) -> Sequence[ClusterKey]:
        """Clusters whose processes (pods) died since the last call, for the controller to look at at once."""
        ...

    def replace_missing_processes(self, key: ClusterKey, environment: Mapping[str, str] | None = None) -> int:
        """Start TaskManagers and standby JobManagers that died; returns how many were started.
        ``environment`` is the deploy's extra process environment (secrets are not kept by the runtime)."""
        ...

    def log_files(self, key: ClusterKey, component: str | None = None) -> Sequence[Path]: ...


SnapshotKind = Literal["checkpoint", "savepoint"]


@dataclass(frozen=True)
class Snapshot:
    """One completed checkpoint or savepoint in storage (its ``_metadata`` file exists).

    ``path`` is the snapshot directory, normalised (``file:/abs/dir/chk-7``, as Flink prints it; compare paths
    with ``flinkops.api.snapshot_paths.same_snapshot``). ``time_ms`` is when it completed (the modification
    time of ``_metadata``); ``size_bytes`` sums the files under the directory (shared incremental state lives
    outside it and is not counted). Checkpoints live in ``<checkpoint dir>/<job id>/chk-<n>``, so ``job_id``
    and ``checkpoint_id`` are known. Savepoint directories are named ``savepoint-<first 6 hex of the job
    id>-<12 hex>``: ``job_id_prefix`` is those 6 characters and ``job_id`` is set only when exactly one of the
    job ids the caller passed starts with them.
    """

    path: str
    kind: SnapshotKind
    time_ms: int
    size_bytes: int
    job_id: str | None = None
    job_id_prefix: str | None = None
    checkpoint_id: int | None = None


class SnapshotStore(Protocol):
    """Lists, inspects and disposes checkpoints and savepoints in checkpoint/savepoint storage.

    Paths are accepted as ``file:/x``, ``file:///x`` or ``/x`` and returned normalised (``file:/x``).
    A location on storage the implementation cannot reach raises a ``PermanentError`` naming the path;
    a relative or empty path raises ``InvalidInput``.
    """

    def list(
        self, checkpoint_dir: str | None, savepoint_dir: str | None, job_ids: Iterable[str] = ()
    ) -> builtins.list[Snapshot]:
        """Every completed checkpoint (``<checkpoint_dir>/<job id>/chk-<n>``) and savepoint
        (``<savepoint_dir>/savepoint-*``), oldest first. ``job_ids`` only resolves savepoint job ids; it
        does not filter. A directory that does not exist (yet) holds no snapshots."""
        ...

    def inspect(self, path: str, job_ids: Iterable[str] = ()) -> Snapshot | None:
        """The snapshot at ``path`` (its directory or its ``_metadata`` file), or None if not restorable."""
        ...

    def exists(self, path: str) -> bool:
        """Whether ``path`` can be restored from: a directory holding ``_metadata``, or a ``_metadata`` file."""
        ...

    def dispose(self, path: str) -> None:
        """Delete a completed snapshot's directory (``chk-<n>`` or ``savepoint-*``, or its ``_metadata``).

        Refuses (``PermanentError``) anything else, including a directory without ``_metadata``.
        Idempotent: a snapshot that is already gone is not an error.
        """
        ...

    def latest_checkpoint(self, checkpoint_dir: str, job_id: str) -> str | None:
        """The completed checkpoint of ``job_id`` with the highest checkpoint number, or None."""
        ...

    def latest_savepoint(self, savepoint_dir: str, job_id: str, not_before_ms: int = 0) -> str | None:
        """The newest savepoint named after ``job_id`` (by its 6-character prefix) completed at or after
        ``not_before_ms``, or None."""
        ...


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
