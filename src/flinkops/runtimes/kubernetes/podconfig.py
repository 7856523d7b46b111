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
  (:func:`metrics_ports`), and the pod annotations a Prometheus server or a Datadog Agent discovers it by
  (:func:`scrape_annotations`: ``prometheus.io/*`` by default, the Agent's OpenMetrics check on request with the
  flinkops key ``flinkops.metrics.scrape-annotations``).

Secrets are only ever *referenced* by name: the operator never reads a Secret, and no value reaches a
ConfigMap, a manifest or the status.

Called by: ``pods.flink_pod`` (JobManager and standalone TaskManager pods) and ``pods.native_taskmanager_template``
(metrics ports and annotations only: Flink applies the other keys to the TaskManager pods it creates).
Invariants: pure; a value Flink would reject raises ``ValueError`` naming the key, which the runtime reports as a
failed deploy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flinkops.api.plugins import MAIN_CONTAINER
from flinkops.api.reporters import (
    PROMETHEUS_DEFAULT_PORT,
    PROMETHEUS_FACTORY,
    SCRAPE_ANNOTATIONS_KEY,
    parse_ports,
    prometheus_reporters,
    scrape_kinds,
)
from flinkops.runtimes.kubernetes.names import Component

__all__ = [
    "PROMETHEUS_FACTORY",
    "SECRETS_KEY",
    "SECRET_ENV_KEY",
    "metrics_ports",
    "scrape_annotations",
    "secret_env",
    "secret_mounts",
    "tolerations",
]

SECRETS_KEY = "kubernetes.secrets"
SECRET_ENV_KEY = "kubernetes.env.secretKeyRef"
_TOLERATION_FIELDS = {"key": "key", "operator": "operator", "value": "value", "effect": "effect"}


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


def metrics_ports(config: Mapping[str, str]) -> list[dict[str, Any]]:
    """Container ports of the Prometheus reporters the configuration enables (``metrics.reporters`` limits
    which of the configured reporters are on, as in Flink): the first port of each one's setting."""
    ports: list[dict[str, Any]] = []
    for reporter in prometheus_reporters(config):
        port_key = reporter.option("port")
        port = PROMETHEUS_DEFAULT_PORT
        if str(config.get(port_key, "")).strip():
            try:
                port = parse_ports(config[port_key])[0][0]
            except ValueError as exc:
                raise ValueError(f"'{port_key}': {exc}") from None
        if any(p["containerPort"] == port for p in ports):
            continue
        label = "metrics" if not ports else f"metrics-{len(ports) + 1}"
        ports.append({"name": label, "containerPort": port, "protocol": "TCP"})
    return ports


#: The Datadog Agent's autodiscovery prefix for the main container's checks (a user's own wins, see below).
_DATADOG_CONTAINER = f"ad.datadoghq.com/{MAIN_CONTAINER}."


def scrape_annotations(
    config: Mapping[str, str], own: Mapping[str, str], existing: Mapping[str, str]
) -> dict[str, str]:
    """Pod annotations that point a Prometheus server or a Datadog Agent at the first Prometheus reporter's port.

    ``config`` is the rendered Flink configuration, ``own`` the spec's ``flinkConfiguration`` (where the flinkops
    key :data:`SCRAPE_ANNOTATIONS_KEY` is: ``prometheus`` by default, ``datadog``, both, or ``none``), ``existing``
    the annotations the pod has from the user (they win: the caller puts them over these). Prometheus: the
    ``prometheus.io/scrape``, ``/port`` and ``/path`` convention that Prometheus' Kubernetes example configuration
    (and Datadog's ``prometheusScrape``) read. Datadog: an OpenMetrics check on the main container (the Agent's
    v2 ``checks`` annotation), left out when the user's annotations already configure a check there (seed 004
    writes its own, with a metric filter, in the v1 form).
    """
    ports = metrics_ports(config)
    if not ports:
        return {}
    try:
        kinds = scrape_kinds(own)
    except ValueError as exc:
        raise ValueError(f"'{SCRAPE_ANNOTATIONS_KEY}': {exc}") from None
    port = ports[0]["containerPort"]
    annotations: dict[str, str] = {}
    if "prometheus" in kinds:
        annotations.update(
            {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": "/metrics"}
        )
    if "datadog" in kinds and not any(k.startswith(_DATADOG_CONTAINER) for k in existing):
        instance = {"openmetrics_endpoint": f"http://%%host%%:{port}/metrics", "namespace": "flink", "metrics": [".*"]}
        check = {"openmetrics": {"init_config": {}, "instances": [instance]}}
        annotations[f"{_DATADOG_CONTAINER}checks"] = json.dumps(check, separators=(",", ":"))
    return annotations
