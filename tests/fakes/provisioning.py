"""A ``Provisioner`` for behaviour tests: the local target's choices (default state directories) without a
machine behind them.

Deployments without checkpoint/savepoint directories get ``file:///state/<namespace>/<name>/...`` (kept in
``FakeSnapshots``), nothing is fetched (job jars, plugins and connectors are taken as present), no secrets reach
the processes. Knobs: ``missing_jars`` (a jar URI listed there fails the preflight with ``PermanentError``, as a
jar that does not exist does locally) and ``refusal`` (``prepare_cluster`` fails with it, like an unreachable
bucket).

Called by: the controller (through the port) and ``fakes.world``.

Invariant: every deployment reaches the one ``FakeSnapshots`` this provisioner was built with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from fakes.snapshots import FakeSnapshots
from flinkops.api.models import FlinkDeployment, FlinkDeploymentSpec, JobSpec
from flinkops.api.secrets import LOCAL_SCHEMES, arg_references, config_references
from flinkops.errors import PermanentError
from flinkops.ports import ClusterExtras, RenderInputs, Resource, SnapshotStore
from flinkops.secrets import SecretUnavailable

__all__ = ["FakeProvisioner"]


class FakeProvisioner:
    def __init__(self, snapshots: FakeSnapshots, *, state_root: str = "file:///state") -> None:
        self.snapshots = snapshots
        self.state_root = state_root.rstrip("/")
        #: Jar URIs that "do not exist": a deploy or submission needing one fails before anything changes.
        self.missing_jars: set[str] = set()
        #: When set, every cluster preparation fails with this reason (a bucket that cannot be reached, say).
        self.refusal: str | None = None
        #: The secrets that exist, by reference text (``${secret:env:NAME}``); others are missing.
        self.secrets: dict[str, str] = {}

    @property
    def default_state_dirs(self) -> bool:
        return True

    @property
    def secret_schemes(self) -> frozenset[str]:
        return LOCAL_SCHEMES

    def render_inputs(self, deployment: FlinkDeployment) -> RenderInputs:
        namespace, name = deployment.metadata.namespace, deployment.metadata.name
        return RenderInputs(
            name=name,
            namespace=namespace,
            default_state_uri=f"{self.state_root}/{namespace}/{name}",
            python_executable="/usr/bin/python3",
        )

    def working_dir(self, resource: Resource) -> Path | None:
        return None

    def prepare_cluster(
        self, spec: FlinkDeploymentSpec, config: Mapping[str, str], args: Sequence[str]
    ) -> ClusterExtras:
        if self.refusal is not None:
            raise PermanentError(self.refusal)
        return ClusterExtras(environment=self._resolve(config, args))

    def _resolve(self, config: Mapping[str, str], args: Sequence[str]) -> dict[str, str]:
        """As the local provisioner: every reference's value by its variable; a missing one fails."""
        values: dict[str, str] = {}
        for ref in [*config_references(config).values(), *arg_references(args).values()]:
            if ref.text not in self.secrets:
                raise SecretUnavailable(f"{ref}: no such secret")
            values[ref.env_name] = self.secrets[ref.text]
        return values

    def _jar(self, uri: str) -> Path:
        if uri in self.missing_jars:
            raise PermanentError(f"spec.job.jarURI: {uri} does not exist on this machine")
        return Path("/fake/jars") / Path(uri.split(":", 1)[-1]).name

    def usrlib_dir(self, resource: Resource) -> Path | None:
        return None

    def job_jars(
        self, job: JobSpec, base: Path | None, config: Mapping[str, str], usrlib: Path | None = None
    ) -> tuple[Path, ...]:
        return (self._jar(job.jar_uri),) if job.jar_uri else ()

    def job_args(self, args: Sequence[str], usrlib: Path | None) -> tuple[str, ...]:
        return tuple(args)

    def fetch_jar(self, uri: str, base: Path | None, config: Mapping[str, str], usrlib: Path | None = None) -> Path:
        return self._jar(uri)

    def process_environment(self, config: Mapping[str, str], args: Sequence[str]) -> dict[str, str]:
        return self._resolve(config, args)

    def without_secrets(self, config: Mapping[str, str]) -> dict[str, str]:
        return dict(config)

    def snapshot_store(self, config: Mapping[str, str]) -> SnapshotStore:
        return self.snapshots
