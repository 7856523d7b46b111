"""How the local runtime sees a cluster without a reachable ZooKeeper: the REST URL of the live JobManager, none
without one or with an unreachable ZooKeeper, what a record restores, and HA refused without a quorum. Cluster
records are hand-written (``support.ha``); the leader's REST URL from a real ZooKeeper and the JobManager watch
are tests/integration/test_local_runtime_ha_live.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from flinkops.dev.zookeeper import ZooKeeperServer
from flinkops.errors import RuntimeFailure
from flinkops.ports import ClusterRequest
from flinkops.runtimes.local.records import ProcessRecord, request_from_record
from support.ha import KEY, jobmanager, runtime, write_record


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
    request = request_from_record(KEY, record)
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
