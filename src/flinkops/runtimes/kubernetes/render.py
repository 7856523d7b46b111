"""Render the Kubernetes objects of one Flink cluster from a FlinkDeployment: pure data, no I/O.

:func:`render_cluster` turns (FlinkDeployment, rendered Flink configuration, target generation, application
job or None, mode) into plain manifests for server-side apply, in apply order:

* ConfigMap ``flink-config-<name>``: the Flink configuration file, the log configuration and, in native mode,
  the TaskManager pod template file (``configmap.py``);
* Service ``<name>`` (headless: JobManager RPC and blob ports) and Service ``<name>-rest`` (port 8081)
  (``services.py``);
* Deployment ``<name>``: the JobManager(s), ``spec.jobManager.replicas`` of them;
* Deployment ``<name>-taskmanager``: standalone mode only (in native mode Flink creates TaskManager pods);
  replicas from ``spec.taskManager.replicas`` or enough slots for the job's parallelism;
* Ingress ``<name>`` to the REST Service, when ``spec.ingress`` asks for one (``ingress.py``).

What is decided once per render (mode, replicas, image, HA, the cluster-side Flink configuration) is the
render context (``context.py``); resources map between the spec, Flink settings and container requests in
``resources.py``; pod templates merge as ``podtemplate.py`` describes; the pods themselves (security
defaults, main container, env, volumes, args) are built in ``pods.py``; names, labels and annotations are in
``names.py``. This module assembles the Deployments and the whole cluster, and re-exports the names other
code imports from ``flinkops.runtimes.kubernetes.render``.

Every object carries the labels ``app: <name>``, ``type: flink-native-kubernetes`` or
``flink-standalone-kubernetes`` (the values Flink and the reference operator use, so tooling that selects on
them keeps working), ``app.kubernetes.io/managed-by: flinkops``, ``component: jobmanager|taskmanager`` where
it applies, a controller owner reference to the FlinkDeployment, and the annotation ``flinkops.io/generation``
(:data:`GENERATION_ANNOTATION`; the reference operator's equivalent is
``flinkdeployment.flink.apache.org/generation``, :data:`REFERENCE_GENERATION_ANNOTATION`). The JobManager
and TaskManager pod templates carry it too, so a new generation rolls the pods and a restarted controller can
read from the JobManager Deployment (:func:`generation_of`) whether the target generation was already applied.

Secrets never reach the ConfigMap: the configuration passed in has none, and a deployment's secret
environment is referenced by Secret name (``env_secret``), not copied.

Called by: the Kubernetes runtime (``runtimes/kubernetes/runtime.py``), which applies, watches and deletes
the objects named by :func:`child_names`. Invariants: pure (same inputs, same manifests, no I/O); the
selector labels of both Deployments never change for the life of a FlinkDeployment (they depend on name and
mode only, and switching mode is rejected by validation), so re-applying a new generation is an update, never
a selector conflict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flinkops.api.models import DeploymentMode, FlinkDeployment, FlinkDeploymentSpec
from flinkops.api.plugins import MAIN_CONTAINER
from flinkops.ports import ClusterRequest
from flinkops.runtimes.kubernetes.configmap import config_file_name, config_map
from flinkops.runtimes.kubernetes.context import (
    DEFAULT_SERVICE_ACCOUNT,
    RenderContext,
    build_context,
    kubernetes_flink_config,
    object_metadata,
    owner_reference,
)
from flinkops.runtimes.kubernetes.ingress import ingress
from flinkops.runtimes.kubernetes.names import (
    CLUSTER_LABEL,
    GENERATION_ANNOTATION,
    JOB_ID_ANNOTATION,
    MANAGED_BY_LABEL,
    REFERENCE_GENERATION_ANNOTATION,
    TASKMANAGER_POD_TEMPLATE_FILE,
    ApplicationLaunch,
    ChildNames,
    ChildRef,
    Component,
    Manifest,
    child_names,
    deployment_mode,
    generation_of,
    jobmanager_name,
    rest_service_name,
    selector_labels,
    taskmanager_name,
)
from flinkops.runtimes.kubernetes.pods import (
    CONFIG_VOLUME,
    FLINK_UID,
    POD_IP_ENV,
    flink_pod,
    native_taskmanager_template,
)
from flinkops.runtimes.kubernetes.podtemplate import MERGE_BY_NAME_KEY, merge_pod_templates
from flinkops.runtimes.kubernetes.resources import flink_memory_mib
from flinkops.runtimes.kubernetes.services import services

__all__ = [
    "CLUSTER_LABEL",
    "CONFIG_VOLUME",
    "DEFAULT_SERVICE_ACCOUNT",
    "FLINK_UID",
    "GENERATION_ANNOTATION",
    "JOB_ID_ANNOTATION",
    "MAIN_CONTAINER",
    "MANAGED_BY_LABEL",
    "MERGE_BY_NAME_KEY",
    "POD_IP_ENV",
    "REFERENCE_GENERATION_ANNOTATION",
    "TASKMANAGER_POD_TEMPLATE_FILE",
    "ApplicationLaunch",
    "ChildNames",
    "ChildRef",
    "Manifest",
    "child_names",
    "config_file_name",
    "deployment_mode",
    "flink_memory_mib",
    "generation_of",
    "jobmanager_name",
    "kubernetes_flink_config",
    "merge_pod_templates",
    "render_cluster",
    "render_request",
    "rest_service_name",
    "selector_labels",
    "taskmanager_name",
]


def _deployment(
    ctx: RenderContext,
    component: Component,
    replicas: int,
    template: dict[str, Any],
    owner: Mapping[str, Any],
    generation: int,
) -> Manifest:
    names = child_names(ctx.name, ctx.mode)
    name = names.jobmanager if component == "jobmanager" else names.taskmanager
    assert name is not None
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_metadata(ctx, name, owner, generation, component=component),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector_labels(ctx.name, ctx.mode, component)},
            # Old pods go before new ones start: two JobManagers of different generations must never run the
            # same job side by side, and TaskManagers of the old generation must not register with the new.
            "strategy": {"type": "Recreate"},
            "template": {"metadata": template.get("metadata", {}), "spec": template["spec"]},
        },
    }


def render_cluster(
    deployment: FlinkDeployment,
    flink_config: Mapping[str, str],
    *,
    generation: int,
    application: ApplicationLaunch | None,
    mode: str | DeploymentMode | None = None,
    spec: FlinkDeploymentSpec | None = None,
    jobmanager_replicas: int | None = None,
    taskmanager_replicas: int | None = None,
    env_secret: str | None = None,
) -> list[Manifest]:
    """The manifests of one Flink cluster, in apply order (ConfigMap, Services, JobManager, TaskManager, Ingress).

    ``deployment`` gives identity (name, namespace, uid for the owner reference); ``spec`` is the spec to
    deploy when it is not ``deployment.spec`` (a rollback deploys the last stable spec); ``flink_config`` is
    ``render_flink_config``'s output without secrets; ``generation`` the target generation stamped on every
    object. ``jobmanager_replicas`` / ``taskmanager_replicas`` override the spec's counts (a scale decision);
    ``env_secret`` names a Secret whose keys become environment variables of every Flink container.
    Raises ``ValueError`` for a cluster that cannot be rendered (no uid, several JobManagers without HA,
    Kubernetes HA without any storage directory).
    """
    owner = owner_reference(deployment)
    ctx = build_context(
        deployment, spec or deployment.spec, flink_config, application, mode, jobmanager_replicas, taskmanager_replicas
    )
    tm_file = native_taskmanager_template(ctx, env_secret) if ctx.mode is DeploymentMode.NATIVE else None
    manifests = [config_map(ctx, owner, generation, tm_file), *services(ctx, owner, generation)]
    jm_pod = flink_pod(ctx, "jobmanager", generation, application, env_secret)
    jm = _deployment(ctx, "jobmanager", ctx.jobmanagers, jm_pod, owner, generation)
    if application is not None:
        jm["metadata"]["annotations"][JOB_ID_ANNOTATION] = application.job_id
    manifests.append(jm)
    if ctx.mode is DeploymentMode.STANDALONE:
        tm_pod = flink_pod(ctx, "taskmanager", generation, application, env_secret)
        manifests.append(_deployment(ctx, "taskmanager", ctx.taskmanagers, tm_pod, owner, generation))
    route = ingress(ctx, ctx.spec.ingress, owner, generation)
    if route is not None:
        manifests.append(route)
    return manifests


def render_request(
    request: ClusterRequest,
    deployment: FlinkDeployment | None = None,
    *,
    mode: str | DeploymentMode | None = None,
    env_secret: str | None = None,
) -> list[Manifest]:
    """:func:`render_cluster` for a ``ClusterRequest``, the runtime port's value.

    The FlinkDeployment (identity, and the spec being deployed) is ``deployment`` or ``request.resource``; the
    request supplies configuration, generation, replica counts and the job (entry class, args, job id, jar
    URI; the request's ``jar_paths`` are local files, meaningless in a pod). The snapshot to restore from is
    read from the configuration (``execution.state-recovery.path``, set by the controller).
    ``request.environment`` (secrets) is never rendered: it belongs in the Secret named by ``env_secret``.
    """
    resource = deployment or request.resource
    if resource is None:
        raise ValueError(f"{request.key}: rendering Kubernetes objects needs the FlinkDeployment (request.resource)")
    spec = resource.spec
    launch = None
    if request.application is not None:
        job = request.application
        launch = ApplicationLaunch(
            job_id=job.job_id,
            jar_uri=job.jar_uri or (spec.job.jar_uri if spec.job is not None else None),
            entry_class=job.entry_class or None,
            args=tuple(job.args),
        )
    return render_cluster(
        resource,
        request.flink_config,
        generation=request.generation,
        application=launch,
        mode=mode,
        jobmanager_replicas=request.jobmanager_replicas,
        taskmanager_replicas=request.taskmanager_replicas,
        env_secret=env_secret,
    )
