"""How the local runtime sees an HA cluster: the leader's REST URL from ZooKeeper, and the JobManager watch that
releases a dead JobManager's ZooKeeper nodes at once. Uses a real ZooKeeper and hand-written cluster records
(this test process stands in for a live JobManager; no Flink process is started)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flinkops.dev.zookeeper import ZooKeeperServer
from flinkops.errors import RuntimeFailure
from flinkops.flink.distribution import FlinkDistribution
from flinkops.ports import ClusterKey, ClusterRequest
from flinkops.runtimes.local.runtime import LocalRuntime, ProcessRecord, _request_from_record, start_ticks
from flinkops.runtimes.local.zookeeper import ZooKeeperClient

KEY = ClusterKey("test", "ha")
CLUSTER_ID = "/flinkops/test/ha"
PATH = f"/flink{CLUSTER_ID}"


def connection_info(url: str) -> bytes:
    """What Flink writes: a Java stream header, a block with writeUTF(url), then (here omitted) the UUID."""
    utf = len(url).to_bytes(2, "big") + url.encode()
    return b"\xac\xed\x00\x05" + b"\x77" + bytes([len(utf)]) + utf


@pytest.fixture
def clean(zookeeper: ZooKeeperServer) -> Iterator[None]:
    yield
    with ZooKeeperClient(zookeeper.connect_string) as zk:
        zk.delete_tree(PATH)


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


def test_the_rest_url_is_the_leaders_when_it_lives(zookeeper: ZooKeeperServer, tmp_path: Path, clean: None) -> None:
    write_record(
        tmp_path,
        zookeeper,
        [jobmanager(0, 1111, True, tmp_path / "jm0"), jobmanager(1, 2222, False, tmp_path / "jm1")],
    )
    rt = runtime(tmp_path)
    observed = rt.observe(KEY)
    assert observed is not None
    assert (observed.jobmanagers_alive, observed.jobmanagers_expected) == (1, 2)
    assert observed.rest_url is None, "no leader published yet"

    with ZooKeeperClient(zookeeper.connect_string) as zk:
        info = f"{PATH}/leader/rest_server/connection_info"
        zk.create(info, connection_info("http://127.0.0.1:2222"), parents=True)
        dead_leader = rt.observe(KEY)
        assert dead_leader is not None and dead_leader.rest_url is None, "the published leader is dead"
        zk.delete(info)
        zk.create(info, connection_info("http://127.0.0.1:1111"))
        live_leader = rt.observe(KEY)
        assert live_leader is not None and live_leader.rest_url == "http://127.0.0.1:1111"


def test_without_ha_the_rest_url_is_the_live_jobmanagers(tmp_path: Path) -> None:
    write_record(tmp_path, None, [jobmanager(0, 1111, True, tmp_path / "jm0")])
    observed = runtime(tmp_path).observe(KEY)
    assert observed is not None and observed.rest_url == "http://127.0.0.1:1111" and observed.generation == 3


def test_without_a_live_jobmanager_there_is_no_rest_url(tmp_path: Path) -> None:
    write_record(tmp_path, None, [jobmanager(0, 1111, False, tmp_path / "jm0")])
    observed = runtime(tmp_path).observe(KEY)
    assert observed is not None and observed.jobmanagers_alive == 0 and observed.rest_url is None


def test_an_unreachable_zookeeper_means_no_known_leader(tmp_path: Path) -> None:
    gone = ZooKeeperServer(tmp_path / "never-started")
    write_record(tmp_path, gone, [jobmanager(0, 1111, True, tmp_path / "jm0")])
    observed = runtime(tmp_path).observe(KEY)
    assert observed is not None and observed.jobmanagers_alive == 1 and observed.rest_url is None


def test_the_watch_releases_a_dead_jobmanagers_latch_while_its_session_still_lives(
    zookeeper: ZooKeeperServer, tmp_path: Path, clean: None
) -> None:
    dead_session = ZooKeeperClient(zookeeper.connect_string)
    standby_session = ZooKeeperClient(zookeeper.connect_string)
    dead_session.open()
    standby_session.open()
    rt = runtime(tmp_path, watch=True)
    try:
        latch = f"{PATH}/leader/latch"
        leader_node = dead_session.create(f"{latch}/_c_a-latch-", ephemeral=True, sequential=True, parents=True)
        standby_node = standby_session.create(f"{latch}/_c_b-latch-", ephemeral=True, sequential=True)
        assert dead_session.session_id is not None
        (tmp_path / "jm0").mkdir()
        (tmp_path / "jm0" / "jobmanager.out").write_text(
            "INFO ClientCnxn [] - Session establishment complete on server localhost/127.0.0.1:1, "
            f"session id = 0x{dead_session.session_id:x}, negotiated timeout = 6000\n"
        )
        write_record(
            tmp_path,
            zookeeper,
            [jobmanager(0, 1111, False, tmp_path / "jm0"), jobmanager(1, 2222, True, tmp_path / "jm1")],
        )
        rt.observe(KEY)  # an HA cluster: starts the watch

        deadline = time.monotonic() + 10
        with ZooKeeperClient(zookeeper.connect_string) as zk:
            while zk.exists(leader_node) is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert zk.exists(leader_node) is None, "the dead leader's latch node must be released"
            assert zk.exists(standby_node) is not None, "a live JobManager's node is never touched"
    finally:
        rt.close()
        dead_session.close()
        standby_session.close()


def test_a_record_restores_the_application_a_standby_must_run(tmp_path: Path) -> None:
    record = {
        "generation": 2,
        "jobmanager_replicas": 2,
        "taskmanager_replicas": 3,
        "working_dir": str(tmp_path),
        "application": {
            "entry_class": "a.B",
            "args": ["--x", "1"],
            "job_id": "f" * 32,
            "jar_paths": ["/jars/job.jar"],
            "python": False,
        },
    }
    request = _request_from_record(KEY, record)
    assert request.application is not None
    assert (request.application.entry_class, request.application.args) == ("a.B", ("--x", "1"))
    assert request.application.job_id == "f" * 32 and request.application.jar_paths == (Path("/jars/job.jar"),)
    assert (request.jobmanager_replicas, request.taskmanager_replicas, request.working_dir) == (2, 3, tmp_path)


def test_records_written_before_per_process_ports_still_load() -> None:
    old = {"role": "taskmanager", "index": 0, "pid": 1, "start_ticks": 2, "log_dir": "/x"}
    proc = ProcessRecord(**old)
    assert (proc.rest_port, proc.rpc_port, proc.rest_url) == (0, 0, None)


def test_zookeeper_ha_without_a_quorum_is_refused_before_anything_starts(tmp_path: Path) -> None:
    request = ClusterRequest(KEY, 1, {"high-availability.type": "zookeeper"}, jobmanager_replicas=2)
    with pytest.raises(RuntimeFailure, match=r"high-availability\.zookeeper\.quorum"):
        runtime(tmp_path).deploy(request)
    assert not (tmp_path / "clusters" / KEY.namespace / KEY.name / "cluster.json").exists()
