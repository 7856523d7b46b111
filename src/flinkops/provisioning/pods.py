"""The Kubernetes target's ``Provisioner``: clusters run in pods from an image that carries Flink, the job jar
and the plugins, so nothing is fetched or added for them; pods read their secrets from the environment their
templates give, and ``file://`` state lives on the pods' disks, out of the operator's reach.

Only a session job's jar is fetched here: it is uploaded through the session cluster's REST API. S3 state is
listed with the deployment's S3 settings (the operator's own credentials chain, such as IRSA, otherwise).

Called by: the operator's controllers, through the ``Provisioner`` port (built by ``flinkops.wiring``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from flinkops.api.models import FlinkDeployment, FlinkDeploymentSpec, JobSpec
from flinkops.flink.config import RenderInputs, render_inputs
from flinkops.ports import ClusterExtras, Resource
from flinkops.provisioning.local import DataPlane
from flinkops.snapshots.local import PodLocalStorage

__all__ = ["PodProvisioner"]


class PodProvisioner(DataPlane):
    def __init__(self, work_dir: Path) -> None:
        """``work_dir``: where session-job jars are downloaded before their upload."""
        super().__init__(work_dir, None, local_snapshots=PodLocalStorage())

    @property
    def default_state_dirs(self) -> bool:
        return False  # a pod's default directory would die with the pod: the spec must name its state

    def render_inputs(self, deployment: FlinkDeployment) -> RenderInputs:
        return render_inputs(deployment, None)

    def working_dir(self, resource: Resource) -> Path | None:
        return None

    def prepare_cluster(
        self, spec: FlinkDeploymentSpec, config: Mapping[str, str], args: Sequence[str] = ()
    ) -> ClusterExtras:
        return ClusterExtras()

    def job_jars(self, job: JobSpec, base: Path | None, config: Mapping[str, str]) -> tuple[Path, ...]:
        return ()

    def process_environment(self, config: Mapping[str, str], args: Sequence[str] = ()) -> dict[str, str]:
        return {}
