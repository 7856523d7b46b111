"""The Flink configuration a deployment runs with, and the storage its checkpoints and savepoints live in.

``rendered_config`` is the controller's own rendering (``flinkops.flink.config``) with the target's inputs (a
default state directory under the home locally, none on Kubernetes), so "where does this job's state live" has
one answer everywhere. ``snapshot_store`` is that storage as the deployment reaches it (local paths, or S3 with
the deployment's endpoint and credentials).

Called by: the other service modules (apply's restore-path preflight, describe, snapshots, restore).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flinkops.api.flinkconf import checkpoint_dir, savepoint_dir
from flinkops.api.models import FlinkDeployment, FlinkSessionJob
from flinkops.flink.config import HA_STORAGE_DIR, render_flink_config
from flinkops.ports import SnapshotStore
from flinkops.service.target import Target

__all__ = ["StateLocations", "rendered_config", "snapshot_store", "state_locations"]


@dataclass(frozen=True)
class StateLocations:
    """Where a deployment keeps its state; None where nothing is configured (possible on Kubernetes only)."""

    checkpoints: str | None
    savepoints: str | None
    ha_metadata: str | None


def rendered_config(target: Target, deployment: FlinkDeployment) -> dict[str, str]:
    """The Flink configuration the controller renders for ``deployment`` on ``target``."""
    return render_flink_config(deployment.spec, target.render_inputs(deployment))


def state_locations(config: Mapping[str, str]) -> StateLocations:
    return StateLocations(checkpoint_dir(config), savepoint_dir(config), config.get(HA_STORAGE_DIR) or None)


def snapshot_store(
    target: Target, resource: FlinkDeployment | FlinkSessionJob, config: Mapping[str, str] | None = None
) -> SnapshotStore:
    """Checkpoint and savepoint storage as ``resource`` reaches it; ``config`` is its rendered configuration
    when the caller has it already."""
    if config is None:
        if isinstance(resource, FlinkDeployment):
            config = rendered_config(target, resource)
        else:
            config = resource.spec.flink_configuration
    return target.snapshot_store(config)
