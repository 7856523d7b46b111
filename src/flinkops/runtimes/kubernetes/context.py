"""The render context: what is decided once per render of a Flink cluster's Kubernetes objects.

:func:`build_context` takes the FlinkDeployment, the spec being deployed, ``render_flink_config``'s output and
the application launch, and decides in one place the mode, the JobManager and TaskManager replica counts, the
image and pull policy, the configuration directory, whether HA is on, how pod templates merge, the snapshot
to restore from, and the cluster-side Flink configuration (what goes into the ConfigMap) with what flinkops owns
set over the user's values: cluster id, namespace, image, service account, replicas, execution target, the
fixed ports the Services expose, bind addresses, and (Kubernetes HA) the HA cluster id and storage directory.
Every object builder then reads the one :class:`RenderContext` instead of deciding again. The metadata that
every object carries (:func:`object_metadata`: labels, generation stamp, owner reference) is made here too.

**High availability.** With any HA service the JobManager advertises its pod IP and more than one JobManager
replica is allowed only then. Kubernetes HA (``high-availability.type: kubernetes``, ``KUBERNETES`` or the
legacy factory class) also gets ``high-availability.cluster-id`` and, when missing, a
``high-availability.storageDir`` next to the checkpoint directory and a leader-election retry period of
:data:`HA_RETRY_PERIOD` (Flink's default is 5 s): a standby tries to take the leader lock at that period (times up
to 2.2), so once the operator releases a dead leader's lock (``haleader``) the standby leads within ~2 s, not
~11 s. The price is the leader's renewal, one ConfigMap write per retry period per cluster.

Called by: the object builders of this package and ``render.render_cluster``; :func:`kubernetes_flink_config`
(re-exported by ``render``) gives the resulting configuration alone. Invariants: pure (same inputs, same
context); the configuration passed in carries no secrets and none are added; ``ValueError`` for a cluster
that cannot be rendered (no JobManager, several JobManagers without HA, Kubernetes HA without any storage
directory, a FlinkDeployment without uid).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flinkops.api.flinkconf import (
    METRICS_FETCH_KEY,
    METRICS_FETCH_MS,
    checkpoint_dir,
    first_set,
    is_true,
    task_slots,
    taskmanager_count,
)
from flinkops.api.models import API_VERSION, DeploymentMode, FlinkDeployment, FlinkDeploymentSpec, FlinkVersion
from flinkops.api.validation import ha_type, is_kubernetes_ha
from flinkops.runtimes.kubernetes.names import (
    CLUSTER_LABEL,
    GENERATION_ANNOTATION,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    TASKMANAGER_POD_TEMPLATE_FILE,
    TYPE_LABEL,
    ApplicationLaunch,
    deployment_mode,
)
from flinkops.runtimes.kubernetes.podtemplate import MERGE_BY_NAME_KEY, find_main_container, merge_pod_templates
from flinkops.runtimes.kubernetes.resources import resource_settings

__all__ = [
    "DEFAULT_SERVICE_ACCOUNT",
    "HA_RETRY_PERIOD",
    "HA_RETRY_PERIOD_KEY",
    "RenderContext",
    "build_context",
    "common_labels",
    "kubernetes_flink_config",
    "object_metadata",
    "owner_reference",
    "parse_map",
]

#: The leader-election retry period rendered under Kubernetes HA unless the user sets one (module docstring).
HA_RETRY_PERIOD_KEY = "high-availability.kubernetes.leader-election.retry-period"
HA_RETRY_PERIOD = "1 s"
#: The service account of Flink pods when ``spec.serviceAccount`` is unset: the reference Helm chart's
#: ``jobServiceAccount.name``.
DEFAULT_SERVICE_ACCOUNT = "flink"

_OWNER_KIND = "FlinkDeployment"
_DEFAULT_CONF_DIR = "/opt/flink/conf"
_REST_PORT, _RPC_PORT, _BLOB_PORT, _TM_RPC_PORT = 8081, 6123, 6124, 6122
# `kubernetes.container.image.ref` exists from Flink 1.17; before that the key was `kubernetes.container.image`.
_OLD_IMAGE_KEY_VERSIONS = frozenset({FlinkVersion.v1_13, FlinkVersion.v1_14, FlinkVersion.v1_15, FlinkVersion.v1_16})
# Flink 2 reads the first spelling; Flink 1 the second (Flink 2 still accepts it as a deprecated alias).
_RESTORE_KEYS = ("execution.state-recovery.path", "execution.savepoint.path")
_IGNORE_UNCLAIMED_KEYS = (
    "execution.state-recovery.ignore-unclaimed-state",
    "execution.savepoint.ignore-unclaimed-state",
)


@dataclass(frozen=True)
class RenderContext:
    name: str
    namespace: str
    mode: DeploymentMode
    spec: FlinkDeploymentSpec
    config: dict[str, str]  # the cluster-side Flink configuration (what goes into the ConfigMap)
    lists: dict[str, list[str]]  # list-valued settings (program args, jars), written as YAML lists
    image: str
    pull_policy: str
    conf_dir: str
    ha: bool
    by_name: bool
    restore: str | None  # the snapshot an application cluster starts from
    allow_non_restored: bool
    jobmanagers: int
    taskmanagers: int  # the standalone TaskManager Deployment's replicas


def _default_image(version: FlinkVersion | None) -> str:
    if version is None:
        return "flink:latest"
    major, minor = version.value[1:].split("_")
    return f"flink:{major}.{minor}"


def _ha_storage_dir(config: Mapping[str, str]) -> str:
    """Kubernetes HA needs a storage directory; without one, keep HA metadata next to the checkpoints."""
    checkpoints = checkpoint_dir(config)
    if checkpoints is None:
        raise ValueError(
            "Kubernetes high availability needs 'high-availability.storageDir' (or a checkpoint directory "
            "to put it next to)"
        )
    scheme, sep, path = checkpoints.rstrip("/").rpartition("://")
    if "/" not in path:  # the checkpoints fill a whole bucket (s3://bucket): HA goes below it, not beside
        return f"{scheme}{sep}{path}/ha"
    return f"{scheme}{sep}{path.rsplit('/', 1)[0]}/ha"


def _standalone_jar(uri: str) -> str:
    """Standalone clusters put the job jar on the classpath, which needs ``file:`` (not ``local:``) URIs."""
    return "file://" + uri[len("local://") :] if uri.startswith("local://") else uri


def build_context(
    deployment: FlinkDeployment,
    spec: FlinkDeploymentSpec,
    flink_config: Mapping[str, str],
    application: ApplicationLaunch | None,
    mode: str | DeploymentMode | None,
    jobmanager_replicas: int | None,
    taskmanager_replicas: int | None,
) -> RenderContext:
    """The context of one render (see the module docstring); ``spec`` is the spec being deployed."""
    name, namespace = deployment.metadata.name, deployment.metadata.namespace
    mode = deployment_mode(spec, mode)
    if jobmanager_replicas is None:
        jobmanager_replicas = spec.job_manager.replicas if spec.job_manager is not None else 1
    if jobmanager_replicas < 1:
        raise ValueError(f"{namespace}/{name}: a cluster needs at least one JobManager")
    user = spec.flink_configuration
    config = dict(flink_config)

    def default(key: str, value: str) -> None:
        if not config.get(key, "").strip():
            config[key] = value

    by_name = user.get(MERGE_BY_NAME_KEY, "").strip().lower() != "false"
    jm_template = merge_pod_templates(
        spec.pod_template, spec.job_manager.pod_template if spec.job_manager else None, by_name=by_name
    )
    template_container = find_main_container(jm_template)
    old_image_key = spec.flink_version in _OLD_IMAGE_KEY_VERSIONS
    image_key = "kubernetes.container.image" if old_image_key else "kubernetes.container.image.ref"
    image = (
        spec.image
        or config.get("kubernetes.container.image.ref")
        or config.get("kubernetes.container.image")
        or template_container.get("image")
        or _default_image(spec.flink_version)
    )
    pull_policy = (
        spec.image_pull_policy
        or config.get("kubernetes.container.image.pull-policy")
        or template_container.get("imagePullPolicy")
        or "IfNotPresent"
    )
    service_account = spec.service_account or config.get("kubernetes.service-account") or DEFAULT_SERVICE_ACCOUNT

    # What flinkops owns (as the reference operator and Flink's native client do): identity, target, image,
    # service account, replicas. A user value of these would point the cluster somewhere flinkops does not look.
    config["kubernetes.cluster-id"] = name
    config["kubernetes.namespace"] = namespace
    config[image_key] = str(image)
    config["kubernetes.container.image.pull-policy"] = str(pull_policy)
    config["kubernetes.service-account"] = service_account
    config["kubernetes.jobmanager.replicas"] = str(jobmanager_replicas)
    if mode is DeploymentMode.NATIVE:
        config["execution.target"] = "kubernetes-application" if application else "kubernetes-session"
    else:
        config["execution.target"] = "remote"
    # TaskManagers reach a non-HA JobManager through the headless service; with HA the JobManager
    # advertises its pod IP instead (set on the command line or by Flink's native entrypoint).
    config["jobmanager.rpc.address"] = f"{name}.{namespace}"

    for key, value in (
        *resource_settings(spec, "jobmanager").items(),
        *resource_settings(spec, "taskmanager").items(),
    ):
        if key not in user:
            config[key] = value
    # Services and containers expose fixed ports: a random port (Flink's blob default "0") cannot be exposed.
    for key, port in (
        ("rest.port", _REST_PORT),
        ("jobmanager.rpc.port", _RPC_PORT),
        ("blob.server.port", _BLOB_PORT),
        ("taskmanager.rpc.port", _TM_RPC_PORT),
    ):
        if config.get(key, "").strip() in ("", "0"):
            config[key] = str(port)
    # Listen on every interface of the pod; the advertised address is jobmanager.rpc.address.
    default("jobmanager.bind-host", "0.0.0.0")
    default("taskmanager.bind-host", "0.0.0.0")
    default("rest.bind-address", "0.0.0.0")
    default(METRICS_FETCH_KEY, METRICS_FETCH_MS)
    conf_dir = config.get("kubernetes.flink.conf.dir", "").strip() or _DEFAULT_CONF_DIR
    if mode is DeploymentMode.NATIVE:
        # Flink's resource manager reads the TaskManager pod template and the log configuration (which it
        # mounts into TaskManager pods from this ConfigMap) from the JobManager's configuration directory.
        config["$internal.deployment.config-dir"] = conf_dir
        config["kubernetes.pod-template-file.taskmanager"] = f"{conf_dir}/{TASKMANAGER_POD_TEMPLATE_FILE}"

    ha = ha_type(config) is not None
    if jobmanager_replicas > 1 and not ha:
        raise ValueError(
            f"{namespace}/{name}: {jobmanager_replicas} JobManager replicas need high availability "
            "(set high-availability.type: kubernetes)"
        )
    if is_kubernetes_ha(config):
        default("high-availability.cluster-id", name)
        default("high-availability.storageDir", _ha_storage_dir(config))
        default(HA_RETRY_PERIOD_KEY, HA_RETRY_PERIOD)

    lists: dict[str, list[str]] = {}
    restore: str | None = None
    allow_non_restored = False
    if application is not None:
        config["$internal.pipeline.job-id"] = application.job_id
        if application.entry_class:
            config["$internal.application.main"] = application.entry_class
        config.pop("$internal.application.program-args", None)
        if application.args:
            lists["$internal.application.program-args"] = list(application.args)
        if application.jar_uri:
            if mode is DeploymentMode.NATIVE:
                lists["pipeline.jars"] = [application.jar_uri]
            else:
                lists["pipeline.classpaths"] = [_standalone_jar(application.jar_uri)]
        # The snapshot to start from: the launch's, or one the caller already put into the configuration
        # (never dropped: starting a stateful job empty is the one mistake a deploy must not make).
        restore = application.restore_path or first_set(config, _RESTORE_KEYS)
        if restore:
            for key in _RESTORE_KEYS:
                config[key] = restore
        allow_non_restored = application.allow_non_restored_state or any(
            is_true(config.get(k)) for k in _IGNORE_UNCLAIMED_KEYS
        )
        if allow_non_restored:
            for key in _IGNORE_UNCLAIMED_KEYS:
                config[key] = "true"
    taskmanagers = taskmanager_replicas if taskmanager_replicas is not None else taskmanager_count(spec, config)
    if application is not None and spec.task_manager is not None and spec.task_manager.replicas is not None:
        # As in the reference: fixed TaskManager replicas decide the parallelism (replicas x slots).
        config["parallelism.default"] = str(max(1, taskmanagers * task_slots(config)))

    return RenderContext(
        name=name,
        namespace=namespace,
        mode=mode,
        spec=spec,
        config=config,
        lists=lists,
        image=str(image),
        pull_policy=str(pull_policy),
        conf_dir=conf_dir,
        ha=ha,
        by_name=by_name,
        restore=restore,
        allow_non_restored=allow_non_restored,
        jobmanagers=jobmanager_replicas,
        taskmanagers=taskmanagers,
    )


def kubernetes_flink_config(
    deployment: FlinkDeployment,
    flink_config: Mapping[str, str],
    *,
    application: ApplicationLaunch | None = None,
    mode: str | DeploymentMode | None = None,
    spec: FlinkDeploymentSpec | None = None,
    jobmanager_replicas: int | None = None,
    taskmanager_replicas: int | None = None,
) -> dict[str, str]:
    """The cluster-side Flink configuration ``render_cluster`` puts into the ConfigMap (list-valued settings
    such as program args are ``;``-joined here; the file holds them as YAML lists)."""
    ctx = build_context(
        deployment, spec or deployment.spec, flink_config, application, mode, jobmanager_replicas, taskmanager_replicas
    )
    return {**ctx.config, **{k: ";".join(v) for k, v in ctx.lists.items()}}


def parse_map(value: str | None) -> dict[str, str]:
    """Flink's map syntax ``k1:v1,k2:v2`` (labels, annotations, node selectors)."""
    result: dict[str, str] = {}
    for item in (value or "").split(","):
        key, sep, val = item.partition(":")
        if sep and key.strip():
            result[key.strip()] = val.strip()
    return result


def common_labels(ctx: RenderContext) -> dict[str, str]:
    """The labels of every object and pod of the cluster: its name, the mode's type, managed by flinkops."""
    return {CLUSTER_LABEL: ctx.name, "type": TYPE_LABEL[ctx.mode], MANAGED_BY_LABEL: MANAGED_BY}


def object_metadata(
    ctx: RenderContext, name: str, owner: Mapping[str, Any], generation: int, **labels: str
) -> dict[str, Any]:
    """``metadata`` of one child object: name, namespace, common labels plus ``labels``, the generation
    stamp and the owner reference (``owner``, from :func:`owner_reference`)."""
    return {
        "name": name,
        "namespace": ctx.namespace,
        "labels": {**common_labels(ctx), **labels},
        "annotations": {GENERATION_ANNOTATION: str(generation)},
        "ownerReferences": [dict(owner)],
    }


def owner_reference(deployment: FlinkDeployment) -> dict[str, Any]:
    """A controller owner reference to ``deployment``; ``ValueError`` when it has no uid to reference."""
    uid = deployment.metadata.uid
    if not uid:
        raise ValueError(
            f"{deployment.metadata.namespace}/{deployment.metadata.name}: the FlinkDeployment has no "
            "metadata.uid, so its children cannot reference it as their owner"
        )
    return {
        "apiVersion": API_VERSION,
        "kind": _OWNER_KIND,
        "name": deployment.metadata.name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
