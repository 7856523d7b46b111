"""The provisioning port: what a target does before a Flink cluster or job can start, and how it reaches state.

Locally (``provisioning.local``) job jars, optional plugins and connectors are fetched onto this machine, S3
credentials go into the processes' environment, relative paths resolve against the YAML's directory and state has
a default directory under the flinkops home. On Kubernetes (``provisioning.pods``) the image carries jars and
plugins, ``local://`` URIs are passed on as written, and the pods get their environment from their templates; only
session-job jars (uploaded through REST) are fetched by the operator.

The controller asks the provisioner, never "am I local?": every difference between targets lives behind this port.

Invariant: no method here changes a running cluster; everything runs in the controller's preflight, before the
intent is written, so a missing jar or bucket fails a deploy while the running job keeps running.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from flinkops.ports.snapshots import SnapshotStore

if TYPE_CHECKING:
    from flinkops.api.models import FlinkDeployment, FlinkDeploymentSpec, JobSpec
    from flinkops.ports.resources import Resource

__all__ = ["ClusterExtras", "Provisioner", "RenderInputs"]


@dataclass(frozen=True)
class RenderInputs:
    """What rendering a deployment's Flink configuration needs from the target it runs on."""

    name: str
    namespace: str
    #: e.g. file:///home/u/.flinkops/state/default/fraud-scoring; None where the target has no default storage
    #: (Kubernetes: a pod's disk does not outlive it), so only what the spec configures is used.
    default_state_uri: str | None
    python_executable: str
    #: The Flink version that runs the cluster when the target knows it (the local distribution's, e.g. 2.2.1);
    #: None: the spec's ``flinkVersion`` (Kubernetes: the image's).
    flink_version: str | None = None
    #: Clusters on this machine: no Kubernetes API server, so Kubernetes HA services are left out (the controller
    #: recovers a dead JobManager from the newest checkpoint instead).
    local: bool = False


@dataclass(frozen=True)
class ClusterExtras:
    """Additions to one cluster request: config entries, secret environment, plugins and lib jars."""

    config: Mapping[str, str] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)
    plugins: Mapping[str, Path] = field(default_factory=dict)
    lib_jars: tuple[Path, ...] = ()


class Provisioner(Protocol):
    @property
    def default_state_dirs(self) -> bool:
        """Whether a deployment without checkpoint/savepoint directories gets default ones (local target)."""
        ...

    @property
    def secret_schemes(self) -> frozenset[str]:
        """The secret reference schemes (``api.secrets``) this target resolves or renders."""
        ...

    def render_inputs(self, deployment: FlinkDeployment) -> RenderInputs:
        """What rendering ``deployment``'s Flink configuration needs from the target
        (``flink.config.render_inputs`` with this target's home, Python and JVM options)."""
        ...

    def working_dir(self, resource: Resource) -> Path | None:
        """Where the job's relative paths resolve (the applied YAML's directory locally; None in pods)."""
        ...

    def prepare_cluster(
        self, spec: FlinkDeploymentSpec, config: Mapping[str, str], args: Sequence[str]
    ) -> ClusterExtras:
        """Plugins, connectors, S3 settings and secret environment for a cluster running ``spec`` with the
        rendered ``config``, after checking the state buckets. Raises ``PermanentError`` with the reason."""
        ...

    def usrlib_dir(self, resource: Resource) -> Path | None:
        """What the official image's ``/opt/flink/usrlib/`` is for ``resource`` (None where the image is real)."""
        ...

    def job_jars(
        self, job: JobSpec, base: Path | None, config: Mapping[str, str], usrlib: Path | None = None
    ) -> tuple[Path, ...]:
        """The local files an application cluster's job needs (none where the image carries the jar). Without
        ``job.entryClass`` the jar must name its Main-Class (``PermanentError`` naming ``spec.job.entryClass``)."""
        ...

    def job_args(self, args: Sequence[str], usrlib: Path | None) -> tuple[str, ...]:
        """The job's arguments as its processes see them (``/opt/flink/...`` paths made local, where the image
        is not real)."""
        ...

    def fetch_jar(self, uri: str, base: Path | None, config: Mapping[str, str], usrlib: Path | None = None) -> Path:
        """A local file for a session job's jar, to upload through the session cluster's REST API."""
        ...

    def process_environment(self, config: Mapping[str, str], args: Sequence[str]) -> dict[str, str]:
        """The secret environment of a cluster's processes (empty where pod templates provide it)."""
        ...

    def without_secrets(self, config: Mapping[str, str]) -> dict[str, str]:
        """``config`` minus secrets: they reach the processes through their environment, never through files."""
        ...

    def snapshot_store(self, config: Mapping[str, str]) -> SnapshotStore:
        """Checkpoint and savepoint storage as a deployment with ``config`` reaches it from here."""
        ...
