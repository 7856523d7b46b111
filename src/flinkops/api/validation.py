"""Semantic validation of FlinkDeployment / FlinkSessionJob resources, beyond what the models' types enforce.

Called by the CLI before ``apply``/``plan`` (on freshly loaded resources) and by the controller's validate
step (an invalid spec is recorded as an error and the last valid spec keeps running). Three entry points:

* ``validate_resource`` - rules that need only the resource itself;
* ``validate_against`` - rules across a batch and the resources that already exist (session-job targets,
  duplicates);
* ``validate_update`` - what may not change once a resource exists.

Invariants: every function returns *all* problems it finds, errors only (advice lives in ``core.lint``), and
every Problem carries a hint telling the user what to do. The rules follow the reference operator's validator
so that YAML it accepts and flinkops rejects (or the reverse) is a deliberate, documented difference. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any, TypeVar

from flinkops.api.autoscaler import autoscaler_problems
from flinkops.api.durations import parse_duration_ms
from flinkops.api.flinkconf import (
    CHECKPOINT_DIR_KEYS,
    CRASH_BACKOFF_KEY,
    CRASH_MAX_BACKOFF_KEY,
    CRASH_RETRIES_KEY,
    PROGRESS_CHECK_KEY,
    SAVEPOINT_DIR_KEYS,
    TASKMANAGER_IDLE_TIMEOUT_KEY,
    checkpoint_dir,
    first_set,
    is_true,
    savepoint_dir,
)
from flinkops.api.loader import Resource, yaml_path
from flinkops.api.models import (
    DeploymentMode,
    FlinkDeployment,
    FlinkDeploymentSpec,
    FlinkSessionJob,
    FlinkVersion,
    JobSpec,
    UpgradeMode,
)
from flinkops.api.plugins import CONNECTOR_ARTIFACTS, CONNECTORS_KEY, requested_connectors
from flinkops.api.quantities import cpu_cores, flink_memory_bytes, memory_bytes
from flinkops.api.reporters import reporter_problems
from flinkops.api.retention_settings import RETENTION_KEYS, retention_limits
from flinkops.api.schedule import Schedule, parse_schedule
from flinkops.api.secrets import arg_references, config_references, reference_problems
from flinkops.errors import Problem

__all__ = [
    "ALLOWED_LOG_CONFIG_FILES",
    "CHECKPOINT_DIR_KEYS",
    "FORBIDDEN_CONFIG_KEYS",
    "HA_KEYS",
    "PERIODIC_SAVEPOINT_KEY",
    "ROLLBACK_KEY",
    "SAVEPOINT_DIR_KEYS",
    "checkpoint_dir",
    "config_path",
    "ha_type",
    "is_kubernetes_ha",
    "periodic_schedule",
    "resource_label",
    "savepoint_dir",
    "validate_against",
    "validate_batch",
    "validate_resource",
    "validate_update",
]

# Newest key first: Flink 2 renamed the state directories; Flink 1.x names remain accepted aliases.
HA_KEYS = ("high-availability.type", "high-availability")  # the second is the pre-1.17 spelling
ZOOKEEPER_QUORUM_KEY = "high-availability.zookeeper.quorum"
PERIODIC_SAVEPOINT_KEY = "kubernetes.operator.periodic.savepoint.interval"
PERIODIC_CHECKPOINT_KEY = "kubernetes.operator.periodic.checkpoint.interval"
ROLLBACK_KEY = "kubernetes.operator.deployment.rollback.enabled"
# flinkops (like the reference operator) derives these from the resource; a user value would point two
# clusters at the same HA metadata or put the cluster somewhere flinkops does not look.
FORBIDDEN_CONFIG_KEYS = ("kubernetes.namespace", "kubernetes.cluster-id", "high-availability.cluster-id")
ALLOWED_LOG_CONFIG_FILES = ("log4j-console.properties", "logback-console.xml")

_DEPLOYMENT_NAME = re.compile(r"[a-z]([-a-z0-9]{0,43}[a-z0-9])?")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_HA_BUILT_IN = ("zookeeper", "kubernetes")
_K8S_HA_FACTORY = "org.apache.flink.kubernetes.highavailability.KubernetesHaServicesFactory"
# Any (kind, namespace, name) tuple type, so callers may key by the models' Literal kinds.
_Key = TypeVar("_Key", bound=tuple[str, str, str])
_UNSUPPORTED_VERSIONS = (FlinkVersion.v1_13, FlinkVersion.v1_14)

# Integer ranges. Flink caps a job's parallelism by its maximum parallelism, which is at most 2^15
# (KeyGroupRangeAssignment.UPPER_BOUND_MAX_PARALLELISM); replicas are Kubernetes int32 fields; nonces are Java
# longs in the reference operator's CRD.
MAX_PARALLELISM = 2**15
_INT32_MAX = 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
# Label and annotation rules of Kubernetes (apimachinery's IsQualifiedName, IsValidLabelValue,
# ValidateAnnotations): a key is an optional DNS-subdomain prefix of at most 253 characters and '/', then a
# name of at most 63; a label value is at most 63 characters; all annotations together at most 256 KiB.
_QUALIFIED_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_ANNOTATIONS_MAX_BYTES = 256 * 1024
# Flink options whose values flinkops itself reads (to size processes and count slots), so a value Flink would
# refuse is refused here, before a JobManager is started with it.
_MEMORY_OPTION = re.compile(r"(jobmanager|taskmanager)\.memory\.[a-z.-]+\.(size|min|max)")
_POSITIVE_INT_OPTIONS = ("taskmanager.numberOfTaskSlots", "parallelism.default")
#: Durations flinkops reads itself (the crash-loop backoff, a local session cluster's idle TaskManagers, the
#: operator's progress checks).
_DURATION_OPTIONS = (CRASH_BACKOFF_KEY, CRASH_MAX_BACKOFF_KEY, TASKMANAGER_IDLE_TIMEOUT_KEY, PROGRESS_CHECK_KEY)


# --------------------------------------------------------------------------------------------- helpers


def config_path(key: str) -> str:
    """The path of a Flink configuration key as problems and findings show it."""
    return yaml_path("spec", "flinkConfiguration", key)


def resource_label(r: Resource) -> str:
    """``FlinkDeployment payments/fraud-scoring``: how problems name the resource they are about."""
    return f"{r.kind} {r.metadata.namespace}/{r.metadata.name}"


def ha_type(conf: Mapping[str, str]) -> str | None:
    """The high-availability services in use (``zookeeper``, ``kubernetes`` or a factory class), or None.

    ``high-availability.type`` wins over the legacy ``high-availability`` key, as in Flink; ``NONE`` (any
    case) means HA is off.
    """
    value = first_set(conf, HA_KEYS)
    if value is None or value.lower() == "none":
        return None
    return value.lower() if value.lower() in _HA_BUILT_IN else value


def is_kubernetes_ha(conf: Mapping[str, str]) -> bool:
    """True when the HA services are Kubernetes' (``kubernetes`` or the fully qualified factory class)."""
    kind = ha_type(conf)
    return kind is not None and kind.lower() in ("kubernetes", _K8S_HA_FACTORY.lower())


def periodic_schedule(conf: Mapping[str, str], key: str = PERIODIC_SAVEPOINT_KEY) -> Schedule | None:
    """The periodic savepoint (or checkpoint) schedule, None when it is off (unset, blank or ``0``).

    Raises ``ValueError`` when the value is neither a duration nor a Quartz cron expression.
    """
    raw = conf.get(key, "").strip()
    if not raw:
        return None
    schedule = parse_schedule(raw)
    return schedule if schedule.enabled else None


def _suggest_name(name: str, max_length: int) -> str | None:
    candidate = re.sub(r"[^a-z0-9-]+", "-", name.lower())
    candidate = re.sub(r"-{2,}", "-", candidate).lstrip("-0123456789")[:max_length].rstrip("-")
    return candidate or None


# ------------------------------------------------------------------------------------------- one resource


def validate_resource(
    r: Resource,
    *,
    source: str | None = None,
    default_state_dirs: bool = False,
    secret_schemes: Collection[str] | None = None,
) -> list[Problem]:
    """Every rule that needs only ``r``. ``source`` defaults to ``resource_label(r)``.

    ``default_state_dirs``: the target supplies checkpoint and savepoint directories when the spec sets none
    (the local runtime does, under ``$FLINKOPS_HOME``), so stateful upgrade modes need no explicit dir.
    ``secret_schemes``: the secret reference schemes the target resolves (``api.secrets``); None: any.
    """
    where = resource_label(r) if source is None else source
    problems: list[tuple[str, str, str]] = []
    problems += _name_problems(r)
    problems += _metadata_problems(r.metadata.labels, r.metadata.annotations)
    if not r.is_canary:  # a canary has no real spec: the reference does not validate it, nothing is deployed
        problems += _range_problems(r)
        problems += _config_value_problems(r.spec.flink_configuration)
        problems += reference_problems(
            r.spec.flink_configuration,
            r.spec.job.args if r.spec.job is not None else [],
            session_job=isinstance(r, FlinkSessionJob),
            ha=ha_type(r.spec.flink_configuration) is not None,
            schemes=secret_schemes,
            target="Kubernetes" if secret_schemes is not None and "k8s" in secret_schemes else "the local target",
        )
        if secret_schemes is not None and "k8s" in secret_schemes and isinstance(r, FlinkDeployment):
            problems += _native_secret_problems(r.spec)
        if isinstance(r, FlinkDeployment):
            problems += _quantity_problems(r.spec)
            problems += _deployment_problems(r.spec, default_state_dirs)
        else:
            problems += _session_job_problems(r)
    return [Problem(path, message, hint, where) for path, message, hint in problems]


def _native_secret_problems(spec: FlinkDeploymentSpec) -> list[tuple[str, str, str]]:
    """Flink's native Kubernetes mode writes the JobManager's configuration (dynamic properties and the job's
    arguments included) into a ConfigMap it creates for the TaskManagers: a resolved secret would land there."""
    if spec.mode is DeploymentMode.STANDALONE:  # unset means native, as in the reference operator
        return []
    args = spec.job.args if spec.job is not None else []
    if not config_references(spec.flink_configuration) and not arg_references(args):
        return []
    return [
        (
            "spec.mode",
            "secret references need mode: standalone on Kubernetes",
            "in native mode Flink copies its configuration, resolved values included, into a ConfigMap it creates; "
            "set spec.mode: standalone",
        )
    ]


def _qualified_name_problem(key: str) -> str | None:
    """Why ``key`` is not a Kubernetes label or annotation key, or None when it is one."""
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return "the prefix before '/' is empty"
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return (
            f"the prefix '{prefix[:60]}' is not a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253)"
        )
    if not name:
        return "the name is empty"
    if len(name) > 63:
        return f"the name is {len(name)} characters long; at most 63 are allowed"
    if not _QUALIFIED_NAME.fullmatch(name):
        return "the name must consist of letters, digits, '-', '_' and '.', and start and end with a letter or digit"
    return None


def _metadata_problems(
    labels: Mapping[str, str] | None, annotations: Mapping[str, str] | None
) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    key_hint = "use a key such as 'team' or 'example.com/team', as Kubernetes requires"
    for key, value in (labels or {}).items():
        path = yaml_path("metadata", "labels", key)
        why = _qualified_name_problem(key)
        if why is not None:
            found.append((path, f"not a valid label key: {why}", key_hint))
        if len(value) > 63 or (value and not _QUALIFIED_NAME.fullmatch(value)):
            found.append(
                (
                    path,
                    f"not a valid label value ({len(value)} characters): at most 63 letters, digits, '-', '_' and "
                    "'.', starting and ending with a letter or digit (or empty)",
                    "shorten the value, or put free text in an annotation instead",
                )
            )
    total = 0
    for key, value in (annotations or {}).items():
        total += len(key.encode()) + len(value.encode())
        why = _qualified_name_problem(key)
        if why is not None:
            found.append((yaml_path("metadata", "annotations", key), f"not a valid annotation key: {why}", key_hint))
    if total > _ANNOTATIONS_MAX_BYTES:
        found.append(
            (
                "metadata.annotations",
                f"the annotations add up to {total} bytes; Kubernetes allows at most {_ANNOTATIONS_MAX_BYTES} "
                "(256 KiB) in all",
                "keep large data out of annotations (a ConfigMap, or a file the job reads)",
            )
        )
    return found


def _range_problems(r: Resource) -> list[tuple[str, str, str]]:
    """Integers beyond what Flink or Kubernetes hold (the models take any size of integer)."""
    found: list[tuple[str, str, str]] = []
    job = r.spec.job
    if job is not None and job.parallelism is not None and job.parallelism > MAX_PARALLELISM:
        found.append(
            (
                "spec.job.parallelism",
                f"{job.parallelism} is more than Flink runs: a job's parallelism is at most {MAX_PARALLELISM}",
                f"set a parallelism between 1 and {MAX_PARALLELISM}",
            )
        )
    if isinstance(r, FlinkDeployment):
        for path, replicas in (
            ("spec.jobManager.replicas", r.spec.job_manager.replicas if r.spec.job_manager else None),
            ("spec.taskManager.replicas", r.spec.task_manager.replicas if r.spec.task_manager else None),
        ):
            if replicas is not None and replicas > _INT32_MAX:
                found.append(
                    (path, f"{replicas} is larger than Kubernetes' replica count (an int32)", "use a sensible count")
                )
    nonces: list[tuple[str, int | None]] = [("spec.restartNonce", r.spec.restart_nonce)]
    if job is not None:
        nonces += [
            ("spec.job.savepointTriggerNonce", job.savepoint_trigger_nonce),
            ("spec.job.checkpointTriggerNonce", job.checkpoint_trigger_nonce),
            ("spec.job.savepointRedeployNonce", job.savepoint_redeploy_nonce),
            ("spec.job.autoscalerResetNonce", job.autoscaler_reset_nonce),
        ]
    for path, nonce in nonces:
        if nonce is not None and not _LONG_MIN <= nonce <= _LONG_MAX:
            found.append((path, f"{nonce} does not fit a Java long", "use a smaller number, e.g. the previous one + 1"))
    return found


def _config_value_problems(conf: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """Values of the Flink options flinkops reads itself, checked as Flink parses them."""
    found: list[tuple[str, str, str]] = []
    for key, value in conf.items():
        if _MEMORY_OPTION.fullmatch(key) and value.strip():
            try:
                flink_memory_bytes(value)
            except ValueError as exc:
                hint = "write a Flink memory size such as '2048m', '2g' or '1 gb' (Flink reads no '2Gi' here)"
                found.append((config_path(key), str(exc), hint))
    for key in _POSITIVE_INT_OPTIONS:
        value = conf.get(key, "").strip()
        if value and not (value.isdigit() and 0 < int(value) <= _INT32_MAX):
            found.append(
                (config_path(key), f"must be a whole number from 1 to {_INT32_MAX}, got '{value[:40]}'", "e.g. 2")
            )
    for key, message in reporter_problems(conf):
        hint = (
            "write one port such as 9999, a range such as 9250-9260, or a comma-separated list of them"
            if key.endswith(".port")
            else "e.g. 'prometheus', 'prometheus,datadog' or 'none'"
        )
        found.append((config_path(key), message, hint))
    found += [(config_path(key), message, hint) for key, message, hint in autoscaler_problems(conf)]
    retries = conf.get(CRASH_RETRIES_KEY, "").strip()
    if retries and not (retries.isdigit() and int(retries) <= _INT32_MAX):
        found.append((config_path(CRASH_RETRIES_KEY), f"must be a whole number, got '{retries[:40]}'", "e.g. 3"))
    for key in _DURATION_OPTIONS:
        value = conf.get(key, "").strip()
        if not value:
            continue
        try:
            parse_duration_ms(value)
        except ValueError:
            found.append(
                (config_path(key), f"is not a duration: '{value[:40]}'", "write one such as '10 s' or '1 min'")
            )
    return found


def _quantity_problems(spec: FlinkDeploymentSpec) -> list[tuple[str, str, str]]:
    """Memory and CPU of the JobManager and TaskManager, read as Flink and Kubernetes read them."""
    found: list[tuple[str, str, str]] = []
    memory_hint = (
        "write a Flink size such as '2048m', '2g' or '1 gb', or a Kubernetes quantity such as '2Gi' or '1G' "
        "(exponents such as '1e9' are not read)"
    )
    cpu_hint = "write a number of cores such as 1 or 0.5, or millicores such as '500m'"
    for component, part in (("jobManager", spec.job_manager), ("taskManager", spec.task_manager)):
        if part is None:
            continue
        if part.resource is not None:
            base = ("spec", component, "resource")
            for field, size in (
                ("memory", part.resource.memory),
                ("ephemeralStorage", part.resource.ephemeral_storage),
            ):
                if size is not None:
                    found += _size_problem(yaml_path(*base, field), size, memory_hint, positive=True)
            if part.resource.cpu is not None:
                found += _cpu_problem(yaml_path(*base, "cpu"), part.resource.cpu, cpu_hint, positive=True)
        for section, block in (part.resources or {}).items():
            if section not in ("requests", "limits") or not isinstance(block, Mapping):
                continue
            for name, amount in block.items():
                path = yaml_path("spec", component, "resources", section, str(name))
                if name == "cpu":
                    found += _cpu_problem(path, amount, cpu_hint, positive=False)
                elif name in ("memory", "ephemeral-storage"):
                    found += _size_problem(path, amount, memory_hint, positive=False)
    return found


def _size_problem(path: str, value: Any, hint: str, *, positive: bool) -> list[tuple[str, str, str]]:
    try:
        size = memory_bytes(str(value)) if isinstance(value, str | int) and not isinstance(value, bool) else None
    except ValueError as exc:
        return [(path, str(exc), hint)]
    if size is None:
        return [(path, f"expected a memory size, got {value!r}", hint)]
    if positive and size <= 0:
        return [(path, f"must be more than 0, got {value!r}", hint)]
    return []


def _cpu_problem(path: str, value: Any, hint: str, *, positive: bool) -> list[tuple[str, str, str]]:
    try:
        cores = cpu_cores(value)
    except ValueError as exc:
        return [(path, str(exc), hint)]
    if cores < 0 or (positive and cores == 0):
        bound = "more than 0" if positive else "0 or more"
        return [(path, f"must be {bound}, got {value}", hint)]
    return []


def _name_problems(r: Resource) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    name = r.metadata.name
    if isinstance(r, FlinkDeployment):
        # The name becomes Service, Deployment and ConfigMap names with suffixes: hence 45 characters.
        if not _DEPLOYMENT_NAME.fullmatch(name):
            suggestion = _suggest_name(name, 45)
            found.append(
                (
                    "metadata.name",
                    f"'{name}' is not a valid FlinkDeployment name: use at most 45 lowercase letters, digits "
                    "and '-', starting with a letter and ending with a letter or digit",
                    f"try '{suggestion}'" if suggestion else "choose a name such as 'fraud-scoring'",
                )
            )
    elif len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        suggestion = _suggest_name(name, 253)
        found.append(
            (
                "metadata.name",
                f"'{name}' is not a valid Kubernetes object name: use lowercase letters, digits, '-' "
                "and '.', starting and ending with a letter or digit",
                f"try '{suggestion}'" if suggestion else "choose a name such as 'inventory-job'",
            )
        )
    namespace = r.metadata.namespace
    if not _DNS_LABEL.fullmatch(namespace):
        found.append(
            (
                "metadata.namespace",
                f"'{namespace}' is not a valid namespace: use at most 63 lowercase letters, digits and '-'",
                "use a namespace such as 'payments', or leave it out for 'default'",
            )
        )
    return found


def _deployment_problems(spec: FlinkDeploymentSpec, default_state_dirs: bool = False) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    conf = spec.flink_configuration
    if spec.flink_version is None:
        found.append(
            (
                "spec.flinkVersion",
                "missing required field",
                "set it to the Flink version in your image, e.g. 'flinkVersion: v1_20' (the image itself "
                "may have any name)",
            )
        )
    elif spec.flink_version in _UNSUPPORTED_VERSIONS:
        found.append(
            (
                "spec.flinkVersion",
                f"Flink {spec.flink_version.value} is no longer supported",
                "upgrade the job to Flink 1.15 or newer and set flinkVersion accordingly, e.g. v1_20",
            )
        )

    for key in FORBIDDEN_CONFIG_KEYS:
        if key in conf:
            found.append(
                (
                    config_path(key),
                    f"'{key}' is set by flinkops from the resource and must not be configured",
                    "remove it; the namespace and cluster id come from metadata.namespace and metadata.name",
                )
            )

    for file_name in spec.log_configuration or {}:
        if file_name not in ALLOWED_LOG_CONFIG_FILES:
            found.append(
                (
                    yaml_path("spec", "logConfiguration", file_name),
                    f"unsupported log configuration file '{file_name}'",
                    f"use one of: {', '.join(ALLOWED_LOG_CONFIG_FILES)}",
                )
            )

    ha = ha_type(conf)
    raw_ha = first_set(conf, HA_KEYS)
    if raw_ha is not None and ha is not None and ha not in _HA_BUILT_IN and "." not in ha:
        key = next(k for k in HA_KEYS if conf.get(k, "").strip())
        found.append(
            (
                config_path(key),
                f"unknown high-availability type '{raw_ha}'",
                "use 'kubernetes', 'zookeeper', 'NONE' or the fully qualified class name of an HA services factory",
            )
        )

    if ha == "zookeeper" and not conf.get(ZOOKEEPER_QUORUM_KEY, "").strip():
        key = next(k for k in HA_KEYS if conf.get(k, "").strip())
        found.append(
            (
                config_path(key),
                f"ZooKeeper high availability needs '{ZOOKEEPER_QUORUM_KEY}', which is not set",
                f"set '{ZOOKEEPER_QUORUM_KEY}' to the ZooKeeper servers, e.g. 'zk-1:2181,zk-2:2181' "
                "(127.0.0.1:2181 for a local one)",
            )
        )

    if spec.job_manager is not None:
        replicas = spec.job_manager.replicas
        if replicas < 1:
            found.append(
                (
                    "spec.jobManager.replicas",
                    f"must be at least 1, got {replicas}",
                    "set jobManager.replicas to 1, or 2 with high availability for a standby JobManager",
                )
            )
        elif replicas > 1 and ha is None:
            found.append(
                (
                    "spec.jobManager.replicas",
                    f"{replicas} JobManagers need high availability, which is not enabled",
                    "set flinkConfiguration 'high-availability.type: kubernetes' (or zookeeper) with "
                    "'high-availability.storageDir', or use a single JobManager",
                )
            )

    tm_replicas = spec.task_manager.replicas if spec.task_manager is not None else None
    if tm_replicas is not None and tm_replicas < 1:
        found.append(
            (
                "spec.taskManager.replicas",
                f"must be at least 1, got {tm_replicas}",
                "set taskManager.replicas to 1 or more, or leave it out to size TaskManagers from the parallelism",
            )
        )

    # flinkops rolls back with the newest checkpoint it finds in checkpoint storage, so unlike the reference
    # operator it needs no HA metadata: a checkpoint directory (defaulted on the local runtime) is enough.
    if is_true(conf.get(ROLLBACK_KEY)) and ha is None and not default_state_dirs and checkpoint_dir(conf) is None:
        found.append(
            (
                config_path(ROLLBACK_KEY),
                "rollback restores the job's last state, but neither a checkpoint directory nor HA is configured",
                "set 'execution.checkpointing.dir' (or enable HA), or turn rollback off",
            )
        )

    if spec.ingress is not None:
        template = re.sub(r"\{\{\s*(name|namespace)\s*\}\}", "x", spec.ingress.template, flags=re.IGNORECASE)
        if not template.strip() or "{{" in template or "}}" in template or re.search(r"\s", template.strip()):
            found.append(
                (
                    "spec.ingress.template",
                    f"not an ingress URL template: {spec.ingress.template!r}",
                    "write a host and/or path with {{name}} and {{namespace}} as the only placeholders, e.g. "
                    "'{{name}}.{{namespace}}.flink.example.com' or 'flink.example.com/{{namespace}}/{{name}}'",
                )
            )

    found += _snapshot_setting_problems(conf)
    if not default_state_dirs:
        found += _state_dir_problems(spec.job, conf)

    if spec.job is not None:
        if (spec.job.parallelism is None or spec.job.parallelism <= 0) and tm_replicas is None:
            got = "it is not set" if spec.job.parallelism is None else f"got {spec.job.parallelism}"
            found.append(
                (
                    "spec.job.parallelism",
                    f"must be greater than 0 when taskManager.replicas is not set ({got})",
                    "set job.parallelism, e.g. 'parallelism: 2', or set taskManager.replicas",
                )
            )
        found += _job_problems(spec.job)
    return found


def _session_job_problems(r: FlinkSessionJob) -> list[tuple[str, str, str]]:
    found = _snapshot_setting_problems(r.spec.flink_configuration)
    job = r.spec.job
    if job is None:
        # Accepted: the session job simply has nothing to run yet (the reference examples do this).
        return found
    if not (job.jar_uri or "").strip():
        found.append(
            (
                "spec.job.jarURI",
                "missing required field: a session job must say which jar to submit",
                "set job.jarURI to the jar's location, e.g. 'https://repo.example.com/jobs/my-job.jar' or "
                "'file:///path/to/job.jar'",
            )
        )
    if job.parallelism is not None and job.parallelism <= 0:
        found.append(
            (
                "spec.job.parallelism",
                f"must be greater than 0, got {job.parallelism}",
                "set a positive parallelism or leave it out to use the session cluster's default",
            )
        )
    found += _job_problems(job)
    # Directory rules need the session cluster's configuration too, so validate_against checks them.
    return found


def _snapshot_setting_problems(conf: Mapping[str, str]) -> list[tuple[str, str, str]]:
    found = []
    for key in RETENTION_KEYS:
        try:
            retention_limits({key: conf.get(key, "")})
        except ValueError as exc:
            hint = "fix the value, or remove the key for the default (10 savepoints, 1 d)"
            found.append((config_path(key), str(exc).removeprefix(f"{key}: "), hint))
    for key in (PERIODIC_SAVEPOINT_KEY, PERIODIC_CHECKPOINT_KEY):
        try:
            periodic_schedule(conf, key)
        except ValueError as exc:
            hint = "write a duration such as '1h' or '30 min', or a Quartz cron expression such as '0 0 * * * ?'"
            found.append((config_path(key), str(exc), hint))
    for connector in requested_connectors(conf):
        if connector not in CONNECTOR_ARTIFACTS:
            found.append(
                (
                    config_path(CONNECTORS_KEY),
                    f"unknown connector {connector!r}",
                    f"list connectors flinkops provides ({', '.join(sorted(CONNECTOR_ARTIFACTS))}), or bundle "
                    "the connector into the job jar and remove it from this key",
                )
            )
    return found


def _job_problems(job: JobSpec) -> list[tuple[str, str, str]]:
    if job.savepoint_redeploy_nonce is not None and not (job.initial_savepoint_path or "").strip():
        return [
            (
                "spec.job.savepointRedeployNonce",
                "a savepoint redeploy needs job.initialSavepointPath",
                "set job.initialSavepointPath to the savepoint to redeploy from, or remove savepointRedeployNonce",
            )
        ]
    return []


def _state_dir_problems(job: JobSpec | None, conf: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """Upgrade modes and savepoint triggers need somewhere to write state; ``conf`` is the effective
    configuration (for a session job: the session cluster's, overlaid with the job's)."""
    found: list[tuple[str, str, str]] = []
    checkpoints = checkpoint_dir(conf)
    savepoints = savepoint_dir(conf)
    checkpoint_hint = (
        "set flinkConfiguration 'execution.checkpointing.dir' (Flink 2) or 'state.checkpoints.dir' "
        "to durable storage, e.g. s3://bucket/checkpoints"
    )
    savepoint_hint = (
        "set flinkConfiguration 'execution.checkpointing.savepoint-dir' (Flink 2) or 'state.savepoints.dir' "
        "to durable storage, e.g. s3://bucket/savepoints"
    )
    if job is not None:
        mode = job.upgrade_mode
        if mode is not UpgradeMode.STATELESS and checkpoints is None:
            found.append(
                (
                    "spec.job.upgradeMode",
                    f"upgradeMode '{mode.value}' needs a checkpoint directory, and none is configured",
                    checkpoint_hint,
                )
            )
        if mode is UpgradeMode.SAVEPOINT and savepoints is None:
            found.append(
                (
                    "spec.job.upgradeMode",
                    "upgradeMode 'savepoint' needs a savepoint directory, and none is configured",
                    savepoint_hint,
                )
            )
        if job.savepoint_trigger_nonce is not None and savepoints is None:
            found.append(
                (
                    "spec.job.savepointTriggerNonce",
                    "a savepoint trigger needs a savepoint directory, and none is configured",
                    savepoint_hint,
                )
            )
    try:
        periodic = periodic_schedule(conf)
    except ValueError:
        periodic = None  # reported where the key is defined
    if periodic is not None and savepoints is None:
        found.append(
            (
                config_path(PERIODIC_SAVEPOINT_KEY),
                "periodic savepoints need a savepoint directory, and none is configured",
                savepoint_hint,
            )
        )
    return found


# ------------------------------------------------------------------------------------- across resources


def validate_against(
    resources: Sequence[Resource], existing: Mapping[_Key, Resource], *, default_state_dirs: bool = False
) -> list[Problem]:
    """Rules across the batch ``resources`` and the ``existing`` resources, keyed ``(kind, namespace, name)``.

    A batch member replaces an existing resource of the same key (that is what applying it does), so a
    session job is checked against the session cluster it will actually run on.
    """
    problems: list[Problem] = []
    seen: set[tuple[str, str, str]] = set()
    deployments: dict[tuple[str, str], FlinkDeployment] = {}
    for (kind, namespace, name), value in existing.items():
        if kind == "FlinkDeployment" and isinstance(value, FlinkDeployment):
            deployments[(namespace, name)] = value
    for r in resources:
        key: tuple[str, str, str] = (r.kind, r.metadata.namespace, r.metadata.name)
        if key in seen:
            problems.append(
                Problem(
                    "metadata.name",
                    f"{r.kind} '{r.metadata.namespace}/{r.metadata.name}' is defined more than once in this input",
                    "keep one definition, or give the others different names",
                    resource_label(r),
                )
            )
        seen.add(key)
        if isinstance(r, FlinkDeployment):
            deployments[(r.metadata.namespace, r.metadata.name)] = r

    for r in resources:
        if isinstance(r, FlinkSessionJob) and not r.is_canary:
            problems += _session_target_problems(r, deployments, default_state_dirs)
    return problems


def _session_target_problems(
    job: FlinkSessionJob,
    deployments: Mapping[tuple[str, str], FlinkDeployment],
    default_state_dirs: bool = False,
) -> list[Problem]:
    where = resource_label(job)
    namespace, target = job.metadata.namespace, job.spec.deployment_name
    cluster = deployments.get((namespace, target))
    if cluster is None:
        # Not there yet is fine: GitOps tools apply objects in any order, and the job waits for its cluster (as
        # the reference operator's does); its status names the cluster it waits for.
        return []
    if not cluster.is_session_cluster:
        return [
            Problem(
                "spec.deploymentName",
                f"FlinkDeployment '{namespace}/{target}' is an application cluster (it has spec.job); "
                "session jobs run only on session clusters",
                "point deploymentName at a FlinkDeployment without spec.job, or run this job as its own "
                "FlinkDeployment",
                where,
            )
        ]
    if default_state_dirs:
        return []
    effective = {**cluster.spec.flink_configuration, **job.spec.flink_configuration}
    return [Problem(path, message, hint, where) for path, message, hint in _state_dir_problems(job.spec.job, effective)]


def validate_batch(
    resources: Sequence[Resource],
    existing: Mapping[tuple[str, str, str], Resource],
    *,
    default_state_dirs: bool = False,
    secret_schemes: Collection[str] | None = None,
) -> list[Problem]:
    """Everything the three entry points find in ``resources``: each on its own, as an update of the existing
    resource of the same key, and across the batch and ``existing``. The one place ``apply`` (through
    ``service.inputs``) and the admission webhook (``core.admission``) get their verdict from."""
    problems: list[Problem] = []
    for resource in resources:
        problems.extend(
            validate_resource(resource, default_state_dirs=default_state_dirs, secret_schemes=secret_schemes)
        )
        old = existing.get((resource.kind, resource.metadata.namespace, resource.metadata.name))
        if old is not None:
            problems.extend(validate_update(old, resource))
    problems.extend(validate_against(resources, existing, default_state_dirs=default_state_dirs))
    return problems


# --------------------------------------------------------------------------------------------- updates


def validate_update(old: Resource, new: Resource, *, source: str | None = None) -> list[Problem]:
    """What may not change on an existing resource; ``old`` is the current spec, ``new`` the requested one."""
    where = resource_label(new) if source is None else source
    if old.kind != new.kind:
        return [
            Problem(
                "kind",
                f"cannot change kind from {old.kind} to {new.kind}",
                f"delete the {old.kind} first, or use another name",
                where,
            )
        ]
    problems: list[Problem] = []
    name = new.metadata.name
    if isinstance(old, FlinkDeployment) and isinstance(new, FlinkDeployment):
        if old.is_session_cluster and not new.is_session_cluster:
            problems.append(
                Problem(
                    "spec.job",
                    "cannot turn a session cluster into an application cluster",
                    f"run the job as a FlinkSessionJob with 'deploymentName: {name}', or delete '{name}' and "
                    "create it again",
                    where,
                )
            )
        elif not old.is_session_cluster and new.is_session_cluster:
            problems.append(
                Problem(
                    "spec.job",
                    "cannot turn an application cluster into a session cluster",
                    f"suspend the job with 'job.state: suspended' instead, or delete '{name}' and create a "
                    "session cluster under another name",
                    where,
                )
            )
        old_mode = old.spec.mode or DeploymentMode.NATIVE
        new_mode = new.spec.mode or DeploymentMode.NATIVE
        if old_mode is not new_mode:
            problems.append(
                Problem(
                    "spec.mode",
                    f"cannot change the deployment mode from {old_mode.value} to {new_mode.value}",
                    f"keep 'mode: {old_mode.value}', or delete '{name}' and create it again (take a "
                    "savepoint first and set job.initialSavepointPath to keep the state)",
                    where,
                )
            )
    elif (
        isinstance(old, FlinkSessionJob)
        and isinstance(new, FlinkSessionJob)
        and old.spec.deployment_name != new.spec.deployment_name
    ):
        problems.append(
            Problem(
                "spec.deploymentName",
                f"cannot move a session job from '{old.spec.deployment_name}' to '{new.spec.deployment_name}'",
                "delete the session job and create it on the other cluster (take a savepoint first and set "
                "job.initialSavepointPath to keep the state)",
                where,
            )
        )
    return problems
