"""``describe``: everything known about one resource, for a person deciding what to do next.

The recorded status (lifecycle, job, JobManager, reconciliation, error, conditions), where a deployment's state
lives (checkpoints, savepoints, HA metadata, from the configuration the controller renders), what flinkops adds
to its cluster (plugins, connectors, and where S3 access comes from, never the keys), what its next start would
restore, the runs of its job and what they cost, its recent events, where its logs are, (locally) what each
``/opt/flink/...`` path of its job is on this machine, and (locally) where each of its processes serves Flink's
Prometheus reporter. ``log_files`` lists those logs (local clusters only).

Called by: the CLI (``flinkops describe``, ``flinkops logs``), and Python callers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from flinkops.api.models import FlinkDeployment, FlinkSessionJob
from flinkops.api.plugins import choose_plugins, requested_connectors, uses_s3
from flinkops.api.validation import resource_label
from flinkops.core.cost import DeploymentCost
from flinkops.errors import NotFound
from flinkops.ports import ClusterKey, Event, MetricsEndpoint, ResourceKey
from flinkops.service.config import StateLocations, rendered_config, state_locations
from flinkops.service.cost import cost_of, home_prices
from flinkops.service.resources import lifecycle, resolve
from flinkops.service.target import Target, local_only

__all__ = ["DataPlaneFacts", "Description", "PluginUse", "describe", "log_files"]


@dataclass(frozen=True)
class PluginUse:
    name: str
    reason: str


@dataclass(frozen=True)
class DataPlaneFacts:
    """What flinkops adds to a deployment's cluster from outside Flink's distribution."""

    plugins: tuple[PluginUse, ...]
    #: a warning when the configuration leaves the choice of S3 filesystem open
    ambiguity: str | None
    connectors: tuple[str, ...]
    #: where S3 credentials and the endpoint come from, when the deployment uses S3 (never the keys)
    s3_access: str | None


@dataclass(frozen=True)
class Description:
    resource: FlinkDeployment | FlinkSessionJob
    lifecycle: str
    #: the last reconciled spec is the last stable one
    spec_stable: bool
    #: FlinkDeployments only
    state: StateLocations | None
    #: local FlinkDeployments only
    data_plane: DataPlaneFacts | None
    #: local FlinkDeployments only: the directory of its processes' logs
    log_dir: Path | None
    events: tuple[Event, ...]
    #: local only: what each ``/opt/flink/...`` path of the job is on this machine (and the entry class found)
    local_files: tuple[str, ...] = ()
    #: what its runs cost (``service.cost``, with the price table of the home or the built-in one)
    cost: DeploymentCost | None = None
    #: local FlinkDeployments only: each process's Prometheus reporter endpoint (``metrics.reporter.<name>.*``)
    metrics: tuple[MetricsEndpoint, ...] = ()
    #: local only: the Prometheus service-discovery file that lists every process's endpoint
    discovery_file: Path | None = None

    @property
    def key(self) -> ResourceKey:
        return ResourceKey.of(self.resource)


def _data_plane(target: Target, resource: FlinkDeployment, config: dict[str, str]) -> DataPlaneFacts:
    args = resource.spec.job.args if resource.spec.job is not None else []
    choice = choose_plugins(resource.spec, config, args)
    return DataPlaneFacts(
        plugins=tuple(PluginUse(name, choice.reasons.get(name, "requested")) for name in choice.plugins),
        ambiguity=choice.ambiguity or None,
        connectors=tuple(requested_connectors(resource.spec.flink_configuration)),
        s3_access=target.s3_access(config).describe() if uses_s3(config, args) or choice.plugins else None,
    )


def describe(target: Target, name: str, namespace: str = "default") -> Description:
    """Everything known about the resource ``name`` (of either kind)."""
    resource = resolve(target, name, namespace)
    recon = resource.status.reconciliation_status if resource.status else None
    stable = bool(recon and recon.last_stable_spec is not None and recon.last_stable_spec == recon.last_reconciled_spec)
    state = data_plane = log_dir = None
    metrics: tuple[MetricsEndpoint, ...] = ()
    if isinstance(resource, FlinkDeployment):
        config = rendered_config(target, resource)
        state = state_locations(config)
        if target.local:
            data_plane = _data_plane(target, resource, config)
            log_dir = _cluster_root(target.home / "clusters" / resource.metadata.namespace / resource.metadata.name)
            log_dir = log_dir / "log"
            metrics = tuple(target.metrics_endpoints(ClusterKey(resource.metadata.namespace, resource.metadata.name)))
    events = tuple(target.store().events(ResourceKey.of(resource)))
    lines = tuple(target.local_files([resource], fetch=False).lines(resource_label(resource)))  # none on Kubernetes
    # a broken price table is `flinkops cost`'s error to report, not describe's: the built-in one then
    spent = cost_of(resource, int(target.clock.now() * 1000), home_prices(target.home))
    discovery = target.metrics_discovery_file() if metrics else None
    return Description(
        resource, lifecycle(resource), stable, state, data_plane, log_dir, events, lines, spent, metrics, discovery
    )


def log_files(target: Target, name: str, namespace: str = "default", component: str | None = None) -> list[Path]:
    """The log files of a local deployment's processes (``component``: jobmanager or taskmanager, else both)."""
    local_only(target, "logs")
    files = list(target.log_files(ClusterKey(namespace, name), component))
    if not files:
        raise NotFound(f"no logs for {name} (it has not been deployed, or it was deleted)")
    return files


def _cluster_root(cluster: Path) -> Path:
    """A local cluster's directory: its own, or the ``gen-<N>/`` of a pre-started cluster it promoted (the
    record's ``root``)."""
    try:
        root = json.loads((cluster / "cluster.json").read_text()).get("root")
    except (OSError, ValueError, AttributeError):
        return cluster
    return Path(root) if isinstance(root, str) and root else cluster
