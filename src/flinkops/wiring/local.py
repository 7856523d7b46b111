"""The local target: a controller whose clusters are processes on this machine and whose store is SQLite.

Called by: the daemon (``flinkops controller run``), the service layer (``flinkops plan`` previews and storage
access) and tests that run a real controller in-process.
"""

from __future__ import annotations

import sys
from pathlib import Path

from flinkops.clock import SystemClock
from flinkops.controller import Controller
from flinkops.controller.executor import exiting_failpoint
from flinkops.flink.distribution import find_distribution
from flinkops.flink.pool import RestClientPool
from flinkops.ports import Clock, ResourceStore, SnapshotStore
from flinkops.provisioning.local import DataPlane, LocalProvisioner
from flinkops.runtimes.local.runtime import LocalRuntime
from flinkops.s3 import DevS3
from flinkops.settings import store_path
from flinkops.stores.sqlite import SqliteStore
from flinkops.wiring.figures import autoscaler_figures

__all__ = ["build_controller", "data_plane", "open_store", "snapshot_store"]


def open_store(home: Path) -> SqliteStore:
    return SqliteStore(store_path(home))


def _dev_s3(home: Path) -> DevS3 | None:
    """The S3 server ``flinkops dev`` runs for this home, if any (read from its record; nothing is started)."""
    from flinkops.dev.services import DevServices

    return DevServices(home).s3_settings()


def data_plane(home: Path) -> DataPlane:
    """Storage and S3 access as a deployment of this home sees them (the dev S3 server included)."""
    return DataPlane(home, dev_s3=lambda: _dev_s3(home))


def snapshot_store(home: Path, config: dict[str, str]) -> SnapshotStore:
    """Checkpoint and savepoint storage as a deployment of this home with ``config`` reaches it."""
    return data_plane(home).snapshot_store(config)


def build_controller(home: Path, clock: Clock | None = None) -> tuple[Controller, ResourceStore]:
    """The local controller of ``home`` and its store. ``FLINKOPS_FAILPOINT`` arms the test failpoints."""
    store = open_store(home)
    dist = find_distribution()
    provisioner = LocalProvisioner(home, dist, sys.executable, dev_s3=lambda: _dev_s3(home))
    controller = Controller(
        store=store,
        runtime=LocalRuntime(home, dist),
        flink=RestClientPool(),  # one kept connection per JobManager, not a new client per pass
        provisioner=provisioner,
        clock=clock or SystemClock(),
        failpoint=exiting_failpoint(),
        figures=autoscaler_figures(),
    )
    return controller, store
