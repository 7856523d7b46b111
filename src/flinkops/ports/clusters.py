"""The cluster runtime port: start, observe, scale and stop one Flink cluster per FlinkDeployment.

Implemented by ``runtimes.local`` (JVM processes) and ``runtimes.kubernetes`` (Deployments and Services).

Pre-started upgrades: ``prepare`` starts the next generation's cluster (a session cluster, no job) next to the
running one; ``deploy`` of that generation promotes it (submits the application job to it through Flink REST)
instead of starting processes, and from then on it is the deployment's cluster. Invariant: a resource has at
most one active cluster and at most one prepared cluster; ``observe`` reports the active one (None when there
is none, even while a prepared one waits) with the prepared one's generation and readiness.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from flinkops.errors import ClusterFault

if TYPE_CHECKING:
    from flinkops.api.models import FlinkDeployment

__all__ = [
    "ApplicationJob",
    "ClusterKey",
    "ClusterObservation",
    "ClusterRequest",
    "ClusterRuntime",
    "MetricsEndpoint",
]


@dataclass(frozen=True)
class ClusterKey:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class MetricsEndpoint:
    """Where one Flink process of a local cluster serves a Prometheus reporter (``api.reporters``)."""

    key: ClusterKey
    component: str  # "jobmanager" | "taskmanager"
    process: str  # "taskmanager-1": the process's label in the cluster record
    reporter: str  # the reporter's name in the configuration (``prom`` in metrics.reporter.prom.*)
    url: str  # http://127.0.0.1:<port>/metrics
    alive: bool  # the process runs (a dead one's endpoint answers nothing until it is replaced)


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
    #: The generation of a cluster started by ``prepare`` next to this one, and whether it is ready to take
    #: the job (JobManager REST up, every TaskManager registered).
    prepared_generation: int | None = None
    prepared_ready: bool = False
    #: What is wrong with the cluster's pods that Flink cannot tell (an image missing, a pod no node can take, a
    #: container that keeps exiting), the JobManager's before a TaskManager's; None when nothing is seen wrong.
    #: The local runtime tells here a JobManager process that exited on its own (``ErrorReason.START_FAILED``,
    #: with its exit code and the root cause from its log), which nothing but the controller restarts.
    fault: ClusterFault | None = None

    @property
    def jobmanager_up(self) -> bool:
        return self.jobmanagers_alive > 0


class ClusterRuntime(Protocol):
    """Starts, observes and stops Flink clusters (local processes, or Kubernetes Deployments)."""

    #: Whether the controller grows and shrinks session clusters with their jobs' needs (``scale_taskmanagers``
    #: stops the highest-numbered TaskManagers, and each registers with Flink as ``taskmanager-<index>``): the
    #: local runtime's standalone clusters. On Kubernetes, Flink's native mode does it itself.
    elastic_sessions: bool

    def deploy(self, request: ClusterRequest) -> ClusterObservation:
        """Start the cluster ``request`` describes, replacing the active one. A ready prepared cluster of the same
        generation is promoted instead (its application job submitted through Flink REST, idempotently); a
        prepared cluster that is not ready or of another generation is stopped first. A new cluster starts from
        no HA metadata: Flink recovers no job of an earlier cluster under the same name, the request's job (and
        restore point) is all that runs."""
        ...

    def prepare(self, request: ClusterRequest) -> str | None:
        """Start a cluster for ``request.generation`` next to the active one, with no job (a session cluster
        whose TaskManagers register), for a later ``deploy`` of that generation to promote. Idempotent for the
        same generation (a prepared cluster of another generation is replaced). Returns None when it runs (or
        already ran), else why it cannot (the caller then upgrades in the usual order)."""
        ...

    def observe(self, key: ClusterKey) -> ClusterObservation | None: ...

    def delete(self, key: ClusterKey, *, keep_prepared: bool = False) -> float | None:
        """Stop every process of the active cluster (and of the prepared one unless ``keep_prepared``) and wait
        until they are gone, then remove the cluster's HA metadata (Flink's HA ConfigMaps or znodes). Idempotent.
        Returns when (seconds since the epoch) the last process was seen gone, where the runtime can tell it
        apart from its cleanup; None otherwise (the caller takes the moment this returns)."""
        ...

    def scale_taskmanagers(
        self, key: ClusterKey, count: int, environment: Mapping[str, str] | None = None, *, stop: Sequence[int] = ()
    ) -> int:
        """Run ``count`` TaskManagers (start or stop some); returns how many were added (negative: removed).
        ``environment`` is the deploy's extra process environment (secrets are not kept by the runtime).
        ``stop``: when scaling down, the indexes of the TaskManagers to stop (idle ones), instead of the
        highest-numbered; only a runtime with ``elastic_sessions`` is asked for it."""
        ...

    def changed_clusters(self) -> Sequence[ClusterKey]:
        """Clusters whose processes (pods) died since the last call, for the controller to look at at once."""
        ...

    def replace_missing_processes(self, key: ClusterKey, environment: Mapping[str, str] | None = None) -> int:
        """Start TaskManagers and standby JobManagers that died; returns how many were started.
        ``environment`` is the deploy's extra process environment (secrets are not kept by the runtime)."""
        ...

    def log_files(self, key: ClusterKey, component: str | None = None) -> Sequence[Path]: ...
