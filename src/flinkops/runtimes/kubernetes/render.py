"""Render the Kubernetes objects of one Flink cluster from a FlinkDeployment: pure data, no I/O.

:func:`render_cluster` turns (FlinkDeployment, rendered Flink configuration, target generation, application
job or None, mode) into plain manifests for server-side apply, in apply order:

* ConfigMap ``flink-config-<name>``: the Flink configuration file (``config.yaml``; ``flink-conf.yaml`` for
  Flink <= 1.18, which does not read the new file), ``log4j-console.properties`` (``spec.logConfiguration``
  or a console-plus-file default), ``logback-console.xml`` when given, and in native mode the TaskManager
  pod template file that Flink's resource manager reads (``kubernetes.pod-template-file.taskmanager``);
* Service ``<name>``: headless, the JobManager's RPC (6123) and blob (6124) ports, named as Flink's native
  integration names them (``jobmanager-rpc``, ``blobserver``);
* Service ``<name>-rest``: port 8081, type from ``kubernetes.rest-service.exposed.type`` (default ClusterIP,
  as the reference operator defaults it);
* Deployment ``<name>``: the JobManager(s), ``spec.jobManager.replicas`` of them;
* Deployment ``<name>-taskmanager``: standalone mode only (in native mode Flink creates TaskManager pods);
  replicas from ``spec.taskManager.replicas`` or enough slots for the job's parallelism.

Every object carries the labels ``app: <name>``, ``type: flink-native-kubernetes`` or
``flink-standalone-kubernetes`` (the values Flink and the reference operator use, so tooling that selects on
them keeps working), ``app.kubernetes.io/managed-by: flinkops``, ``component: jobmanager|taskmanager`` where
it applies, a controller owner reference to the FlinkDeployment, and the annotation ``flinkops.io/generation``
(:data:`GENERATION_ANNOTATION`; the reference operator's equivalent is
``flinkdeployment.flink.apache.org/generation``, :data:`REFERENCE_GENERATION_ANNOTATION`). The JobManager
and TaskManager pod templates carry it too, so a new generation rolls the pods and a restarted controller can
read from the JobManager Deployment (:func:`generation_of`) whether the target generation was already applied.

**Pod templates.** ``spec.podTemplate`` is the base of both components; ``spec.jobManager.podTemplate`` /
``spec.taskManager.podTemplate`` are merged over it (:func:`merge_pod_templates`): mappings merge key by key
(override wins, ``null`` in the override means "no opinion"); a list whose items all carry a ``name``
(containers, initContainers, volumes, env, ports, volumeMounts, imagePullSecrets) merges item by item by that
name, new names appended; any other list is replaced by the override. The reference operator merges lists by
*position* unless ``kubernetes.operator.pod-template.merge-arrays-by-name: true``; merging by position renames
containers and drops env variables as soon as the two lists differ in order, so flinkops merges by name by
default and keeps the positional merge for YAML that sets the option to ``false`` explicitly. Then, where
the user's template says nothing, Pod Security "restricted" defaults apply (non-root uid 9999, the ``flink``
user of the official image; no privilege escalation; all capabilities dropped; RuntimeDefault seccomp), and
last flinkops sets what it owns on the main container ``flink-main-container`` (image, command and args,
resources, the configuration volume, ports and Flink's environment) the way Flink's own decorators do.

**Resources.** ``resource`` (``cpu``, ``memory`` such as ``2048m``/``2g``/``2Gi``, ``ephemeralStorage``) or
``resources`` (Kubernetes requests/limits) become Flink settings, as the reference maps them, unless the user
set the Flink key in ``flinkConfiguration``: memory → ``*.memory.process.size`` (done by
``render_flink_config``), cpu → ``kubernetes.{jobmanager,taskmanager}.cpu``, limit/request ratios →
``kubernetes.*.{cpu,memory}.limit-factor``. The container requests and limits are then computed from the
Flink settings exactly as Flink computes them for its native pods (process size in Mi, cpu, times the limit
factors), so the container and the JVM inside never disagree. Other resource names (``ephemeral-storage``,
GPUs) pass through to the main container.

**High availability.** With any HA service the JobManager advertises its pod IP (downward API env
``_POD_IP_ADDRESS``, the name Flink's native entrypoint reads, plus ``POD_IP``; standalone JobManagers get
``jobmanager.rpc.address=$(_POD_IP_ADDRESS)`` as a dynamic property on their command line), and more than one
JobManager replica is allowed only then.
Kubernetes HA (``high-availability.type: kubernetes``, ``KUBERNETES`` or the legacy factory class) also gets
``high-availability.cluster-id`` and, when missing, a ``high-availability.storageDir`` next to the checkpoint
directory.

Secrets never reach the ConfigMap: the configuration passed in has none, and a deployment's secret
environment is referenced by Secret name (``env_secret``), not copied.

Called by: the Kubernetes runtime (``runtimes/kubernetes/runtime.py``), which applies, watches and deletes
the objects named by :func:`child_names`. Invariants: pure (same inputs, same manifests, no I/O); the
selector labels of both Deployments never change for the life of a FlinkDeployment (they depend on name and
mode only, and switching mode is rejected by validation), so re-applying a new generation is an update, never
a selector conflict.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from flinkops.api.flinkconf import checkpoint_dir, first_set, is_true
from flinkops.api.models import API_VERSION, DeploymentMode, FlinkDeployment, FlinkDeploymentSpec, FlinkVersion, JobSpec
from flinkops.api.plugins import MAIN_CONTAINER
from flinkops.api.validation import ha_type
from flinkops.flink.config import DEFAULT_JM_MEMORY, DEFAULT_TM_MEMORY, taskmanager_count, to_flink_memory
from flinkops.ports import ClusterRequest

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
#: The reference's option that switches its pod-template list merge from by-position to by-name.
MERGE_BY_NAME_KEY = "kubernetes.operator.pod-template.merge-arrays-by-name"
STARTUP_PROBE_KEY = "kubernetes.operator.jm-deployment.startup.probe.enabled"
#: The service account of Flink pods when ``spec.serviceAccount`` is unset: the reference Helm chart's
#: ``jobServiceAccount.name``.
DEFAULT_SERVICE_ACCOUNT = "flink"
#: The ``flink`` user (and group) of the official Flink images.
FLINK_UID = 9999
CONFIG_VOLUME = "flink-config-volume"
#: The downward-API variable holding the pod IP; Flink's native entrypoint reads exactly this name.
POD_IP_ENV = "_POD_IP_ADDRESS"
TASKMANAGER_POD_TEMPLATE_FILE = "taskmanager-pod-template.yaml"
LOG4J_FILE = "log4j-console.properties"
LOGBACK_FILE = "logback-console.xml"

_OWNER_KIND = "FlinkDeployment"
_TYPE_LABEL = {
    DeploymentMode.NATIVE: "flink-native-kubernetes",
    DeploymentMode.STANDALONE: "flink-standalone-kubernetes",
}
_DEFAULT_CONF_DIR = "/opt/flink/conf"
_DEFAULT_ENTRYPOINT = "/docker-entrypoint.sh"
_REST_PORT, _RPC_PORT, _BLOB_PORT, _TM_RPC_PORT = 8081, 6123, 6124, 6122
# flinkops' default process sizes, for a configuration that did not come through render_flink_config.
_DEFAULT_MEMORY: Mapping[Component, str] = {"jobmanager": DEFAULT_JM_MEMORY, "taskmanager": DEFAULT_TM_MEMORY}
# Flink 1.19 started reading config.yaml; older versions read only flink-conf.yaml (flat "key: value" lines).
_LEGACY_CONF_VERSIONS = frozenset(
    {
        FlinkVersion.v1_13,
        FlinkVersion.v1_14,
        FlinkVersion.v1_15,
        FlinkVersion.v1_16,
        FlinkVersion.v1_17,
        FlinkVersion.v1_18,
    }
)
# `kubernetes.container.image.ref` exists from Flink 1.17; before that the key was `kubernetes.container.image`.
_OLD_IMAGE_KEY_VERSIONS = frozenset({FlinkVersion.v1_13, FlinkVersion.v1_14, FlinkVersion.v1_15, FlinkVersion.v1_16})
# Flink 2 reads the first spelling; Flink 1 the second (Flink 2 still accepts it as a deprecated alias).
_RESTORE_KEYS = ("execution.state-recovery.path", "execution.savepoint.path")
_IGNORE_UNCLAIMED_KEYS = (
    "execution.state-recovery.ignore-unclaimed-state",
    "execution.savepoint.ignore-unclaimed-state",
)
_K8S_HA_FACTORY = "org.apache.flink.kubernetes.highavailability.KubernetesHaServicesFactory"

# A console appender for `kubectl logs` plus the rolling file Flink's web UI shows (flink-console.sh sets
# log.file); levels quiet the chattiest libraries the way Flink's own default does.
DEFAULT_LOG4J_CONSOLE = """\
monitorInterval = 30
rootLogger.level = INFO
rootLogger.appenderRef.console.ref = ConsoleAppender
rootLogger.appenderRef.rolling.ref = RollingFileAppender
logger.pekko.name = org.apache.pekko
logger.pekko.level = INFO
logger.kafka.name = org.apache.kafka
logger.kafka.level = INFO
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = WARN
logger.zookeeper.name = org.apache.zookeeper
logger.zookeeper.level = INFO
logger.shaded_zookeeper.name = org.apache.flink.shaded.zookeeper3
logger.shaded_zookeeper.level = INFO
appender.console.name = ConsoleAppender
appender.console.type = CONSOLE
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yyyy-MM-dd HH:mm:ss,SSS} %-5p %-60c %x - %m%n
appender.rolling.name = RollingFileAppender
appender.rolling.type = RollingFile
appender.rolling.append = true
appender.rolling.fileName = ${sys:log.file}
appender.rolling.filePattern = ${sys:log.file}.%i
appender.rolling.layout.type = PatternLayout
appender.rolling.layout.pattern = %d{yyyy-MM-dd HH:mm:ss,SSS} %-5p %-60c %x - %m%n
appender.rolling.policies.type = Policies
appender.rolling.policies.size.type = SizeBasedTriggeringPolicy
appender.rolling.policies.size.size = 100MB
appender.rolling.strategy.type = DefaultRolloverStrategy
appender.rolling.strategy.max = ${env:MAX_LOG_FILE_NUMBER:-10}
logger.netty.name = org.jboss.netty.channel.DefaultChannelPipeline
logger.netty.level = OFF
"""


# ------------------------------------------------------------------------------------------ inputs and names


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
    """The names of the objects :func:`render_cluster` makes for one FlinkDeployment."""

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
    return {CLUSTER_LABEL: name, "component": component, "type": _TYPE_LABEL[DeploymentMode(mode)]}


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


def config_file_name(flink_version: FlinkVersion | None) -> str:
    """The configuration file the Flink version reads: ``config.yaml`` from 1.19, ``flink-conf.yaml`` before."""
    return "flink-conf.yaml" if flink_version in _LEGACY_CONF_VERSIONS else "config.yaml"


# ------------------------------------------------------------------------------------------ pod template merge


def merge_pod_templates(
    base: Mapping[str, Any] | None, override: Mapping[str, Any] | None, *, by_name: bool = True
) -> dict[str, Any]:
    """``override`` merged over ``base`` (neither is modified; see the module docstring for the rules).

    ``by_name=False`` is the reference operator's default: lists merge by position (item ``i`` of the override
    merged into item ``i`` of the base, extra items appended).
    """
    merged: dict[str, Any] = copy.deepcopy(dict(base)) if base else {}
    if override:
        _merge_into(merged, override, by_name)
    return merged


def _merge_into(target: dict[str, Any], source: Mapping[str, Any], by_name: bool) -> None:
    for key, value in source.items():
        if value is None:
            continue  # YAML `key:` with nothing after it says nothing; it must not erase the base
        current = target.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            _merge_into(current, value, by_name)
        elif isinstance(current, list) and isinstance(value, list):
            target[key] = _merge_lists(current, value, by_name)
        else:
            target[key] = copy.deepcopy(value)


def _named(items: Sequence[Any]) -> bool:
    return all(isinstance(item, Mapping) and isinstance(item.get("name"), str) for item in items)


def _merge_lists(base: list[Any], override: list[Any], by_name: bool) -> list[Any]:
    if by_name:
        if not (_named(base) and _named(override)):
            return copy.deepcopy(override)
        merged: dict[str, Any] = {item["name"]: copy.deepcopy(item) for item in base}
        for item in override:
            existing = merged.get(item["name"])
            if isinstance(existing, dict):
                _merge_into(existing, item, by_name)
            else:
                merged[item["name"]] = copy.deepcopy(item)
        return list(merged.values())
    result = copy.deepcopy(base)
    for index, item in enumerate(override):
        if index < len(result) and isinstance(result[index], dict) and isinstance(item, Mapping):
            _merge_into(result[index], item, by_name)
        elif index < len(result):
            result[index] = copy.deepcopy(item)
        else:
            result.append(copy.deepcopy(item))
    return result


def _upsert_named(items: list[Any] | None, entries: Sequence[Mapping[str, Any]]) -> list[Any]:
    """``items`` with each of ``entries`` replacing the item of the same name (or appended): flinkops' own
    env variables, ports, volumes and mounts win over a template's item of the same name."""
    result = [copy.deepcopy(i) for i in (items or [])]
    for entry in entries:
        for index, item in enumerate(result):
            if isinstance(item, Mapping) and item.get("name") == entry["name"]:
                result[index] = copy.deepcopy(dict(entry))
                break
        else:
            result.append(copy.deepcopy(dict(entry)))
    return result


# ------------------------------------------------------------------------------------------ quantities


_FLINK_UNITS = {
    "": 1,
    "b": 1,
    "bytes": 1,
    "k": 1 << 10,
    "kb": 1 << 10,
    "kibibytes": 1 << 10,
    "m": 1 << 20,
    "mb": 1 << 20,
    "mebibytes": 1 << 20,
    "g": 1 << 30,
    "gb": 1 << 30,
    "gibibytes": 1 << 30,
    "t": 1 << 40,
    "tb": 1 << 40,
    "tebibytes": 1 << 40,
}


def flink_memory_mib(value: str) -> int:
    """A memory size in Flink's syntax (``2048m``, ``2 g``, ``1gb``; case-insensitive, bytes without a unit) or
    a Kubernetes quantity (``2Gi``) in whole MiB, rounded down as Flink does for the container request."""
    text = to_flink_memory(value).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)", text)
    if not match or match.group(2).lower() not in _FLINK_UNITS:
        raise ValueError(f"not a memory size: {value!r}")
    return int(float(match.group(1)) * _FLINK_UNITS[match.group(2).lower()]) >> 20


def _cpu_cores(value: Any) -> float:
    """A Kubernetes cpu quantity (``2``, ``1.5``, ``500m``) in cores."""
    text = str(value).strip()
    if text.endswith("m"):
        return float(text[:-1]) / 1000
    return float(text)


def _cpu_quantity(cores: float) -> str:
    millis = max(1, round(cores * 1000))
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def _factor(limit: float, request: float) -> str | None:
    return f"{limit / request:g}" if request > 0 and limit > 0 else None


# ------------------------------------------------------------------------------------------ Flink configuration


@dataclass(frozen=True)
class _Context:
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


def _is_kubernetes_ha(config: Mapping[str, str]) -> bool:
    kind = ha_type(config)
    return kind is not None and (kind == "kubernetes" or kind.lower() == _K8S_HA_FACTORY.lower())


def _default_image(version: FlinkVersion | None) -> str:
    if version is None:
        return "flink:latest"
    major, minor = version.value[1:].split("_")
    return f"flink:{major}.{minor}"


def _template_main_container(template: Mapping[str, Any] | None) -> Mapping[str, Any]:
    spec = template.get("spec") if template else None
    containers = spec.get("containers") if isinstance(spec, Mapping) else None
    for container in containers if isinstance(containers, list) else []:
        if isinstance(container, Mapping) and container.get("name") == MAIN_CONTAINER:
            return container
    return {}


def _resource_settings(spec: FlinkDeploymentSpec, component: Component) -> dict[str, str]:
    """Flink settings from ``spec.<component>.resource`` / ``.resources`` (cpu and limit factors; memory is
    rendered by ``render_flink_config``)."""
    part = spec.job_manager if component == "jobmanager" else spec.task_manager
    if part is None:
        return {}
    settings: dict[str, str] = {}
    prefix = f"kubernetes.{component}"
    if part.resources:
        requests, limits = (part.resources.get(section) for section in ("requests", "limits"))
        requests = requests if isinstance(requests, Mapping) else {}
        limits = limits if isinstance(limits, Mapping) else {}
        cpu_request, cpu_limit = requests.get("cpu"), limits.get("cpu")
        if cpu_request is not None or cpu_limit is not None:
            settings[f"{prefix}.cpu"] = str(_cpu_cores(cpu_request if cpu_request is not None else cpu_limit))
        if cpu_request is not None and cpu_limit is not None:
            factor = _factor(_cpu_cores(cpu_limit), _cpu_cores(cpu_request))
            if factor:
                settings[f"{prefix}.cpu.limit-factor"] = factor
        mem_request, mem_limit = requests.get("memory"), limits.get("memory")
        if mem_request is not None and mem_limit is not None:
            factor = _factor(flink_memory_mib(str(mem_limit)), flink_memory_mib(str(mem_request)))
            if factor:
                settings[f"{prefix}.memory.limit-factor"] = factor
    elif part.resource is not None and part.resource.cpu is not None:
        settings[f"{prefix}.cpu"] = str(float(part.resource.cpu))
    return settings


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


def _context(
    deployment: FlinkDeployment,
    spec: FlinkDeploymentSpec,
    flink_config: Mapping[str, str],
    application: ApplicationLaunch | None,
    mode: str | DeploymentMode | None,
    jobmanager_replicas: int | None,
    taskmanager_replicas: int | None,
) -> _Context:
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
    template_container = _template_main_container(jm_template)
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
        *_resource_settings(spec, "jobmanager").items(),
        *_resource_settings(spec, "taskmanager").items(),
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
    if _is_kubernetes_ha(config):
        default("high-availability.cluster-id", name)
        default("high-availability.storageDir", _ha_storage_dir(config))

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
        slots = int(config.get("taskmanager.numberOfTaskSlots", "1") or "1")
        config["parallelism.default"] = str(max(1, taskmanagers * slots))

    return _Context(
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
    """The cluster-side Flink configuration :func:`render_cluster` puts into the ConfigMap (list-valued
    settings such as program args are ``;``-joined here; the file holds them as YAML lists)."""
    ctx = _context(
        deployment, spec or deployment.spec, flink_config, application, mode, jobmanager_replicas, taskmanager_replicas
    )
    return {**ctx.config, **{k: ";".join(v) for k, v in ctx.lists.items()}}


def _config_file(ctx: _Context) -> str:
    if config_file_name(ctx.spec.flink_version) == "flink-conf.yaml":
        # Flink <= 1.18 reads "key: value" lines literally (no YAML quoting; lists are ';'-separated, items
        # quoted when they contain the separator).
        lines = [f"{k}: {v}" for k, v in sorted(ctx.config.items())]
        lines += [f"{k}: {';'.join(_legacy_item(i) for i in v)}" for k, v in sorted(ctx.lists.items())]
        return "\n".join(lines) + "\n"
    document: dict[str, Any] = dict(ctx.config)
    document.update(ctx.lists)
    return yaml.safe_dump(document, sort_keys=True, default_flow_style=False, allow_unicode=True)


def _legacy_item(item: str) -> str:
    return '"' + item.replace('"', '""') + '"' if any(c in item for c in ";'\"") else item


def _parse_map(value: str | None) -> dict[str, str]:
    """Flink's map syntax ``k1:v1,k2:v2`` (labels, annotations, node selectors)."""
    result: dict[str, str] = {}
    for item in (value or "").split(","):
        key, sep, val = item.partition(":")
        if sep and key.strip():
            result[key.strip()] = val.strip()
    return result


# ------------------------------------------------------------------------------------------ objects


def _metadata(ctx: _Context, name: str, owner: Mapping[str, Any], generation: int, **labels: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": ctx.namespace,
        "labels": {**_common_labels(ctx), **labels},
        "annotations": {GENERATION_ANNOTATION: str(generation)},
        "ownerReferences": [dict(owner)],
    }


def _common_labels(ctx: _Context) -> dict[str, str]:
    return {CLUSTER_LABEL: ctx.name, "type": _TYPE_LABEL[ctx.mode], MANAGED_BY_LABEL: MANAGED_BY}


def _owner_reference(deployment: FlinkDeployment) -> dict[str, Any]:
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


def _config_map(
    ctx: _Context, owner: Mapping[str, Any], generation: int, tm_template: Mapping[str, Any] | None
) -> Manifest:
    logs = dict(ctx.spec.log_configuration or {})
    data = {
        config_file_name(ctx.spec.flink_version): _config_file(ctx),
        LOG4J_FILE: logs.get(LOG4J_FILE) or DEFAULT_LOG4J_CONSOLE,
    }
    if logs.get(LOGBACK_FILE):
        data[LOGBACK_FILE] = logs[LOGBACK_FILE]
    if tm_template is not None:
        data[TASKMANAGER_POD_TEMPLATE_FILE] = yaml.safe_dump(dict(tm_template), sort_keys=False)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(ctx, child_names(ctx.name, ctx.mode).config_map, owner, generation),
        "data": data,
    }


def _services(ctx: _Context, owner: Mapping[str, Any], generation: int) -> list[Manifest]:
    names = child_names(ctx.name, ctx.mode)
    selector = selector_labels(ctx.name, ctx.mode, "jobmanager")
    rpc, blob, rest = (int(ctx.config[k]) for k in ("jobmanager.rpc.port", "blob.server.port", "rest.port"))
    internal = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(ctx, names.service, owner, generation, component="jobmanager"),
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "None",
            "selector": selector,
            # Only Flink's own RPC and blob traffic uses this name; resolving it before the JobManager is
            # ready lets TaskManagers connect the moment it listens instead of after the next DNS refresh.
            "publishNotReadyAddresses": True,
            "ports": [
                {"name": "jobmanager-rpc", "port": rpc, "targetPort": rpc, "protocol": "TCP"},
                {"name": "blobserver", "port": blob, "targetPort": blob, "protocol": "TCP"},
            ],
        },
    }
    exposed = ctx.config.get("kubernetes.rest-service.exposed.type", "").strip() or "ClusterIP"
    rest_spec: dict[str, Any] = {
        "type": "ClusterIP" if exposed == "Headless_ClusterIP" else exposed,
        "selector": selector,
        "ports": [{"name": "rest", "port": rest, "targetPort": rest, "protocol": "TCP"}],
    }
    if exposed == "Headless_ClusterIP":
        rest_spec["clusterIP"] = "None"
    rest_meta = _metadata(ctx, names.rest_service, owner, generation, component="jobmanager")
    rest_meta["annotations"].update(_parse_map(ctx.config.get("kubernetes.rest-service.annotations")))
    return [internal, {"apiVersion": "v1", "kind": "Service", "metadata": rest_meta, "spec": rest_spec}]


def _user_template(ctx: _Context, component: Component) -> dict[str, Any]:
    """The merged user template of one component, with ``resource.ephemeralStorage`` and the non-cpu/memory
    ``resources`` entries put on its main container (as the reference does before Flink decorates it)."""
    spec = ctx.spec
    part = spec.job_manager if component == "jobmanager" else spec.task_manager
    template = merge_pod_templates(spec.pod_template, part.pod_template if part else None, by_name=ctx.by_name)
    extra: dict[str, dict[str, Any]] = {}
    if part is not None and part.resources:
        for section in ("requests", "limits"):
            block = part.resources.get(section)
            if isinstance(block, Mapping):
                extra[section] = {k: v for k, v in block.items() if k not in ("cpu", "memory")}
    elif part is not None and part.resource is not None and part.resource.ephemeral_storage:
        storage = part.resource.ephemeral_storage
        extra = {"requests": {"ephemeral-storage": storage}, "limits": {"ephemeral-storage": storage}}
    if any(extra.values()):
        container = _main_container(template)
        resources = container.setdefault("resources", {})
        for section, values in extra.items():
            if values:
                resources.setdefault(section, {}).update(values)
    return template


def _main_container(template: dict[str, Any]) -> dict[str, Any]:
    """The template's ``flink-main-container``, created (first, so ``kubectl logs`` picks it) if missing."""
    pod_spec = template.setdefault("spec", {})
    containers = pod_spec.setdefault("containers", [])
    for container in containers:
        if isinstance(container, dict) and container.get("name") == MAIN_CONTAINER:
            return container
    container = {"name": MAIN_CONTAINER}
    containers.insert(0, container)
    return container


_POD_SECURITY: Mapping[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": FLINK_UID,
    "runAsGroup": FLINK_UID,
    "fsGroup": FLINK_UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
_CONTAINER_SECURITY: Mapping[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def _secure(template: dict[str, Any], by_name: bool) -> None:
    """Pod Security "restricted" defaults under whatever the template sets (the template wins).

    An explicit root user (``runAsUser: 0``) without an explicit ``runAsNonRoot`` drops the non-root default
    rather than producing a pod the kubelet refuses to start.
    """
    pod_spec = template.setdefault("spec", {})
    user_pod = pod_spec.get("securityContext") or {}
    pod_context = merge_pod_templates(_POD_SECURITY, user_pod, by_name=by_name)
    if pod_context.get("runAsUser") == 0 and "runAsNonRoot" not in user_pod:
        pod_context.pop("runAsNonRoot", None)
    pod_spec["securityContext"] = pod_context
    for key in ("initContainers", "containers"):
        for container in pod_spec.get(key) or []:
            if not isinstance(container, dict):
                continue
            user = container.get("securityContext") or {}
            context = merge_pod_templates(_CONTAINER_SECURITY, user, by_name=by_name)
            if user.get("runAsUser") == 0 and "runAsNonRoot" not in user and pod_context.get("runAsNonRoot"):
                context["runAsNonRoot"] = False
            container["securityContext"] = context


def _container_resources(ctx: _Context, component: Component, template_resources: Any) -> dict[str, Any]:
    """Requests and limits as Flink computes them for its pods: process size (Mi) and cpu, times the limit
    factors; other resource names from the template are kept."""
    config = ctx.config
    memory = flink_memory_mib(config.get(f"{component}.memory.process.size", "").strip() or _DEFAULT_MEMORY[component])
    cpu_text = config.get(f"kubernetes.{component}.cpu", "").strip()
    cpu = float(cpu_text) if cpu_text else -1.0
    if cpu <= 0:
        # Flink's defaults: one core for a JobManager, one per slot for a TaskManager.
        cpu = 1.0 if component == "jobmanager" else float(config.get("taskmanager.numberOfTaskSlots", "1") or "1")
    cpu_factor = float(config.get(f"kubernetes.{component}.cpu.limit-factor", "1.0") or "1.0")
    memory_factor = float(config.get(f"kubernetes.{component}.memory.limit-factor", "1.0") or "1.0")
    resources = copy.deepcopy(template_resources) if isinstance(template_resources, dict) else {}
    requests = resources.setdefault("requests", {})
    limits = resources.setdefault("limits", {})
    requests.update({"cpu": _cpu_quantity(cpu), "memory": f"{memory}Mi"})
    limits.update({"cpu": _cpu_quantity(cpu * cpu_factor), "memory": f"{math.floor(memory * memory_factor)}Mi"})
    return resources


def _escape(arg: str) -> str:
    """Kubernetes expands ``$(VAR)`` in args; a user's literal ``$(`` must survive as written."""
    return arg.replace("$(", "$$(")


def _args(ctx: _Context, component: Component, application: ApplicationLaunch | None) -> list[str]:
    rpc_address = f"jobmanager.rpc.address=$({POD_IP_ENV})"
    if component == "taskmanager":
        return ["taskmanager"]
    if ctx.mode is DeploymentMode.NATIVE:
        target = "kubernetes-application" if application else "kubernetes-session"
        return ["kubernetes-jobmanager.sh", target]
    if application is None:
        # jobmanager.sh takes dynamic properties only as a separate "-D" word: a single "-Dkey=value" word in
        # that position is read as the legacy <host> argument (and becomes "jobmanager.rpc.address=-Dkey=...").
        return ["jobmanager", "-D", rpc_address] if ctx.ha else ["jobmanager"]
    args = ["standalone-job"]
    if application.entry_class:
        args += ["--job-classname", _escape(application.entry_class)]
    args += ["--job-id", application.job_id]
    if ctx.allow_non_restored:
        args.append("--allowNonRestoredState")
    if ctx.restore:
        args += ["--fromSavepoint", _escape(ctx.restore)]
    if ctx.ha:
        args.append(f"-D{rpc_address}")
    return args + [_escape(a) for a in application.args]


def _env_from_config(config: Mapping[str, str], component: Component) -> list[dict[str, Any]]:
    """``containerized.{master,taskmanager}.env.X`` as container env (Flink's native pods get them so)."""
    prefix = "containerized.master.env." if component == "jobmanager" else "containerized.taskmanager.env."
    return [{"name": k[len(prefix) :], "value": v} for k, v in sorted(config.items()) if k.startswith(prefix)]


def _add_env_secret(container: dict[str, Any], env_secret: str | None) -> None:
    """The Secret ``env_secret`` as the container's last ``envFrom`` source (its keys win), listed once."""
    if env_secret:
        secret_ref = {"secretRef": {"name": env_secret}}
        container["envFrom"] = [*[e for e in container.get("envFrom") or [] if e != secret_ref], secret_ref]


def _flink_pod(
    ctx: _Context,
    component: Component,
    generation: int,
    application: ApplicationLaunch | None,
    env_secret: str | None,
) -> dict[str, Any]:
    """The complete pod template of a JobManager or standalone TaskManager Deployment."""
    config = ctx.config
    template = _user_template(ctx, component)
    container = _main_container(template)  # before _secure, so the main container gets the defaults too
    _secure(template, ctx.by_name)
    metadata = template.setdefault("metadata", {})
    for key in ("name", "namespace"):
        metadata.pop(key, None)  # pods get their name and namespace from the Deployment, not from a template
    metadata["labels"] = {
        **(metadata.get("labels") or {}),
        **_parse_map(config.get(f"kubernetes.{component}.labels")),
        **_common_labels(ctx),
        **selector_labels(ctx.name, ctx.mode, component),
    }
    metadata["annotations"] = {
        **(metadata.get("annotations") or {}),
        **_parse_map(config.get(f"kubernetes.{component}.annotations")),
        "kubectl.kubernetes.io/default-container": MAIN_CONTAINER,
        GENERATION_ANNOTATION: str(generation),
    }

    pod_spec = template["spec"]
    own_sa = config.get(f"kubernetes.{component}.service-account", "").strip()
    pod_spec["serviceAccountName"] = own_sa or config["kubernetes.service-account"]
    pod_spec.pop("serviceAccount", None)  # the deprecated alias would contradict serviceAccountName
    pod_spec["restartPolicy"] = "Always"  # the only policy a Deployment accepts
    node_selector = _parse_map(config.get(f"kubernetes.{component}.node-selector"))
    if node_selector:
        pod_spec["nodeSelector"] = {**(pod_spec.get("nodeSelector") or {}), **node_selector}
    pull_secrets = [
        s.strip() for s in config.get("kubernetes.container.image.pull-secrets", "").split(";") if s.strip()
    ]
    if pull_secrets:
        pod_spec["imagePullSecrets"] = _upsert_named(
            pod_spec.get("imagePullSecrets"), [{"name": s} for s in pull_secrets]
        )
    pod_spec["volumes"] = _upsert_named(
        pod_spec.get("volumes"),
        [{"name": CONFIG_VOLUME, "configMap": {"name": child_names(ctx.name, ctx.mode).config_map}}],
    )

    container["image"] = ctx.image
    container["imagePullPolicy"] = ctx.pull_policy
    container["command"] = [config.get("kubernetes.entry.path", "").strip() or _DEFAULT_ENTRYPOINT]
    container["args"] = _args(ctx, component, application)
    container["resources"] = _container_resources(ctx, component, container.get("resources"))
    if component == "jobmanager":
        ports = [
            {"name": "rest", "containerPort": int(config["rest.port"]), "protocol": "TCP"},
            {"name": "jobmanager-rpc", "containerPort": int(config["jobmanager.rpc.port"]), "protocol": "TCP"},
            {"name": "blobserver", "containerPort": int(config["blob.server.port"]), "protocol": "TCP"},
        ]
    else:
        ports = [{"name": "taskmanager-rpc", "containerPort": int(config["taskmanager.rpc.port"]), "protocol": "TCP"}]
    taken = {p["containerPort"] for p in ports}
    user_ports = [
        p for p in container.get("ports") or [] if not (isinstance(p, Mapping) and p.get("containerPort") in taken)
    ]
    container["ports"] = _upsert_named(user_ports, ports)
    env: list[dict[str, Any]] = [
        *_env_from_config(config, component),
        {"name": "FLINK_CONF_DIR", "value": ctx.conf_dir},
    ]
    if component == "jobmanager":
        pod_ip = {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}
        env += [{"name": POD_IP_ENV, "valueFrom": pod_ip}, {"name": "POD_IP", "valueFrom": pod_ip}]
    container["env"] = _upsert_named(container.get("env"), env)
    _add_env_secret(container, env_secret)
    mounts = [
        m
        for m in container.get("volumeMounts") or []
        if not (isinstance(m, Mapping) and m.get("mountPath") == ctx.conf_dir)
    ]
    container["volumeMounts"] = _upsert_named(
        mounts, [{"name": CONFIG_VOLUME, "mountPath": ctx.conf_dir, "readOnly": True}]
    )
    if (
        component == "jobmanager"
        and "startupProbe" not in container
        and ctx.spec.flink_configuration.get(STARTUP_PROBE_KEY, "true").strip().lower() != "false"
    ):
        # As the reference: the JobManager counts as started once its REST API answers.
        container["startupProbe"] = {
            "httpGet": {"path": "/config", "port": "rest"},
            "periodSeconds": 1,
            "failureThreshold": 2147483647,
        }
    return template


def _native_taskmanager_template(ctx: _Context, env_secret: str | None) -> dict[str, Any]:
    """The pod template file Flink's resource manager builds TaskManager pods from (native mode). Flink sets
    image, command, resources, service account and the configuration volume itself; this carries the user's
    template, the security defaults, flinkops' label and the secret environment."""
    template = _user_template(ctx, "taskmanager")
    container = _main_container(template)
    _secure(template, ctx.by_name)
    metadata = template.setdefault("metadata", {})
    metadata["labels"] = {**(metadata.get("labels") or {}), MANAGED_BY_LABEL: MANAGED_BY}
    _add_env_secret(container, env_secret)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


def _deployment(
    ctx: _Context,
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
        "metadata": _metadata(ctx, name, owner, generation, component=component),
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
    """The manifests of one Flink cluster, in apply order (ConfigMap, Services, JobManager, TaskManager).

    ``deployment`` gives identity (name, namespace, uid for the owner reference); ``spec`` is the spec to
    deploy when it is not ``deployment.spec`` (a rollback deploys the last stable spec); ``flink_config`` is
    ``render_flink_config``'s output without secrets; ``generation`` the target generation stamped on every
    object. ``jobmanager_replicas`` / ``taskmanager_replicas`` override the spec's counts (a scale decision);
    ``env_secret`` names a Secret whose keys become environment variables of every Flink container.
    Raises ``ValueError`` for a cluster that cannot be rendered (no uid, several JobManagers without HA,
    Kubernetes HA without any storage directory).
    """
    owner = _owner_reference(deployment)
    ctx = _context(
        deployment, spec or deployment.spec, flink_config, application, mode, jobmanager_replicas, taskmanager_replicas
    )
    tm_file = _native_taskmanager_template(ctx, env_secret) if ctx.mode is DeploymentMode.NATIVE else None
    manifests = [_config_map(ctx, owner, generation, tm_file), *_services(ctx, owner, generation)]
    jm_pod = _flink_pod(ctx, "jobmanager", generation, application, env_secret)
    jm = _deployment(ctx, "jobmanager", ctx.jobmanagers, jm_pod, owner, generation)
    if application is not None:
        jm["metadata"]["annotations"][JOB_ID_ANNOTATION] = application.job_id
    manifests.append(jm)
    if ctx.mode is DeploymentMode.STANDALONE:
        tm_pod = _flink_pod(ctx, "taskmanager", generation, application, env_secret)
        manifests.append(_deployment(ctx, "taskmanager", ctx.taskmanagers, tm_pod, owner, generation))
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
