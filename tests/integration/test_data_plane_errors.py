"""Bad data-plane input becomes a clear error on the resource, loses nothing and leaves nothing running.

Unreachable S3, rejected credentials, a missing bucket and a jar URI that 404s are caught before anything
starts (status.error plus a Warning event; no process; a session job's missing jar is covered next to the
bronze session job in test_lake_and_batch.py). A missing Kafka topic is caught by the job's own
main(), so the deployment ends FAILED with that cause and its cluster is released. And an update that points at
a missing jar leaves the running job untouched.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from flinkops.dev.s3 import ensure_bucket
from integration.flinkops_cli import Flinkops, application, running, status_of
from support.examples import example

pytestmark = pytest.mark.integration


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _error_without_processes(
    flinkops: Flinkops, name: str, expected: str, namespace: str = "default", timeout: float = 60
) -> str:
    found = flinkops.wait_for(
        name, lambda r: expected in (status_of(r).get("error") or ""), timeout, expected, namespace=namespace
    )
    assert found is not None
    assert flinkops.cluster_pids(name, namespace) == [], "nothing may start"
    assert "Warning" in flinkops.ok("describe", name, "-n", namespace)
    error: str = found["status"]["error"]
    return error


@pytest.mark.parametrize(
    ("case", "config", "expected"),
    [
        (
            "unreachable",
            {"s3.endpoint": "http://127.0.0.1:{closed}", "s3.access-key": "k", "s3.secret-key": "s"},
            "is unreachable",
        ),
        ("bad-credentials", {"s3.access-key": "nobody", "s3.secret-key": "wrong-secret"}, "rejected the credentials"),
        ("no-bucket", {"execution.checkpointing.dir": "s3://no-such-bucket/checkpoints"}, "does not exist"),
    ],
)
def test_s3_problems_stop_a_deploy_before_anything_starts(
    data_plane_flinkops: Flinkops,
    data_plane: Any,
    testjobs: Path,
    tmp_path: Path,
    case: str,
    config: dict[str, str],
    expected: str,
) -> None:
    flinkops = data_plane_flinkops
    ensure_bucket(data_plane.s3(), "flink-state")
    conf = {
        "execution.checkpointing.dir": "s3://flink-state/errors/checkpoints",
        "execution.checkpointing.interval": "2 s",
    }
    conf.update({k: v.format(closed=_closed_port()) for k, v in config.items()})
    name = f"s3-{case}"
    spec = application(tmp_path, name, testjobs, "flinkops.testjobs.CountingJob", ["--rate", "10"], conf)
    flinkops.ok("apply", "-f", str(spec))
    error = _error_without_processes(flinkops, name, expected)
    assert "wrong-secret" not in error
    flinkops.ok("delete", name)


def test_a_jar_uri_that_404s_is_an_error_and_the_running_job_keeps_running(
    data_plane_flinkops: Flinkops, data_plane: Any, testjobs: Path, tmp_path: Path
) -> None:
    flinkops = data_plane_flinkops
    s3 = data_plane.s3()
    ensure_bucket(s3, "jars")
    s3.upload_file(str(testjobs), "jars", "counting.jar")
    conf = {"execution.checkpointing.interval": "1 s"}
    spec = application(tmp_path, "s3-jar", testjobs, "flinkops.testjobs.CountingJob", ["--rate", "10"], conf)
    doc = json.loads(spec.read_text())
    doc["spec"]["job"]["jarURI"] = "s3://jars/counting.jar"  # downloaded by flinkops from S3
    spec.write_text(json.dumps(doc))
    flinkops.ok("apply", "-f", str(spec), "--wait", "--timeout", "240")
    before = flinkops.get("s3-jar")
    assert before is not None
    job_id, pids = before["status"]["jobStatus"]["jobId"], flinkops.cluster_pids("s3-jar")

    doc["spec"]["job"]["jarURI"] = "s3://jars/missing.jar"
    doc["spec"]["job"]["args"] = ["--rate", "11"]
    spec.write_text(json.dumps(doc))
    flinkops.ok("apply", "-f", str(spec))
    found = flinkops.wait_for("s3-jar", lambda r: "missing.jar" in ((r or {}).get("status", {}).get("error") or ""), 60)
    assert found is not None and "404" in found["status"]["error"], found and found["status"]["error"]
    assert found["status"]["jobStatus"]["jobId"] == job_id and found["status"]["jobStatus"]["state"] == "RUNNING"
    assert flinkops.cluster_pids("s3-jar") == pids and all(running(p) for p in pids), "the old job must keep running"
    flinkops.ok("delete", "s3-jar")


def test_a_missing_kafka_topic_fails_the_deployment_with_the_cause(
    data_plane_flinkops: Flinkops, data_plane: Any, example_jar: Path, tmp_path: Path
) -> None:
    flinkops = data_plane_flinkops
    ensure_bucket(data_plane.s3(), "flink-state", versioned=True)
    spec = example("fraud-scoring/fraud-scoring-kafka.yaml", tmp_path, bootstrap=data_plane.bootstrap, jar=example_jar)
    doc = json.loads(spec.read_text())
    doc["metadata"]["name"] = "fraud-no-topic"
    conf = doc["spec"]["flinkConfiguration"]
    for key in [k for k in conf if k.startswith("high-availability")]:
        del conf[key]
    doc["spec"]["jobManager"]["replicas"] = 1
    args = doc["spec"]["job"]["args"]
    args[args.index("--input-topic") + 1] = "no-such-topic"
    spec.write_text(json.dumps(doc))
    flinkops.ok("apply", "-f", str(spec))
    failed = flinkops.wait_for(
        "fraud-no-topic",
        lambda r: status_of(r).get("lifecycleState") == "FAILED"
        and not flinkops.cluster_pids("fraud-no-topic", "payments"),
        240, "FAILED with its cluster released", namespace="payments",
    )  # fmt: skip
    assert failed is not None and "no-such-topic" in failed["status"]["error"], failed and failed["status"]
    flinkops.ok("delete", "fraud-no-topic", "-n", "payments")
