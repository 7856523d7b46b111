"""The Kubernetes target's ``Provisioner``: clusters run in pods from an image that carries Flink, the job jar
and the plugins, so nothing is fetched or added for them; pods read their secrets from the environment their
templates give, and ``file://`` state lives on the pods' disks, out of the operator's reach.

Only a session job's jar is fetched here: it is uploaded through the session cluster's REST API. S3 state is
listed with the deployment's S3 settings (the operator's own credentials chain, such as IRSA, otherwise).

**S3 keys in ``flinkConfiguration`` are refused** (a deploy or upgrade fails with ``status.error``, a Warning
event and Degraded=True; a running job is not touched). flinkops keeps keys out of the ConfigMap it renders, so
they could reach the pods only through a Secret the operator writes, and writing Secrets is a right RBAC cannot
narrow to one name: the operator could then overwrite any Secret of the namespace. Pods get S3 access the way
production clusters give it: a role for their ServiceAccount (IRSA, Workload Identity), or
``kubernetes.env.secretKeyRef`` naming a Secret the user manages (``env:AWS_ACCESS_KEY_ID,secret:s3,key:access;
env:AWS_SECRET_ACCESS_KEY,secret:s3,key:secret``), which the kubelet reads; the operator itself lists snapshots
with its own credentials (its environment or its ServiceAccount's role).

Called by: the operator's controllers, through the ``Provisioner`` port (built by ``flinkops.wiring``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from flinkops.api.models import FlinkDeployment, FlinkDeploymentSpec, JobSpec
from flinkops.api.secrets import KUBERNETES_SCHEMES, config_references
from flinkops.errors import PermanentError
from flinkops.flink.config import RenderInputs, render_inputs
from flinkops.ports import ClusterExtras, Resource
from flinkops.provisioning.local import DataPlane
from flinkops.s3 import SECRET_CONFIG_KEYS
from flinkops.snapshots.local import PodLocalStorage

__all__ = ["PodProvisioner"]


class PodProvisioner(DataPlane):
    def __init__(self, work_dir: Path) -> None:
        """``work_dir``: where session-job jars are downloaded before their upload."""
        super().__init__(work_dir, None, local_snapshots=PodLocalStorage())

    @property
    def default_state_dirs(self) -> bool:
        return False  # a pod's default directory would die with the pod: the spec must name its state

    @property
    def secret_schemes(self) -> frozenset[str]:
        return KUBERNETES_SCHEMES

    def render_inputs(self, deployment: FlinkDeployment) -> RenderInputs:
        return render_inputs(deployment, None)

    def working_dir(self, resource: Resource) -> Path | None:
        return None

    def prepare_cluster(
        self, spec: FlinkDeploymentSpec, config: Mapping[str, str], args: Sequence[str] = ()
    ) -> ClusterExtras:
        refs = config_references(config)  # rendered as secretKeyRef by the runtime: not in the ConfigMap
        keys = sorted(k for k in SECRET_CONFIG_KEYS if str(config.get(k, "")).strip() and k not in refs)
        if keys:
            raise PermanentError(
                f"flinkConfiguration sets {', '.join(keys)}: on Kubernetes S3 keys do not go into the "
                "FlinkDeployment (flinkops keeps them out of the ConfigMap and does not write Secrets). Give the "
                "pods a role for their ServiceAccount (IRSA), or put the keys in a Secret and reference it: "
                "kubernetes.env.secretKeyRef: env:AWS_ACCESS_KEY_ID,secret:<name>,key:<key>;"
                "env:AWS_SECRET_ACCESS_KEY,secret:<name>,key:<key>"
            )
        return ClusterExtras()

    def usrlib_dir(self, resource: Resource) -> Path | None:
        return None  # the image has its own /opt/flink/usrlib

    def job_jars(
        self, job: JobSpec, base: Path | None, config: Mapping[str, str], usrlib: Path | None = None
    ) -> tuple[Path, ...]:
        return ()

    def job_args(self, args: Sequence[str], usrlib: Path | None) -> tuple[str, ...]:
        return tuple(args)  # paths in the image mean what they say there

    def process_environment(self, config: Mapping[str, str], args: Sequence[str] = ()) -> dict[str, str]:
        return {}
