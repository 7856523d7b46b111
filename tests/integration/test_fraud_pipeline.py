"""The fraud-scoring pipeline on a real Kafka broker and a real S3 server, exactly once while things break.

One deployment of ``examples/fraud-scoring/fraud-scoring-kafka.yaml`` (RocksDB with incremental checkpoints,
checkpoints/savepoints/HA data on a versioned S3 bucket, two JobManagers on ZooKeeper, a transactional Kafka
sink) lives through, in order: steady state, a SIGKILL of the leading JobManager, a savepoint upgrade to
model v2, the S3 server stopped for 30 s while checkpoints run, and a Kafka broker restart. A producer writes
card authorizations the whole time. At the end a ``read_committed`` consumer must see every authorization
scored exactly once, each with the velocity features an independent computation expects (which proves the
per-card state survived every step), and the records replayed after the JobManager kill must be at most about
one checkpoint interval's worth.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from flinkops.dev.s3 import ensure_bucket
from flinkops.dev.zookeeper import ZooKeeperServer
from integration.flinkops_cli import Flinkops, running
from support.examples import example

pytestmark = pytest.mark.integration

NAME, NAMESPACE = "fraud-scoring", "payments"
RATE = 100  # authorizations per second
INTERVAL_S = 2  # checkpoint interval for the test (the example uses 5 s)
CARDS = 200
EVENT_STEP_MS = 1000


def _resource(flinkops: Flinkops) -> dict[str, Any]:
    found = flinkops.get(NAME, NAMESPACE)
    assert found is not None
    return found


def _committed_at_least(bootstrap: str, count: int, timeout: float) -> list[dict[str, Any]]:
    from support.fraud import read_topic

    return read_topic(bootstrap, "fraud-scores", isolation="read_committed", expect=count, timeout=timeout)


def _leader_jobmanager(flinkops: Flinkops) -> int:
    record = json.loads((flinkops.home / "clusters" / NAMESPACE / NAME / "cluster.json").read_text())
    url = _resource(flinkops)["status"]["clusterInfo"]["rest-url"]
    leader = [p["pid"] for p in record["processes"] if p["role"] == "jobmanager" and url.endswith(f":{p['rest_port']}")]
    assert len(leader) == 1, f"the leader serving {url} must be one recorded JobManager: {record['processes']}"
    pid: int = leader[0]
    return pid


def _failed_checkpoints(flinkops: Flinkops, job_id: str, at_least: int = 0, timeout: float = 0) -> int:
    """How many checkpoints of ``job_id`` Flink counts as failed; with ``at_least``, waits (up to ``timeout``)
    until that many have."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        url = (_resource(flinkops)["status"].get("clusterInfo") or {}).get("rest-url")
        try:
            failed = int(httpx.get(f"{url}/jobs/{job_id}/checkpoints", timeout=3).json()["counts"]["failed"])
        except (httpx.HTTPError, ValueError, TypeError, KeyError):
            failed = -1
        if failed >= at_least or time.monotonic() >= deadline:
            return failed
        time.sleep(0.5)


def _restored_and_running(flinkops: Flinkops, job_id: str, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        url = (_resource(flinkops)["status"].get("clusterInfo") or {}).get("rest-url")
        try:
            job = httpx.get(f"{url}/jobs/{job_id}", timeout=3).json()
            stats = httpx.get(f"{url}/jobs/{job_id}/checkpoints", timeout=3).json()
        except (httpx.HTTPError, ValueError, TypeError):
            job, stats = {}, {}
        vertices = len(job.get("vertices", []))
        if (
            job.get("state") == "RUNNING"
            and job.get("status-counts", {}).get("RUNNING", 0) == vertices > 0
            and (stats.get("latest") or {}).get("restored")
        ):
            return
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} was not restored and running within {timeout:.0f} s")


def test_every_authorization_is_scored_exactly_once_through_failures(
    data_plane_flinkops: Flinkops,
    data_plane: Any,
    zookeeper: ZooKeeperServer,
    example_jar: Path,
    tmp_path: Path,
) -> None:
    from support.fraud import ProducerThread, check_scores, replayed

    flinkops, dp = data_plane_flinkops, data_plane
    dp.create_topic("card-auth", 2)
    dp.create_topic("fraud-scores", 2)
    ensure_bucket(dp.s3(), "flink-state", versioned=True)
    overrides = {NAME: {"execution.checkpointing.interval": f"{INTERVAL_S} s", "web.refresh-interval": "500 ms"}}
    spec = example(
        "fraud-scoring/fraud-scoring-kafka.yaml",
        tmp_path,
        bootstrap=dp.bootstrap,
        quorum=zookeeper.connect_string,
        jar=example_jar,
        config=overrides,
    )
    producer = ProducerThread(dp.bootstrap, "card-auth", RATE, cards=CARDS, event_step_ms=EVENT_STEP_MS)
    producer.start()
    try:
        # (1) steady state: deployed, stable (a checkpoint on S3 completed), scores committed.
        flinkops.ok("apply", "-f", str(spec), "--wait", "--timeout", "300")
        status = _resource(flinkops)["status"]
        job_id = status["jobStatus"]["jobId"]
        _committed_at_least(dp.bootstrap, 3 * RATE, timeout=120)
        assert replayed(dp.bootstrap, "fraud-scores") == 0, "nothing is replayed while nothing fails"

        # (2) the leading JobManager is SIGKILLed: the standby takes over the same job from its checkpoint.
        before_kill = producer.next_id
        leader = _leader_jobmanager(flinkops)
        os.kill(leader, signal.SIGKILL)
        _restored_and_running(flinkops, job_id, timeout=120)
        assert _resource(flinkops)["status"]["jobStatus"]["jobId"] == job_id, "HA keeps the job id"
        _committed_at_least(dp.bootstrap, before_kill + RATE, timeout=120)
        replay = replayed(dp.bootstrap, "fraud-scores")
        print(f"\nrecords replayed after the JobManager SIGKILL: {replay} (one interval = {RATE * INTERVAL_S})")
        assert replay < before_kill, "a replay from the earliest offset would repeat everything"
        assert replay <= RATE * (INTERVAL_S + 6), f"{replay} replayed: more than about one checkpoint interval"
        assert not running(leader)

        # (3) savepoint upgrade to model v2: state carried over, nothing lost or repeated.
        upgraded = json.loads(spec.read_text())
        upgraded["spec"]["job"]["args"] = [("v2" if a == "v1" else a) for a in upgraded["spec"]["job"]["args"]]
        spec.write_text(json.dumps(upgraded))
        flinkops.ok("apply", "-f", str(spec), "--wait", "--timeout", "300")
        run = _resource(flinkops)["status"]["deploymentHistory"][-1]
        assert run["reason"] == "upgrade" and run["restoredFrom"].startswith("s3://flink-state/savepoints/"), run
        job_id = _resource(flinkops)["status"]["jobStatus"]["jobId"]

        # (4) the S3 server is stopped for 30 s while checkpoints run, then started again.
        before_outage = producer.next_id
        failed_before = _failed_checkpoints(flinkops, job_id)
        dp.stop_s3()
        # The outage lasts until checkpoints have failed against it twice (at most 30 s): that is the scenario.
        _failed_checkpoints(flinkops, job_id, at_least=failed_before + 2, timeout=30)
        dp.start_s3()
        _committed_at_least(dp.bootstrap, before_outage + RATE, timeout=240)

        # (5) the Kafka broker restarts.
        before_restart = producer.next_id
        dp.restart_kafka()
        _committed_at_least(dp.bootstrap, before_restart + RATE, timeout=240)
    finally:
        total = producer.stop()

    scored = _committed_at_least(dp.bootstrap, total, timeout=240)
    report = check_scores(scored, 0, total - 1, CARDS, EVENT_STEP_MS)
    assert not report.missing, f"{len(report.missing)} authorizations never scored, e.g. {report.missing[:5]}"
    assert not report.duplicated, f"{len(report.duplicated)} scored twice, e.g. {report.duplicated[:5]}"
    assert not report.wrong, f"{len(report.wrong)} with features that lost state, e.g. {report.wrong[:3]}"
    models = {s["model"] for s in scored}
    assert models == {"v1", "v2"}, f"both model versions must have scored: {models}"

    # State lives where the spec says, on S3: checkpoints, the upgrade savepoint, HA metadata.
    s3 = dp.s3()
    for prefix in ("checkpoints/", "savepoints/", "ha/"):
        assert s3.list_objects_v2(Bucket="flink-state", Prefix=prefix).get("KeyCount", 0) > 0, prefix
    # The S3 secret key is in no file flinkops wrote (config, cluster record, process logs) and in no status.
    cluster_dir = flinkops.home / "clusters" / NAMESPACE / NAME
    written = [cluster_dir / "cluster.json", *(cluster_dir / "conf").rglob("*"), *(cluster_dir / "log").rglob("*")]
    leaked = [str(p) for p in written if p.is_file() and dp.secret_key.encode() in p.read_bytes()]
    assert not leaked, f"the S3 secret key was written to {leaked}"
    assert dp.secret_key not in json.dumps(_resource(flinkops))

    pids = flinkops.cluster_pids(NAME, NAMESPACE)
    flinkops.ok("delete", NAME, "-n", NAMESPACE)
    assert not any(running(p) for p in pids)
