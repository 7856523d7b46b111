"""Flink's own metric reporters in a configuration: which are on, which plugin serves each, and their ports.

Flink configures a reporter ``<name>`` with ``metrics.reporter.<name>.factory.class`` (or the pre-1.16
``.class``) and its options under ``metrics.reporter.<name>.*``; ``metrics.reporters`` (a comma-separated list of
names), when set, limits which configured reporters are on. The two the seeds use:

* the Prometheus reporter (``prom`` in the seeds): an HTTP endpoint serving ``/metrics`` on
  ``metrics.reporter.<name>.port``, Flink's default 9249. The port may be one port (``9999``), a range
  (``9250-9260``) or a comma-separated list of both (Flink's ``PortRange``): Flink binds the first free one;
* Datadog's HTTP reporter (``dghttp``): pushes to Datadog's API with ``metrics.reporter.<name>.apikey``, a key
  Flink masks in its logs (so a ``${secret:...}`` reference may stand there, ``api.secrets``).

Each reporter ships as a plugin directory of Flink's distribution (``plugins/metrics-prometheus``, ...): Flink
loads it only from there. :data:`REPORTER_PLUGINS` maps each factory to that directory, so the local target can
say which plugin a configuration needs before it starts a process.

Who calls: validation (a port Flink would not read is exit 2 with the key), the Kubernetes pod builders (the
container port and scrape annotations), the local runtime (a definite port per process), the local provisioner
(the plugin must be in the distribution). Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "DATADOG_FACTORY",
    "LOOPBACK_FACTORY",
    "PROMETHEUS_DEFAULT_PORT",
    "PROMETHEUS_FACTORY",
    "REPORTER_PLUGINS",
    "SCRAPE_ANNOTATIONS_KEY",
    "SCRAPE_KINDS",
    "Reporter",
    "parse_ports",
    "prometheus_reporters",
    "reporter_problems",
    "reporters",
    "scrape_kinds",
]

PROMETHEUS_FACTORY = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
DATADOG_FACTORY = "org.apache.flink.metrics.datadog.DatadogHttpReporterFactory"
#: flinkops' reporter for local processes (``flink/java/loopback-prometheus``): Flink's Prometheus reporter, same
#: registry and metric names, serving on 127.0.0.1 only; the local target configures it in place of Flink's factory.
LOOPBACK_FACTORY = "org.apache.flink.metrics.prometheus.FlinkopsLoopbackReporterFactory"
#: Flink's default port of the Prometheus reporter.
PROMETHEUS_DEFAULT_PORT = 9249
_PROMETHEUS_CLASS = "org.apache.flink.metrics.prometheus.PrometheusReporter"  # before factories (Flink <= 1.15)
_PROMETHEUS = frozenset({PROMETHEUS_FACTORY, _PROMETHEUS_CLASS, LOOPBACK_FACTORY})

#: The plugin directory of Flink's distribution that holds each reporter (factory or pre-factory class name).
REPORTER_PLUGINS: Mapping[str, str] = {
    PROMETHEUS_FACTORY: "metrics-prometheus",
    _PROMETHEUS_CLASS: "metrics-prometheus",
    LOOPBACK_FACTORY: "metrics-prometheus",
    "org.apache.flink.metrics.prometheus.PrometheusPushGatewayReporterFactory": "metrics-prometheus",
    DATADOG_FACTORY: "metrics-datadog",
    "org.apache.flink.metrics.datadog.DatadogHttpReporter": "metrics-datadog",
    "org.apache.flink.metrics.jmx.JMXReporterFactory": "metrics-jmx",
    "org.apache.flink.metrics.slf4j.Slf4jReporterFactory": "metrics-slf4j",
    "org.apache.flink.metrics.statsd.StatsDReporterFactory": "metrics-statsd",
    "org.apache.flink.metrics.graphite.GraphiteReporterFactory": "metrics-graphite",
    "org.apache.flink.metrics.influxdb.InfluxdbReporterFactory": "metrics-influx",
    "org.apache.flink.metrics.otel.OpenTelemetryMetricReporterFactory": "metrics-otel",
}

#: flinkops key (never passed to Flink): which agents' pod annotations the Kubernetes renderer writes for the
#: Prometheus reporter, a comma-separated list of :data:`SCRAPE_KINDS` (default ``prometheus``; ``none``: none).
SCRAPE_ANNOTATIONS_KEY = "flinkops.metrics.scrape-annotations"
SCRAPE_KINDS = ("prometheus", "datadog", "none")

_REPORTER_KEY = re.compile(r"metrics\.reporter\.([^.]+)\.(factory\.class|class)")
_PORT_PART = re.compile(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?")


@dataclass(frozen=True)
class Reporter:
    """One configured, enabled reporter: its name (``prom``), factory (or class) and the key that named it."""

    name: str
    factory: str
    key: str

    @property
    def prometheus(self) -> bool:
        return self.factory in _PROMETHEUS

    @property
    def plugin(self) -> str | None:
        """The distribution's plugin directory that serves it, when flinkops knows the factory."""
        return REPORTER_PLUGINS.get(self.factory)

    def option(self, option: str) -> str:
        """The key of one of its options: ``metrics.reporter.<name>.<option>``."""
        return f"metrics.reporter.{self.name}.{option}"


def reporters(config: Mapping[str, str]) -> list[Reporter]:
    """The reporters ``config`` configures and enables, by name (``factory.class`` wins over ``class``)."""
    enabled = {r.strip() for r in config.get("metrics.reporters", "").split(",") if r.strip()}
    found: dict[str, Reporter] = {}
    for key in sorted(config):
        match = _REPORTER_KEY.fullmatch(key)
        value = str(config[key]).strip()
        if match is None or not value or (enabled and match.group(1) not in enabled):
            continue
        name = match.group(1)
        if name not in found or match.group(2) == "factory.class":
            found[name] = Reporter(name, value, key)
    return [found[name] for name in sorted(found)]


def prometheus_reporters(config: Mapping[str, str]) -> list[Reporter]:
    """The enabled Prometheus reporters (the ones with an HTTP endpoint to scrape), by name."""
    return [r for r in reporters(config) if r.prometheus]


def parse_ports(value: str) -> list[tuple[int, int]]:
    """A port setting as Flink reads it (``9999``, ``9250-9260``, ``9250-9252,9300``): inclusive ranges in order.
    ``ValueError`` saying what is wrong otherwise."""
    ranges: list[tuple[int, int]] = []
    for part in value.split(","):
        match = _PORT_PART.fullmatch(part)
        if match is None:
            raise ValueError(f"{value.strip()[:40]!r} is not a port, a range such as 9250-9260, or a list of them")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if not 0 < low <= high < 65536:
            raise ValueError(f"{part.strip()!r} is not a port range from 1 to 65535 (low to high)")
        ranges.append((low, high))
    return ranges


def scrape_kinds(config: Mapping[str, str]) -> list[str]:
    """The agents :data:`SCRAPE_ANNOTATIONS_KEY` asks annotations for (``ValueError`` naming an unknown one)."""
    value = str(config.get(SCRAPE_ANNOTATIONS_KEY, "")).strip() or "prometheus"
    kinds = list(dict.fromkeys(k.strip().lower() for k in value.split(",") if k.strip()))
    unknown = [k for k in kinds if k not in SCRAPE_KINDS]
    if unknown:
        raise ValueError(f"unknown agent {unknown[0]!r}: expected a comma-separated list of {', '.join(SCRAPE_KINDS)}")
    return [k for k in kinds if k != "none"]


def reporter_problems(config: Mapping[str, str]) -> list[tuple[str, str]]:
    """(key, message) for each enabled Prometheus reporter whose port Flink could not read, and for a
    :data:`SCRAPE_ANNOTATIONS_KEY` that names an agent flinkops does not know."""
    found: list[tuple[str, str]] = []
    try:
        scrape_kinds(config)
    except ValueError as exc:
        found.append((SCRAPE_ANNOTATIONS_KEY, str(exc)))
    for reporter in prometheus_reporters(config):
        key = reporter.option("port")
        value = config.get(key, "")
        if str(value).strip():
            try:
                parse_ports(str(value))
            except ValueError as exc:
                found.append((key, str(exc)))
    return found
