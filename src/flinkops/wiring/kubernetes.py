"""The Kubernetes target: a controller on the API server's store and runtime, its clusters in pods.

Called by: the operator (``wiring.operator``), once per worker shard.
"""

from __future__ import annotations

from pathlib import Path

from flinkops.controller import Controller
from flinkops.controller.canary import CanaryMonitor
from flinkops.controller.executor import exiting_failpoint
from flinkops.flink.pool import RestClientPool
from flinkops.ports import Clock, ClusterRuntime, ResourceStore
from flinkops.provisioning.pods import PodProvisioner
from flinkops.wiring.figures import autoscaler_figures

__all__ = ["build_controller"]


def build_controller(
    store: ResourceStore,
    runtime: ClusterRuntime,
    clock: Clock,
    work_dir: Path,
    *,
    min_requeue: float = 0.0,
    provisioner: PodProvisioner | None = None,
    canaries: CanaryMonitor | None = None,
) -> Controller:
    """``work_dir``: where session-job jars are downloaded before their upload; ``min_requeue``: the shortest
    wait between a resource's passes while no snapshot is in flight (``Controller._requeue``); ``provisioner``:
    one to share with other controllers (its S3 clients), else a new one; ``canaries``: the canary monitor the
    operator's shards share."""
    return Controller(
        store=store,
        runtime=runtime,
        flink=RestClientPool(),  # one kept connection per JobManager, not a new client per pass
        provisioner=provisioner or PodProvisioner(work_dir),
        clock=clock,
        failpoint=exiting_failpoint(),
        min_requeue=min_requeue,
        canaries=canaries,
        figures=autoscaler_figures(),
    )
