"""What the HA tests write by hand: Flink's ZooKeeper leader information, and local cluster records of
JobManagers (this test process stands in for a live one; no Flink process is started).

Used by tests/unit/test_zookeeper.py and tests/integration/test_zookeeper_live.py (``CONNECTION_INFO``), and by
tests/unit/test_local_runtime_ha.py and tests/integration/test_local_runtime_ha_live.py (the records). Records
are written under ``<home>/clusters/test/ha`` exactly as the local runtime lays them out.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flinkops.dev.zookeeper import ZooKeeperServer
from flinkops.flink.distribution import FlinkDistribution
from flinkops.ports import ClusterKey
from flinkops.runtimes.local.runtime import LocalRuntime, ProcessRecord, start_ticks

__all__ = ["CLUSTER_ID", "CONNECTION_INFO", "KEY", "PATH", "jobmanager", "runtime", "write_record"]

# What Flink 2.2 wrote to leader/rest_server/connection_info in a real run: writeUTF(address), then the UUID.
CONNECTION_INFO = (
    b"\xac\xed\x00\x05w\x18\x00\x16http://127.0.0.1:58079sr\x00\x0ejava.util.UUID\xbc\x99\x03\xf7\x98m\x85/"
    b"\x02\x00\x02J\x00\x0cleastSigBitsJ\x00\x0bmostSigBitsxp\xb2\x1c\xd3d?\x01\xfa*\xf3\x9cm\x19\xcc]Od"
)

KEY = ClusterKey("test", "ha")
CLUSTER_ID = "/flinkops/test/ha"
PATH = f"/flink{CLUSTER_ID}"


def write_record(home: Path, zookeeper: ZooKeeperServer | None, jobmanagers: list[ProcessRecord]) -> None:
    root = home / "clusters" / KEY.namespace / KEY.name
    root.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "generation": 3,
        "rest_url": "http://127.0.0.1:1111",
        "job_id": "j",
        "started_at": 1.0,
        "ha": None
        if zookeeper is None
        else {"quorum": zookeeper.connect_string, "cluster_id": CLUSTER_ID, "path": PATH, "storage_dir": None},
        "processes": [vars(p) for p in jobmanagers],
    }
    (root / "cluster.json").write_text(json.dumps(record))


def jobmanager(index: int, port: int, alive: bool, log_dir: Path) -> ProcessRecord:
    """A JobManager record: this very process when ``alive``, else the same pid with a start time it never had."""
    ticks = start_ticks(os.getpid())
    assert ticks is not None
    log_dir.mkdir(parents=True, exist_ok=True)
    return ProcessRecord("jobmanager", index, os.getpid(), ticks if alive else ticks + 1, str(log_dir), port, port + 1)


def runtime(home: Path, watch: bool = False) -> LocalRuntime:
    return LocalRuntime(home, FlinkDistribution(home=home, version="2.2.1", java="java"), watch_jobmanagers=watch)
