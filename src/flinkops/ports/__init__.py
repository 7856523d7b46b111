"""The interfaces the controller talks to, and the plain values that cross them.

The controller depends on these protocols only; adapters implement them and ``flinkops.wiring`` chooses which:

* ``ResourceStore`` (``resources``): resources and status, conditional status writes, events;
* ``ClusterRuntime`` (``clusters``): deploy, observe, scale and delete a Flink cluster;
* ``FlinkApi`` and ``FlinkApiFactory`` (``flink``): the Flink REST calls the controller makes;
* ``SnapshotStore`` (``snapshots``): checkpoints and savepoints in storage;
* ``Provisioner`` (``provisioning``): what a target does before a cluster starts (jars, plugins, environment);
* ``Clock`` (``clock``): time, virtual in tests.

Values crossing a port are frozen dataclasses so a caller can never mutate what an implementation keeps.
Tests substitute the small in-memory fakes in ``tests/fakes``.

Invariant: nothing here performs I/O; implementations translate their own failures into ``flinkops.errors``.
"""

from typing import TYPE_CHECKING, Any

from flinkops.ports.clock import Clock
from flinkops.ports.clusters import (
    ApplicationJob,
    ClusterKey,
    ClusterObservation,
    ClusterRequest,
    ClusterRuntime,
    MetricsEndpoint,
)
from flinkops.ports.provisioning import ClusterExtras, Provisioner, RenderInputs
from flinkops.ports.resources import Event, ResourceKey, ResourceStore
from flinkops.ports.snapshots import Snapshot, SnapshotKind, SnapshotStore

if TYPE_CHECKING:
    from flinkops.ports.flink import FlinkApi, FlinkApiFactory
    from flinkops.ports.resources import Resource

__all__ = [
    "ApplicationJob",
    "Clock",
    "ClusterExtras",
    "ClusterKey",
    "ClusterObservation",
    "ClusterRequest",
    "ClusterRuntime",
    "Event",
    "FlinkApi",
    "FlinkApiFactory",
    "MetricsEndpoint",
    "Provisioner",
    "RenderInputs",
    "Resource",
    "ResourceKey",
    "ResourceStore",
    "Snapshot",
    "SnapshotKind",
    "SnapshotStore",
]


def __getattr__(name: str) -> Any:
    if name == "Resource":  # loads the models: see ports.resources
        from flinkops.ports import resources

        return resources.Resource
    if name in ("FlinkApi", "FlinkApiFactory"):  # the REST value types load when the controller asks for them
        from flinkops.ports import flink

        return getattr(flink, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
