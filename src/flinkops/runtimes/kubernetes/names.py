"""What the Kubernetes objects of one Flink cluster are called, labelled and stamped with.

The names (``flink-config-<name>``, ``<name>``, ``<name>-rest``, ``<name>-taskmanager``), the selector labels,
the generation and job-id annotations, and the inputs of a render that are not the FlinkDeployment itself
(:class:`ApplicationLaunch`, the rendering mode). Also the value types every render module shares
(:data:`Manifest`, :data:`Component`).

Called by: the render modules of this package, and through ``render`` (which re-exports everything here) the
Kubernetes runtime, which finds, watches and deletes a cluster's objects by these names and labels.
Invariants: pure; a name or selector label depends only on the FlinkDeployment's name and the mode, never on
the spec, so a new generation re-applies the same objects (selectors never change under a Deployment).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from flinkops.api.models import DeploymentMode, FlinkDeploymentSpec, JobSpec

__all__ = [
    "CLUSTER_LABEL",
    "GENERATION_ANNOTATION",
    "JOB_ID_ANNOTATION",
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "REFERENCE_GENERATION_ANNOTATION",
    "TASKMANAGER_POD_TEMPLATE_FILE",
    "TYPE_LABEL",
    "ApplicationLaunch",
    "ChildNames",
    "ChildRef",
    "Component",
    "Manifest",
    "child_names",
    "deployment_mode",
    "generation_of",
    "jobmanager_name",
    "rest_service_name",
    "selector_labels",
    "taskmanager_name",
]

Manifest = dict[str, Any]
Component = Literal["jobmanager", "taskmanager"]

#: flinkops' generation stamp on the children of a FlinkDeployment (JobManager Deployment and pod template
#: above all): the ``metadata.generation`` of the FlinkDeployment spec the objects were rendered from.
GENERATION_ANNOTATION = "flinkops.io/generation"
#: The reference operator's name for the same stamp (set on the JobManager Deployment and its pods).
REFERENCE_GENERATION_ANNOTATION = "flinkdeployment.flink.apache.org/generation"
#: The job id an application cluster was started with, on the JobManager Deployment (what ``observe`` reports).
JOB_ID_ANNOTATION = "flinkops.io/job-id"
#: The label holding the cluster (FlinkDeployment) name on every object and pod, Flink's own TaskManager pods
#: and HA ConfigMaps included.
CLUSTER_LABEL = "app"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "flinkops"
#: The ConfigMap entry (and file in the configuration directory) of the native TaskManager pod template.
TASKMANAGER_POD_TEMPLATE_FILE = "taskmanager-pod-template.yaml"
#: The ``type`` label: the values Flink and the reference operator use, so tooling that selects on them works.
TYPE_LABEL: Mapping[DeploymentMode, str] = {
    DeploymentMode.NATIVE: "flink-native-kubernetes",
    DeploymentMode.STANDALONE: "flink-standalone-kubernetes",
}


@dataclass(frozen=True)
class ApplicationLaunch:
    """The job an application cluster starts with: what ``spec.job`` says plus what the controller decided
    (the job id, and the snapshot to restore from)."""

    job_id: str
    jar_uri: str | None = None
    entry_class: str | None = None
    args: tuple[str, ...] = ()
    restore_path: str | None = None
    allow_non_restored_state: bool = False

    @classmethod
    def of(cls, job: JobSpec, job_id: str, restore_path: str | None = None) -> ApplicationLaunch:
        return cls(
            job_id=job_id,
            jar_uri=job.jar_uri,
            entry_class=job.entry_class,
            args=tuple(job.args),
            restore_path=restore_path,
            allow_non_restored_state=bool(job.allow_non_restored_state),
        )


@dataclass(frozen=True)
class ChildRef:
    """One object of a cluster: enough to build its REST path (``kube.client.object_path``)."""

    api_version: str
    kind: str
    plural: str
    name: str


@dataclass(frozen=True)
class ChildNames:
    """The names of the objects ``render_cluster`` makes for one FlinkDeployment."""

    config_map: str
    jobmanager: str
    taskmanager: str | None  # None in native mode: Flink creates TaskManager pods, no Deployment
    service: str
    rest_service: str

    def refs(self) -> tuple[ChildRef, ...]:
        """Every child, in apply order (delete in reverse)."""
        refs = [
            ChildRef("v1", "ConfigMap", "configmaps", self.config_map),
            ChildRef("v1", "Service", "services", self.service),
            ChildRef("v1", "Service", "services", self.rest_service),
            ChildRef("apps/v1", "Deployment", "deployments", self.jobmanager),
        ]
        if self.taskmanager is not None:
            refs.append(ChildRef("apps/v1", "Deployment", "deployments", self.taskmanager))
        return tuple(refs)


def deployment_mode(spec: FlinkDeploymentSpec, mode: str | DeploymentMode | None = None) -> DeploymentMode:
    """The mode to render: ``mode`` when given, else ``spec.mode``, else native (the reference default)."""
    if mode is not None:
        return DeploymentMode(mode)
    return spec.mode or DeploymentMode.NATIVE


def child_names(name: str, mode: str | DeploymentMode = DeploymentMode.NATIVE) -> ChildNames:
    """The names Flink's native integration and the reference operator use, so either can find them."""
    standalone = DeploymentMode(mode) is DeploymentMode.STANDALONE
    return ChildNames(
        config_map=f"flink-config-{name}",
        jobmanager=jobmanager_name(name),
        taskmanager=taskmanager_name(name) if standalone else None,
        service=name,
        rest_service=rest_service_name(name),
    )


def jobmanager_name(name: str) -> str:
    """The JobManager Deployment (Flink's native TaskManager pods look their owner up by this name)."""
    return name


def taskmanager_name(name: str) -> str:
    """The TaskManager Deployment of a standalone cluster (a native cluster has none)."""
    return f"{name}-taskmanager"


def rest_service_name(name: str) -> str:
    return f"{name}-rest"


def selector_labels(name: str, mode: str | DeploymentMode, component: Component) -> dict[str, str]:
    """The labels that select one component's pods (in native mode also the TaskManager pods Flink makes)."""
    return {CLUSTER_LABEL: name, "component": component, "type": TYPE_LABEL[DeploymentMode(mode)]}


def generation_of(obj: Mapping[str, Any] | None) -> int | None:
    """The FlinkDeployment generation an existing child (the JobManager Deployment) was rendered from, or
    None when the object is missing or carries no readable stamp (then it was never applied by flinkops)."""
    if not obj:
        return None
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    raw = annotations.get(GENERATION_ANNOTATION) if isinstance(annotations, Mapping) else None
    try:
        return int(str(raw)) if raw is not None else None
    except ValueError:
        return None
