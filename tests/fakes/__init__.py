"""Small in-memory fakes of every port, a virtual clock, and a world that wires them to a real controller.

* ``ManualClock`` (``clock``): virtual time;
* ``FakeStore`` (``store``): the ``ResourceStore``, with SQLite's semantics (checked by a contract test);
* ``FakeFlink`` (``flink``): Flink's REST API and the clusters behind it, with fault knobs;
* ``FakeRuntime`` (``runtime``): the ``ClusterRuntime``, starting jobs in ``FakeFlink``;
* ``FakeSnapshots`` (``snapshots``): checkpoint and savepoint storage, the ``SnapshotStore``;
* ``FakeProvisioner`` (``provisioning``): the ``Provisioner``, handing out ``FakeSnapshots``;
* ``World`` (``world``): all of the above around one ``Controller``, driven pass by pass;
* ``specs``: resources written the way users write them.

Importable as ``fakes`` from tests (``tests/conftest.py`` puts ``tests/`` on ``sys.path``).
"""

from fakes.clock import ManualClock
from fakes.flink import RATE, FakeFlink, FakeFlinkClient, FakeJob, JobScript
from fakes.provisioning import FakeProvisioner
from fakes.runtime import FakeCluster, FakeProcess, FakeRuntime
from fakes.snapshots import FakeSnapshots, StoredSnapshot
from fakes.store import FakeStore
from fakes.world import ControllerCrashed, Crash, World

__all__ = [
    "RATE",
    "ControllerCrashed",
    "Crash",
    "FakeCluster",
    "FakeFlink",
    "FakeFlinkClient",
    "FakeJob",
    "FakeProcess",
    "FakeProvisioner",
    "FakeRuntime",
    "FakeSnapshots",
    "FakeStore",
    "JobScript",
    "ManualClock",
    "StoredSnapshot",
    "World",
]
