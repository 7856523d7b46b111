"""Guardrails for the pitfalls that hurt stateful Flink jobs in production (``flinkops lint``).

Validation (``api.validation``) rejects resources that cannot run; lint flags resources that *run* but will
hurt later: state dropped on upgrade, HA that cannot fail over, checkpoints that pile up, secrets in git. The
rules come from real migration guides (the payments fraud-scoring migration's "Common pitfalls"): each
Finding says what is wrong, why it hurts, and how to fix it.

Called by the CLI (``flinkops lint -f FILE``, and ``apply`` to print warnings) with already-loaded resources.

Invariants: pure (no I/O); the verdict depends only on the resource; a finding never contains the value of a
configuration entry that looks like a secret. A resource that follows the migration guide's recommendations
(the fraud-scoring deployment) produces no finding at all: warnings are for things worth changing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from flinkops.api.autoscaler import AUTOSCALER_PREFIX, autoscaler_enabled
from flinkops.api.durations import parse_duration_ms
from flinkops.api.flinkconf import SCHEDULER_KEY, adaptive_scheduler, is_true
from flinkops.api.loader import Resource
from flinkops.api.models import FlinkDeployment, JobSpec, UpgradeMode
from flinkops.api.plugins import (
    MAIN_CONTAINER,
    PLUGINS_KEY,
    S3_HADOOP,
    S3_PRESTO,
    plugin_env_declarations,
    plugin_names,
)
from flinkops.api.validation import (
    CHECKPOINT_DIR_KEYS,
    HA_KEYS,
    PERIODIC_SAVEPOINT_KEY,
    SAVEPOINT_DIR_KEYS,
    checkpoint_dir,
    config_path,
    ha_type,
    savepoint_dir,
)

__all__ = [
    "MAIN_CONTAINER",
    "PLUGINS_KEY",
    "RULES",
    "Finding",
    "Severity",
    "lint",
]

Severity = Literal["error", "warning"]

RULES: Mapping[str, str] = {
    "FO001": "stateful job with upgradeMode stateless",
    "FO002": "high availability without high-availability.storageDir",
    "FO003": "S3 state paths with no or both S3 filesystem plugins enabled",
    "FO004": "RocksDB state backend without incremental checkpoints",
    "FO005": "checkpoint interval, timeout and min-pause that pile checkpoints up",
    "FO006": "savepoints requested without a savepoint directory",
    "FO007": "stateful job without externalized checkpoint retention RETAIN_ON_CANCELLATION",
    "FO008": "literal secret in flinkConfiguration",
    "FO009": "checkpoint setting that Flink cannot read",
    "FO010": "autoscaler that cannot rescale as it is set up",
}

# Which plugin serves which scheme: both claim s3://, only Presto has s3p://, only Hadoop has s3a://.
_SCHEME_PLUGINS = {"s3": (S3_PRESTO, S3_HADOOP), "s3p": (S3_PRESTO,), "s3a": (S3_HADOOP,)}

_INTERVAL = "execution.checkpointing.interval"
_TIMEOUT = "execution.checkpointing.timeout"
_MIN_PAUSE = "execution.checkpointing.min-pause"
_MAX_CONCURRENT = "execution.checkpointing.max-concurrent-checkpoints"
_RETENTION = "execution.checkpointing.externalized-checkpoint-retention"
_BACKEND_KEYS = ("state.backend.type", "state.backend")  # the second is the pre-1.17 spelling
_INCREMENTAL_KEYS = ("execution.checkpointing.incremental", "state.backend.incremental")
_HA_STORAGE = "high-availability.storageDir"
# Flink's defaults when the keys are absent.
_DEFAULT_TIMEOUT_MS = 10 * 60 * 1000
_DEFAULT_MIN_PAUSE_MS = 0
_DEFAULT_MAX_CONCURRENT = 1

_SECRET_WORDS = ("password", "passwd", "secret", "apikey", "api-key", "token", "access-key", "credential")
# Keys whose last segment names *how* a secret is obtained, not the secret (credentials.provider, ...).
_SECRET_META_SUFFIXES = ("provider", "enabled", "class", "file", "path", "type", "timeout", "ttl", "interval")
_NOT_SECRETS = frozenset({"kubernetes.secrets", "kubernetes.env.secretkeyref"})
# ``${secret:...}`` (api.secrets, resolved at start) or a bare ``${NAME}`` placeholder: neither is the secret.
_REFERENCE = re.compile(r"^\$\{(secret:[^}]*|[A-Za-z_][A-Za-z0-9_.-]*)\}$")
_INLINE_PASSWORD = re.compile(r"password\s*=\s*\"?(?P<value>[^\"\s;]*)", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    """One guardrail hit: which rule, how bad, where, what, why it hurts and how to fix it."""

    rule_id: str
    severity: Severity
    path: str
    message: str
    why: str
    fix: str

    def render(self) -> str:
        head = f"{self.rule_id} {self.severity}: {self.path}: {self.message}"
        return f"{head}\n  why: {self.why}\n  fix: {self.fix}"


def lint(r: Resource) -> list[Finding]:
    """Every guardrail finding for ``r``, in rule order."""
    conf = r.spec.flink_configuration
    job = r.spec.job
    deployment = r if isinstance(r, FlinkDeployment) else None
    findings: list[Finding] = []
    findings += _stateless_upgrade(job, conf)
    findings += _ha_storage(conf)
    if deployment is not None:
        findings += _s3_plugins(deployment)
    findings += _rocksdb_incremental(conf)
    findings += _checkpoint_timing(conf)
    if deployment is not None:  # a session job's savepoint directory may come from its session cluster
        findings += _savepoint_dir(job, conf)
    findings += _retention(conf)
    findings += _literal_secrets(conf)
    findings += _autoscaler(r)
    return findings


# --------------------------------------------------------------------------------------------- helpers


def _first_key(conf: Mapping[str, str], keys: tuple[str, ...]) -> str | None:
    return next((key for key in keys if conf.get(key, "").strip()), None)


def _rocksdb_key(conf: Mapping[str, str]) -> str | None:
    """The key that selects RocksDB as state backend (names or factory classes), if any."""
    key = _first_key(conf, _BACKEND_KEYS)
    return key if key is not None and "rocksdb" in conf[key].lower() else None


def _stateful_reason(conf: Mapping[str, str]) -> str | None:
    """Why this configuration keeps state worth protecting, or None when nothing says so."""
    if checkpoint_dir(conf) is not None:
        return "it has a checkpoint directory"
    key = _first_key(conf, _BACKEND_KEYS)
    backend = conf[key].strip().lower() if key is not None else ""
    if "rocksdb" in backend or backend == "forst":
        return "it uses a keyed state backend that spills to disk"
    return None


# --------------------------------------------------------------------------------------------- rules


def _stateless_upgrade(job: JobSpec | None, conf: Mapping[str, str]) -> list[Finding]:
    reason = _stateful_reason(conf)
    if job is None or job.upgrade_mode is not UpgradeMode.STATELESS or reason is None:
        return []
    written = "upgrade_mode" in job.model_fields_set
    return [
        Finding(
            "FO001",
            "error",
            "spec.job.upgradeMode",
            f"the job keeps state ({reason}) but upgrades it statelessly"
            + ("" if written else " (upgradeMode is not set and defaults to stateless)"),
            "every upgrade or redeploy then starts the job from empty state and replays its sources from the "
            "beginning: the state the checkpoints protect is silently dropped",
            "set job.upgradeMode: savepoint (or last-state to restore from the latest checkpoint instead of "
            "a fresh savepoint)",
        )
    ]


def _ha_storage(conf: Mapping[str, str]) -> list[Finding]:
    if ha_type(conf) is None or conf.get(_HA_STORAGE, "").strip():
        return []
    key = _first_key(conf, HA_KEYS) or HA_KEYS[0]
    return [
        Finding(
            "FO002",
            "error",
            config_path(key),
            "high availability is enabled without high-availability.storageDir",
            "the JobManager has nowhere durable to keep job graphs and checkpoint pointers: it does not "
            "start, or a failover cannot find the last checkpoint and the job replays from the beginning",
            f"set '{_HA_STORAGE}' to durable storage every JobManager can write, e.g. s3://bucket/ha/",
        )
    ]


def _s3_plugin_names(text: str) -> set[str]:
    """The S3 plugins in a plugin list (jar names or plugin names)."""
    return {name for name in plugin_names(text) if name in (S3_PRESTO, S3_HADOOP)}


def _s3_plugins(r: FlinkDeployment) -> list[Finding]:
    conf = r.spec.flink_configuration
    schemes: dict[str, str] = {}  # scheme -> first key that uses it
    for key in (*CHECKPOINT_DIR_KEYS, *SAVEPOINT_DIR_KEYS, _HA_STORAGE):
        scheme = conf.get(key, "").strip().partition("://")[0].lower()
        if scheme in _SCHEME_PLUGINS:
            schemes.setdefault(scheme, key)
    if not schemes:
        return []

    # Declarations per process role: a role-specific pod template overrides the shared one; flinkops.plugins
    # applies to every process.
    spec = r.spec
    shared = list(plugin_env_declarations(spec.pod_template, ("spec", "podTemplate")))
    jm_template = spec.job_manager.pod_template if spec.job_manager else None
    tm_template = spec.task_manager.pod_template if spec.task_manager else None
    roles = (
        list(plugin_env_declarations(jm_template, ("spec", "jobManager", "podTemplate"))) or shared,
        list(plugin_env_declarations(tm_template, ("spec", "taskManager", "podTemplate"))) or shared,
    )
    local = conf.get(PLUGINS_KEY)
    findings: dict[str, Finding] = {}
    for declarations in roles:
        sources = [path for path, _ in declarations]
        declared: set[str] | None = None
        if local is not None:
            declared = _s3_plugin_names(local)
            sources.insert(0, config_path(PLUGINS_KEY))
        for _, value in declarations:
            declared = (declared or set()) | _s3_plugin_names(value)
        for finding in _plugin_findings(r, schemes, declared, sources):
            findings.setdefault(finding.message, finding)
    return list(findings.values())


def _plugin_findings(
    r: FlinkDeployment, schemes: Mapping[str, str], declared: set[str] | None, sources: list[str]
) -> list[Finding]:
    if declared is None:
        # Nothing declared: the image may bake the plugin into plugins/ (as the fraud-scoring Dockerfile does),
        # and without an image flinkops enables the plugin the paths need (api.plugins.choose_plugins).
        return []
    findings: list[Finding] = []
    if "s3" in schemes and {S3_PRESTO, S3_HADOOP} <= declared:
        findings.append(
            Finding(
                "FO003",
                "error",
                sources[0],
                "both S3 filesystem plugins (s3-fs-presto and s3-fs-hadoop) are enabled and state uses s3://",
                "both plugins claim the s3:// scheme, so which one serves checkpoints is undefined and jobs "
                "fail with filesystem errors",
                "enable exactly one S3 plugin (Presto is the usual choice for checkpoints), or write "
                "checkpoint paths as s3p:// (Presto) and keep s3a:// (Hadoop) for sinks",
            )
        )
    missing = sorted(s for s, plugins in _SCHEME_PLUGINS.items() if s in schemes and not declared & set(plugins))
    if missing:
        need = " or ".join(dict.fromkeys(p for scheme in missing for p in _SCHEME_PLUGINS[scheme]))
        schemes_text = ", ".join(f"{s}://" for s in missing)
        findings.append(
            Finding(
                "FO003",
                # With an image the plugin may still be baked in: a declaration is a strong hint, not proof.
                "warning" if r.spec.image else "error",
                sources[0],
                f"state is stored on {schemes_text} but the declared plugins do not include {need}",
                "without the matching S3 filesystem plugin Flink fails with UnsupportedFileSystemException "
                "on the first checkpoint or at startup",
                f"add {need} to the declared plugins (exactly one S3 plugin per scheme)",
            )
        )
    return findings


def _rocksdb_incremental(conf: Mapping[str, str]) -> list[Finding]:
    key = _rocksdb_key(conf)
    if key is None:
        return []
    incremental_key = _first_key(conf, _INCREMENTAL_KEYS)
    if incremental_key is not None and is_true(conf[incremental_key]):
        return []
    state = "turned off" if incremental_key is not None else "not enabled"
    return [
        Finding(
            "FO004",
            "warning",
            config_path(incremental_key or key),
            f"RocksDB state backend with incremental checkpoints {state}",
            "every checkpoint then uploads the full state: on large keyed state that saturates the network "
            "and checkpoints time out",
            "set 'execution.checkpointing.incremental: true' (Flink 2) or 'state.backend.incremental: true'",
        )
    ]


def _checkpoint_timing(conf: Mapping[str, str]) -> list[Finding]:
    findings: list[Finding] = []
    values: dict[str, int] = {}
    for key in (_INTERVAL, _TIMEOUT, _MIN_PAUSE):
        raw = conf.get(key, "").strip()
        if not raw:
            continue
        try:
            values[key] = parse_duration_ms(raw)
        except ValueError as exc:
            findings.append(_unreadable(key, str(exc), "write a duration such as '30 s', '10 min' or '500 ms'"))
    max_concurrent = _DEFAULT_MAX_CONCURRENT
    raw_concurrent = conf.get(_MAX_CONCURRENT, "").strip()
    if raw_concurrent:
        try:
            max_concurrent = int(raw_concurrent)
        except ValueError:
            findings.append(_unreadable(_MAX_CONCURRENT, "not a whole number", "write a whole number such as 1"))
    if findings:
        return findings

    interval = values.get(_INTERVAL)
    if interval is None or interval <= 0:
        return []  # checkpointing is off; nothing can overlap
    timeout = values.get(_TIMEOUT, _DEFAULT_TIMEOUT_MS)
    min_pause = values.get(_MIN_PAUSE, _DEFAULT_MIN_PAUSE_MS)
    if min_pause >= interval:
        findings.append(
            Finding(
                "FO005",
                "warning",
                config_path(_MIN_PAUSE),
                f"min-pause ({_ms(min_pause)}) is not shorter than the checkpoint interval ({_ms(interval)})",
                "a checkpoint starts only min-pause after the previous one ended, so the interval has no "
                "effect and the real checkpoint cadence (your recovery point) is longer than the "
                "configuration says",
                "make min-pause clearly shorter than the interval, e.g. a third of it",
            )
        )
    elif min_pause == 0 and timeout > interval:
        # A positive min-pause also limits Flink to one checkpoint at a time, so only min-pause 0 can pile up.
        if max_concurrent > 1:
            what = (
                f"up to {max_concurrent} checkpoints can run at once: the timeout ({_ms(timeout)}) is "
                f"longer than the interval ({_ms(interval)}) and min-pause is 0"
            )
        else:
            what = (
                f"checkpoints can run back to back: the timeout ({_ms(timeout)}) is longer than the interval "
                f"({_ms(interval)}) and min-pause is 0"
            )
        findings.append(
            Finding(
                "FO005",
                "warning",
                config_path(_INTERVAL),
                what,
                "when state grows, a checkpoint that takes longer than the interval is immediately followed "
                "by the next (or overlaps it): checkpoints compete for disk and network, back up, and "
                "starve record processing",
                f"set '{_MIN_PAUSE}' (e.g. a third of the interval) and keep '{_MAX_CONCURRENT}: 1'; "
                "on large state start with an interval of 30 s or more",
            )
        )
    return findings


def _unreadable(key: str, detail: str, fix: str) -> Finding:
    return Finding(
        "FO009",
        "error",
        config_path(key),
        f"'{key}' cannot be read: {detail}",
        "Flink refuses to start a job whose configuration it cannot parse",
        fix,
    )


def _ms(value: int) -> str:
    for unit, size in (("h", 3_600_000), ("min", 60_000), ("s", 1_000)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return f"{value} ms"


def _savepoint_dir(job: JobSpec | None, conf: Mapping[str, str]) -> list[Finding]:
    if savepoint_dir(conf) is not None:
        return []
    causes: list[tuple[str, str]] = []
    if job is not None and job.upgrade_mode is UpgradeMode.SAVEPOINT:
        causes.append(("spec.job.upgradeMode", "upgradeMode savepoint"))
    if job is not None and job.savepoint_trigger_nonce is not None:
        causes.append(("spec.job.savepointTriggerNonce", "a savepoint trigger"))
    raw = conf.get(PERIODIC_SAVEPOINT_KEY, "").strip()
    if raw:
        try:
            periodic = parse_duration_ms(raw)
        except ValueError as exc:
            return [_unreadable(PERIODIC_SAVEPOINT_KEY, str(exc), "write a duration such as '1h'")]
        if periodic > 0:
            causes.append((config_path(PERIODIC_SAVEPOINT_KEY), "periodic savepoints"))
    return [
        Finding(
            "FO006",
            "error",
            path,
            f"{what} needs a savepoint directory, and none is configured",
            "the savepoint cannot be written: upgrades fail or fall back to the last checkpoint, and no "
            "portable snapshot exists to roll back to",
            f"set '{SAVEPOINT_DIR_KEYS[0]}' (Flink 2) or '{SAVEPOINT_DIR_KEYS[1]}' to durable storage, "
            "e.g. s3://bucket/savepoints/",
        )
        for path, what in causes
    ]


def _retention(conf: Mapping[str, str]) -> list[Finding]:
    reason = _stateful_reason(conf)
    if reason is None:
        return []
    value = conf.get(_RETENTION, "").strip()
    if value.upper() == "RETAIN_ON_CANCELLATION":
        return []
    state = f"is {value}" if value else "is not set"
    return [
        Finding(
            "FO007",
            "warning",
            config_path(_RETENTION),
            f"the job keeps state ({reason}) but externalized checkpoint retention {state}",
            "cancelling or deleting the job may then delete its checkpoints, leaving nothing to restore from "
            "after an accidental delete or a failed upgrade",
            f"set '{_RETENTION}: RETAIN_ON_CANCELLATION' (and expire old checkpoints with a storage lifecycle rule)",
        )
    ]


def _looks_secret(key: str) -> bool:
    lowered = key.lower()
    if lowered in _NOT_SECRETS:
        return False
    last = lowered.rsplit(".", 1)[-1]
    if last.endswith(_SECRET_META_SUFFIXES):
        return False
    normalized = lowered.replace(".", "-").replace("_", "-")
    return any(word in normalized for word in _SECRET_WORDS)


def _is_literal(value: str) -> bool:
    text = value.strip()
    return bool(text) and not _REFERENCE.match(text) and text.lower() not in ("true", "false")


def _literal_secrets(conf: Mapping[str, str]) -> list[Finding]:
    findings: list[Finding] = []
    for key in sorted(conf):
        value = conf[key]
        if _looks_secret(key):
            literal = _is_literal(value)
        else:
            # Credentials embedded in a larger value, e.g. a Kafka sasl.jaas.config with password="...".
            literal = any(_is_literal(m.group("value")) for m in _INLINE_PASSWORD.finditer(value))
        if not literal:
            continue
        # Never echo the value: findings end up in terminals, CI logs and tickets.
        findings.append(
            Finding(
                "FO008",
                "error",
                config_path(key),
                f"'{key}' holds a literal secret",
                "flinkConfiguration is stored in git, in the cluster's ConfigMap and status, and shown in "
                "the Flink web UI and logs: anyone who can read any of those has the credential",
                "reference the secret instead, resolved when the cluster starts: '${secret:vault:<mount>/<path>#"
                "<key>}', '${secret:env:NAME}' or '${secret:file:/path}' locally, '${secret:k8s:<secret>/<key>}' "
                "on Kubernetes (README: Security, Secrets), or use workload identity (IRSA) for storage access; "
                "then rotate the exposed credential",
            )
        )
    return findings


def _autoscaler(r: Resource) -> list[Finding]:
    """The autoscaler on where it does nothing (a session job, a session cluster), or rescaling by restarts."""
    conf = r.spec.flink_configuration
    if not autoscaler_enabled(conf):
        return []
    key = config_path(AUTOSCALER_PREFIX + "enabled")
    if not isinstance(r, FlinkDeployment) or r.spec.job is None:
        what = "a session job" if not isinstance(r, FlinkDeployment) else "a session cluster"
        return [
            Finding(
                "FO010",
                "warning",
                key,
                f"the autoscaler is on for {what}: flinkops autoscales application deployments only",
                "nothing will ever be rescaled, though the setting says otherwise",
                "run the job as an application FlinkDeployment to autoscale it, or remove the key",
            )
        ]
    if adaptive_scheduler(conf):
        return []
    return [
        Finding(
            "FO010",
            "warning",
            config_path(SCHEDULER_KEY),
            "the autoscaler is on without the adaptive scheduler: every rescale is a savepoint upgrade",
            "each rescale stops the job with a savepoint and starts it again (seconds without processing); the "
            "adaptive scheduler rescales the running job in place",
            f"set '{SCHEDULER_KEY}: adaptive'",
        )
    ]
