"""What Flink's configuration says about its pods, in Kubernetes terms: tolerations, Secrets, metrics ports.

Flink's native integration reads these keys and decorates the pods it creates itself; flinkops creates the
JobManager pods (and, in standalone mode, the TaskManager pods), so it reads the same keys the same way:

* ``kubernetes.jobmanager.tolerations`` / ``kubernetes.taskmanager.tolerations``: ``key:k,operator:Equal,
  value:v,effect:NoSchedule;key:k2,operator:Exists`` (:func:`tolerations`), next to the pod template's own;
* ``kubernetes.secrets``: ``secret:/mount/path,...``, each Secret mounted read-only as volume
  ``<secret>-volume`` (Flink's name) (:func:`secret_mounts`);
* ``kubernetes.env.secretKeyRef``: ``env:NAME,secret:secret,key:key;...``, each an environment variable whose
  value the kubelet reads from the Secret (:func:`secret_env`);
* ``metrics.reporter.<name>.factory.class`` naming Flink's Prometheus reporter: its ``port`` (Flink's default
  9249; the first of a range) as the container port ``metrics`` (``metrics-2``... for more reporters), so the
  scrape target a Prometheus or Datadog annotation points at (the seeds use 9999) is declared on the pod
  (:func:`metrics_ports`).

Secrets are only ever *referenced* by name: the operator never reads a Secret, and no value reaches a
ConfigMap, a manifest or the status.

Called by: ``pods.flink_pod`` (JobManager and standalone TaskManager pods) and ``pods.native_taskmanager_template``
(metrics ports only: Flink applies the other keys to the TaskManager pods it creates). Invariants: pure; a value
Flink would reject raises ``ValueError`` naming the key, which the runtime reports as a failed deploy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flinkops.runtimes.kubernetes.names import Component

__all__ = [
    "PROMETHEUS_FACTORY",
    "SECRETS_KEY",
    "SECRET_ENV_KEY",
    "metrics_ports",
    "secret_env",
    "secret_mounts",
    "tolerations",
]

SECRETS_KEY = "kubernetes.secrets"
SECRET_ENV_KEY = "kubernetes.env.secretKeyRef"
PROMETHEUS_FACTORY = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
_PROMETHEUS_CLASS = "org.apache.flink.metrics.prometheus.PrometheusReporter"  # before factories (Flink <= 1.15)
_PROMETHEUS_DEFAULT_PORT = 9249
_TOLERATION_FIELDS = {"key": "key", "operator": "operator", "value": "value", "effect": "effect"}
_REPORTER = re.compile(r"metrics\.reporter\.([^.]+)\.(factory\.class|class)")


def _pairs(item: str, key: str) -> dict[str, str]:
    """``a:1,b:2`` as a mapping; a part without ``:`` is an error (Flink refuses it too)."""
    result: dict[str, str] = {}
    for part in item.split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"'{key}': {part.strip()!r} is not a 'name:value' pair")
        result[name.strip()] = value.strip()
    return result


def _items(value: str | None) -> list[str]:
    return [item for item in (value or "").split(";") if item.strip()]


def tolerations(config: Mapping[str, str], component: Component) -> list[dict[str, Any]]:
    """The component's tolerations from ``kubernetes.<component>.tolerations``."""
    key = f"kubernetes.{component}.tolerations"
    result: list[dict[str, Any]] = []
    for item in _items(config.get(key)):
        toleration: dict[str, Any] = {}
        for name, value in _pairs(item, key).items():
            lowered = name.lower()
            if lowered == "tolerationseconds":
                try:
                    toleration["tolerationSeconds"] = int(value)
                except ValueError as exc:
                    raise ValueError(f"'{key}': tolerationSeconds {value!r} is not a number") from exc
            elif lowered in _TOLERATION_FIELDS:
                toleration[_TOLERATION_FIELDS[lowered]] = value
            else:
                raise ValueError(f"'{key}': unknown toleration field {name!r}")
        result.append(toleration)
    return result


def _volume_name(secret: str) -> str:
    """Flink's ``<secret>-volume``, made a valid volume name (a Secret name may contain dots, a volume's not)."""
    return f"{secret.replace('.', '-')}-volume"[:63]


def secret_mounts(config: Mapping[str, str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, volume mounts) of the Secrets ``kubernetes.secrets`` names."""
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    for secret, path in _pairs(config.get(SECRETS_KEY, ""), SECRETS_KEY).items():
        if not path.startswith("/"):
            raise ValueError(f"'{SECRETS_KEY}': the mount path of Secret {secret!r} must be absolute, got {path!r}")
        name = _volume_name(secret)
        volumes.append({"name": name, "secret": {"secretName": secret}})
        mounts.append({"name": name, "mountPath": path, "readOnly": True})
    return volumes, mounts


def secret_env(config: Mapping[str, str]) -> list[dict[str, Any]]:
    """Environment variables read from Secret keys, as ``kubernetes.env.secretKeyRef`` lists them."""
    result = []
    for item in _items(config.get(SECRET_ENV_KEY)):
        fields = _pairs(item, SECRET_ENV_KEY)
        missing = [f for f in ("env", "secret", "key") if not fields.get(f)]
        if missing:
            raise ValueError(f"'{SECRET_ENV_KEY}': {item.strip()!r} lacks {', '.join(missing)}")
        ref = {"name": fields["secret"], "key": fields["key"]}
        result.append({"name": fields["env"], "valueFrom": {"secretKeyRef": ref}})
    return result


def _first_port(value: str, key: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*\d+\s*)?", value)
    if not match or not 0 < int(match.group(1)) < 65536:
        raise ValueError(f"'{key}': {value!r} is not a port or a port range")
    return int(match.group(1))


def metrics_ports(config: Mapping[str, str]) -> list[dict[str, Any]]:
    """Container ports of the Prometheus reporters the configuration enables (``metrics.reporters`` limits
    which of the configured reporters are on, as in Flink)."""
    enabled = {r.strip() for r in config.get("metrics.reporters", "").split(",") if r.strip()}
    reporters = []
    for key, value in sorted(config.items()):
        match = _REPORTER.fullmatch(key)
        prometheus = match is not None and value.strip() in (PROMETHEUS_FACTORY, _PROMETHEUS_CLASS)
        if match is not None and prometheus and (not enabled or match.group(1) in enabled):
            reporters.append(match.group(1))
    ports: list[dict[str, Any]] = []
    for name in dict.fromkeys(reporters):
        port_key = f"metrics.reporter.{name}.port"
        port = _first_port(config[port_key], port_key) if config.get(port_key) else _PROMETHEUS_DEFAULT_PORT
        if any(p["containerPort"] == port for p in ports):
            continue
        label = "metrics" if not ports else f"metrics-{len(ports) + 1}"
        ports.append({"name": label, "containerPort": port, "protocol": "TCP"})
    return ports
