"""What one pass needs rendered: a deployment's Flink configuration, its storage, and the cluster requests.

The configuration is rendered once per pass and spec (the observer, the preflight and the actions ask for the
same spec several times in a pass); everything a target does differently (default state directories, jars,
plugins, connectors, secret environment) comes from the ``Provisioner`` port, so this module never asks which
target it runs on.

Called by: the controller's loop (``begin_pass``), observer and executor.

Invariant: secrets never stay in a cluster request's configuration (it lands in files and ConfigMaps); they go
to the processes' environment, or the pods read them from their templates.
"""

from __future__ import annotations

from pathlib import Path

from flinkops.api.flinkconf import PYTHON_DRIVER, taskmanager_count
from flinkops.api.models import FlinkDeployment, FlinkDeploymentSpec, FlinkSessionJob, FlinkSessionJobSpec
from flinkops.core.planner import DeployCluster, PrepareCluster
from flinkops.flink.config import render_flink_config
from flinkops.ports import (
    ApplicationJob,
    ClusterKey,
    ClusterRequest,
    Provisioner,
    ResourceKey,
    ResourceStore,
    SnapshotStore,
)

__all__ = ["RESTORE_KEY", "RequestBuilder", "cluster_key"]

RESTORE_KEY = "execution.state-recovery.path"

Resource = FlinkDeployment | FlinkSessionJob


def cluster_key(resource: Resource) -> ClusterKey:
    return ClusterKey(resource.metadata.namespace, resource.metadata.name)


class RequestBuilder:
    """Per-pass memo of rendered configurations, fetched jars and built cluster requests."""

    def __init__(self, store: ResourceStore, provisioner: Provisioner) -> None:
        self.store = store
        self.provisioner = provisioner
        self._configs: dict[tuple[str, str, int], tuple[FlinkDeploymentSpec, dict[str, str]]] = {}
        # Keyed by what resolves a jar: its URI and the directories a relative or /opt/flink/usrlib/ path starts at
        # (they differ between resources that name the same URI).
        self._jars: dict[tuple[str, Path | None, Path | None], Path] = {}
        self._requests: dict[int, tuple[DeployCluster, ClusterRequest]] = {}

    def begin_pass(self) -> None:
        """Forget the previous pass: specs, storage and jars may have changed since."""
        self._configs.clear()
        self._jars.clear()
        self._requests.clear()

    # ------------------------------------------------------------------ configuration and storage

    def config(self, resource: FlinkDeployment, spec: FlinkDeploymentSpec | None = None) -> dict[str, str]:
        """The Flink configuration of ``resource`` running ``spec`` (its own spec by default), rendered once per
        pass; a fresh dict each call, so a caller may add to it."""
        spec = spec if spec is not None else resource.spec
        meta = resource.metadata
        memo_key = (meta.namespace, meta.name, id(spec))
        cached = self._configs.get(memo_key)
        if cached is None or cached[0] is not spec:
            rendered = render_flink_config(spec, self.provisioner.render_inputs(resource))
            cached = (spec, rendered)  # the spec is kept so its id cannot be reused within the pass
            self._configs[memo_key] = cached
        return dict(cached[1])

    def resource_config(self, resource: Resource) -> dict[str, str]:
        """A deployment's rendered Flink configuration, or a session job's own configuration."""
        if isinstance(resource, FlinkDeployment):
            return self.config(resource)
        return dict(resource.spec.flink_configuration)

    def snapshot_store(self, resource: Resource, config: dict[str, str] | None = None) -> SnapshotStore:
        """Storage as this resource's configuration (``config``, when already rendered) reaches it."""
        return self.provisioner.snapshot_store(config if config is not None else self.resource_config(resource))

    def process_environment(self, resource: FlinkDeployment) -> dict[str, str]:
        args = resource.spec.job.args if resource.spec.job is not None else []
        return self.provisioner.process_environment(self.config(resource), args)

    # ------------------------------------------------------------------ requests

    def cluster_request(self, resource: FlinkDeployment, action: DeployCluster) -> ClusterRequest:
        """Everything the runtime needs for the cluster ``action`` deploys, built once per action and pass (the
        preflight builds it, fetching what is missing; the action reuses it)."""
        built = self._requests.get(id(action))
        if built is not None and built[0] is action:
            return built[1]
        request = self._build(resource, action)
        self._requests[id(action)] = (action, request)
        return request

    def prepare_request(self, resource: FlinkDeployment, action: PrepareCluster) -> ClusterRequest:
        """The cluster a pre-started upgrade starts ahead of its deploy: the deploy's request without a job id
        or a restore point (neither is known before the old job stops)."""
        deploy = DeployCluster(spec=action.spec, generation=action.generation, job_id="")
        return self.cluster_request(resource, deploy)

    def _build(self, resource: FlinkDeployment, action: DeployCluster) -> ClusterRequest:
        spec = action.spec
        config = self.config(resource, spec)
        if action.restore_path:
            config[RESTORE_KEY] = action.restore_path
        args = list(spec.job.args) if spec.job is not None else []
        extras = self.provisioner.prepare_cluster(spec, config, args)
        config = {**self.provisioner.without_secrets(config), **extras.config}
        working_dir = self.provisioner.working_dir(resource)
        usrlib = self.provisioner.usrlib_dir(resource)
        application = None
        if spec.job is not None:
            assert action.job_id is not None  # "" for a prepared cluster: its job id is known at the deploy
            jars = self._job_jars(spec, working_dir, config, usrlib)
            application = ApplicationJob(
                entry_class=spec.job.entry_class or "",  # "": the jar's Main-Class (checked by job_jars)
                args=self.provisioner.job_args(spec.job.args, usrlib),
                job_id=action.job_id,
                jar_paths=jars,
                python=spec.job.entry_class == PYTHON_DRIVER,
                jar_uri=spec.job.jar_uri,
            )
        return ClusterRequest(
            key=cluster_key(resource),
            generation=action.generation,
            flink_config=config,
            jobmanager_replicas=spec.job_manager.replicas if spec.job_manager else 1,
            taskmanager_replicas=taskmanager_count(spec, config),
            application=application,
            log_config=dict(spec.log_configuration or {}),
            working_dir=working_dir,
            environment=extras.environment,
            plugins=extras.plugins,
            lib_jars=extras.lib_jars,
            resource=resource.model_copy(update={"spec": spec}),
        )

    def _job_jars(
        self, spec: FlinkDeploymentSpec, base: Path | None, config: dict[str, str], usrlib: Path | None
    ) -> tuple[Path, ...]:
        assert spec.job is not None
        uri = spec.job.jar_uri
        key = (uri or "", base, usrlib)
        if uri and key in self._jars:
            return (self._jars[key],)
        jars = self.provisioner.job_jars(spec.job, base, config, usrlib)
        if uri and jars:
            self._jars[key] = jars[0]
        return jars

    def session_job_jar(self, resource: FlinkSessionJob, spec: FlinkSessionJobSpec) -> Path:
        """The session job's jar, fetched at most once per pass; ``s3://`` is read with the session cluster's
        S3 settings."""
        assert spec.job is not None and spec.job.jar_uri is not None
        uri = spec.job.jar_uri
        base, usrlib = self.provisioner.working_dir(resource), self.provisioner.usrlib_dir(resource)
        key = (uri, base, usrlib)
        if key not in self._jars:
            target = self.store.get(ResourceKey("FlinkDeployment", resource.metadata.namespace, spec.deployment_name))
            config = self.config(target) if isinstance(target, FlinkDeployment) else {}
            config.update(spec.flink_configuration)
            self._jars[key] = self.provisioner.fetch_jar(uri, base, config, usrlib)
        return self._jars[key]
