"""A job that fails is reported, not hidden: FAILED with its exception in status.error and an event."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest

from integration.flinkops_cli import Flinkops, application, running

pytestmark = pytest.mark.integration


def app(tmp_path: Path, jar: Path, name: str, entry: str, args: list[str] | None = None) -> Path:
    return application(tmp_path, name, jar, entry, args or [], {"restart-strategy.type": "none"})


def test_job_that_throws_lands_in_failed_with_its_exception(flinkops: Flinkops, testjobs: Path, tmp_path: Path) -> None:
    spec = app(tmp_path, testjobs, "failing", "flinkops.testjobs.FailingJob", ["--after", "20", "--rate", "20"])
    result = flinkops.run("apply", "-f", str(spec), "--wait", "--timeout", "180")
    assert result.code == 1, "apply --wait must fail when the job fails"
    status = flinkops.wait_lifecycle("failing", "FAILED")["status"]
    assert status["jobStatus"]["state"] == "FAILED"
    assert "deliberate failure after 20 records" in status["error"]
    assert "Warning" in flinkops.ok("describe", "failing")
    # A failed job keeps nothing running: its cluster is released once the cause is recorded.
    pids = flinkops.cluster_pids("failing")
    released = flinkops.wait_for("failing", lambda r: not flinkops.cluster_pids("failing"), 15, "cluster released")
    assert released is not None and "ClusterReleased" in flinkops.ok("describe", "failing")
    assert released["status"]["deploymentHistory"][-1]["endState"] == "FAILED"
    assert not any(running(p) for p in pids)
    flinkops.ok("delete", "failing")


def test_main_that_throws_lands_in_failed(flinkops: Flinkops, testjobs: Path, tmp_path: Path) -> None:
    spec = app(tmp_path, testjobs, "bad-main", "flinkops.testjobs.ThrowingMain")
    flinkops.run("apply", "-f", str(spec))
    status = flinkops.wait_lifecycle("bad-main", "FAILED")["status"]
    assert "main() refused to build the job" in status["error"]
    flinkops.ok("delete", "bad-main")


def test_missing_jar_is_bad_input_and_changes_nothing(flinkops: Flinkops, tmp_path: Path) -> None:
    spec = app(tmp_path, tmp_path / "nope.jar", "no-jar", "x.Y")
    result = flinkops.run("apply", "-f", str(spec))
    assert result.code == 2, result.stdout + result.stderr
    assert "spec.job.jarURI" in result.stderr and "nope.jar" in result.stderr
    assert "Traceback" not in result.stderr
    assert flinkops.get("no-jar") is None
    assert flinkops.cluster_pids("no-jar") == []


def test_a_jobmanager_that_dies_at_start_fails_apply_wait_within_15_s_with_the_cause(
    flinkops: Flinkops, testjobs: Path, tmp_path: Path
) -> None:
    """The entry class is not in the jar: the JobManager exits at start. Flink says it could not build the
    program, so no retry can help: FAILED at once, the cause (the deepest exception) in status.error, in apply
    --wait's output and below get's table, the JobManager's log kept, nothing left running."""
    spec = app(tmp_path, testjobs, "no-class", "flinkops.testjobs.NoSuchJob")
    began = time.monotonic()
    result = flinkops.run("apply", "-f", str(spec), "--wait", "--timeout", "240")
    returned, took = time.time(), time.monotonic() - began
    assert result.code == 1, f"apply --wait must fail: {result.code}\n{result.stdout}\n{result.stderr}"
    said = result.stdout + result.stderr
    assert "ClassNotFoundException: flinkops.testjobs.NoSuchJob" in said, said
    cluster_log = flinkops.home / "clusters" / "default" / "no-class" / "log"
    died = max(path.stat().st_mtime for path in (cluster_log / "jobmanager-0").glob("*.log"))  # its last words
    print(f"apply --wait took {took:.1f} s; it returned {returned - died:.1f} s after the JobManager's last log line")
    assert returned - died <= 15, f"returned {returned - died:.1f} s after the JobManager died"

    found = flinkops.get("no-class")
    assert found is not None
    status = found["status"]
    assert (status["lifecycleState"], status["errorReason"]) == ("FAILED", "StartFailed")
    assert "exited with code 1" in status["error"] and "flinkops.testjobs.NoSuchJob" in status["error"]
    assert "tried 1 time" in flinkops.events("no-class")
    [kept] = (cluster_log / "crashed").glob("*/*.log")
    assert "Could not create application program" in kept.read_text(), "the failed attempt's log is kept"
    assert "ClassNotFoundException" in flinkops.ok("get", "no-class")
    stopped = flinkops.wait_for("no-class", lambda r: not flinkops.cluster_pids("no-class"), 15, "TaskManager stopped")
    assert stopped is not None, "what the dead JobManager left (its TaskManager) is stopped"
    time.sleep(5)
    assert flinkops.get("no-class")["status"]["lifecycleState"] == "FAILED", "not started again"  # type: ignore[index]
    flinkops.ok("delete", "no-class")


def test_a_jobmanager_that_cannot_start_on_this_machine_is_retried_with_backoff_then_fails(
    flinkops: Flinkops, testjobs: Path, tmp_path: Path
) -> None:
    """The JobManager cannot create its blob storage directory (a path under /dev/null): it exits at start,
    though Flink built the program. That may be the machine's doing, so it is tried again after 2 s, then 4 s
    (two retries, as configured here), each failure a Warning event with the count, and then it is FAILED with
    the cause; the logs of the failed attempts are kept."""
    conf = {
        "restart-strategy.type": "none",
        "blob.storage.directory": "/dev/null/blobs",
        "flinkops.crash-loop.retries": "2",
        "flinkops.crash-loop.backoff": "2 s",
    }
    spec = application(tmp_path, "no-blobs", testjobs, "flinkops.testjobs.BoundedJob", [], conf)
    began = time.monotonic()
    result = flinkops.run("apply", "-f", str(spec), "--wait", "--timeout", "240")
    took = time.monotonic() - began
    print(f"apply --wait took {took:.1f} s for three starts")
    assert result.code == 1, f"apply --wait must fail: {result.code}\n{result.stdout}\n{result.stderr}"
    assert "Tried 3 times; giving up" in result.stderr, result.stderr
    found = flinkops.get("no-blobs")
    assert found is not None
    status = found["status"]
    assert (status["lifecycleState"], status["errorReason"]) == ("FAILED", "StartFailed")
    assert "/dev/null/blobs" in status["error"] or "blob" in status["error"].lower(), status["error"]
    told = flinkops.events("no-blobs")
    assert all(f"tried {n} time" in told for n in (1, 2, 3)) and "retrying in 2 s" in told and "retrying in 4 s" in told
    runs = status["deploymentHistory"]
    assert [r["reason"] for r in runs] == ["first-deploy", "retry", "retry"]
    assert all(r["endState"] == "CRASHED" for r in runs)
    gaps = [(b["startedAt"] - a["endedAt"]) / 1000 for a, b in itertools.pairwise(runs)]
    assert 2 <= gaps[0] < 4 and 4 <= gaps[1] < 6, f"the backoff doubles: {gaps}"
    kept = flinkops.home / "clusters" / "default" / "no-blobs" / "log" / "crashed"
    assert len(list(kept.iterdir())) == 3, "each failed attempt's log is kept"
    flinkops.ok("delete", "no-blobs")


def test_a_session_cluster_whose_jobmanager_dies_at_start_is_retried_then_fails_with_the_cause(
    flinkops: Flinkops, tmp_path: Path
) -> None:
    """A session cluster (no job) whose JobManager JVM refuses its stack size and stops at once: retried once after
    2 s as configured, then FAILED with the JVM's complaint in status.error and in apply --wait's output (exit 1),
    instead of being redeployed forever."""
    doc = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "bad-jvm"},
        "spec": {
            "flinkVersion": "v2_2",
            "flinkConfiguration": {
                "env.java.opts.jobmanager": "-Xss1k",  # the JVM refuses to start
                "flinkops.crash-loop.retries": "1",
                "flinkops.crash-loop.backoff": "2 s",
            },
            "taskManager": {"replicas": 1},
        },
    }
    spec = tmp_path / "bad-jvm.yaml"
    spec.write_text(json.dumps(doc))  # JSON is YAML
    began = time.monotonic()
    result = flinkops.run("apply", "-f", str(spec), "--wait", "--timeout", "120")
    took = time.monotonic() - began
    print(f"apply --wait took {took:.1f} s for two starts of a session cluster")
    assert result.code == 1, f"apply --wait must fail: {result.code}\n{result.stdout}\n{result.stderr}"
    said = result.stdout + result.stderr
    assert "thread stack size specified is too small" in said and "Tried 2 times; giving up" in said, said
    found = flinkops.get("bad-jvm")
    assert found is not None
    status = found["status"]
    assert (status["lifecycleState"], status["errorReason"]) == ("FAILED", "StartFailed")
    assert "thread stack size specified is too small" in status["error"], status["error"]
    told = flinkops.events("bad-jvm")
    assert "tried 1 time" in told and "tried 2 times" in told
    assert [r["endState"] for r in status["deploymentHistory"]] == ["CRASHED", "CRASHED"]
    flinkops.ok("delete", "bad-jvm")
