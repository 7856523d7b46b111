"""A FlinkSessionJob runs on a session-mode FlinkDeployment; its jar is uploaded through the REST API."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import httpx
import pytest

from integration.flinkops_cli import Flinkops, running

pytestmark = pytest.mark.integration


def test_gitops_order_and_a_job_that_needs_more_slots_than_the_session_cluster_starts_with(
    flinkops: Flinkops, testjobs: Path, tmp_path: Path
) -> None:
    """One file, in the order GitOps tools may apply it: two session jobs first, their session cluster last (one
    TaskManager of two slots). The first job takes one slot; the second needs three, more than the cluster has
    at all: TaskManagers are started for it and both jobs run. Their uploaded jar is removed once each job runs,
    deleting a job cancels it in Flink, and deleting the cluster leaves no process."""
    job = textwrap.dedent(
        """
        apiVersion: flink.apache.org/v1beta1
        kind: FlinkSessionJob
        metadata:
          name: {name}
        spec:
          deploymentName: grow
          job:
            jarURI: {jar}
            entryClass: flinkops.testjobs.CountingJob
            args: ["--rate", "10"]
            parallelism: {parallelism}
        """
    )
    cluster = textwrap.dedent(
        """
        apiVersion: flink.apache.org/v1beta1
        kind: FlinkDeployment
        metadata:
          name: grow
        spec:
          flinkVersion: v2_2
          flinkConfiguration:
            taskmanager.numberOfTaskSlots: "2"
            resourcemanager.taskmanager-timeout: 5 s
          taskManager:
            replicas: 1
        """
    )
    spec = tmp_path / "gitops.yaml"
    documents = [
        job.format(name="first", jar=testjobs, parallelism=1),
        job.format(name="second", jar=testjobs, parallelism=3),
        cluster,
    ]
    spec.write_text("---".join(documents))
    planned = flinkops.ok("plan", "-f", str(spec))
    assert "no valid spec" not in planned and "which this input creates" in planned, planned

    started = time.monotonic()
    flinkops.ok("apply", "-f", str(spec), "--wait", "--timeout", "300", timeout=400)
    session = flinkops.wait_lifecycle("grow", "STABLE", timeout=240)
    ids = [
        flinkops.wait_lifecycle(name, "STABLE", timeout=300)["status"]["jobStatus"]["jobId"]
        for name in ("first", "second")
    ]
    both_running = time.monotonic() - started

    rest = session["status"]["clusterInfo"]["rest-url"]
    states = {j["jid"]: j["state"] for j in httpx.get(f"{rest}/jobs/overview", timeout=10).json()["jobs"]}
    assert [states.get(i) for i in ids] == ["RUNNING", "RUNNING"], states
    assert sorted(states) == sorted(ids), "the session cluster runs these two jobs and no other"
    assert httpx.get(f"{rest}/jars", timeout=10).json()["files"] == [], "the uploaded jar is removed after run"
    overview = httpx.get(f"{rest}/overview", timeout=10).json()
    assert overview["taskmanagers"] >= 2 and overview["slots-total"] >= 4, overview
    print(f"\nGitOps order, growing session cluster: apply --wait returned and both jobs STABLE "
          f"after {both_running:.1f}s with {overview['taskmanagers']} TaskManagers")  # fmt: skip

    # The second job goes: a TaskManager above replicas is stopped once idle for resourcemanager.taskmanager-timeout
    # (5 s here; Flink's default is 30 s), and the first job keeps running, never restarted.
    flinkops.ok("delete", "second")
    released = time.monotonic()
    states = {j["jid"]: j["state"] for j in httpx.get(f"{rest}/jobs/overview", timeout=10).json()["jobs"]}
    assert states[ids[1]] in ("CANCELED", "CANCELLING"), "deleting a session job cancels it"
    deadline = released + 120
    while len(flinkops.processes("grow", "taskmanager")) > 1:
        assert time.monotonic() < deadline, "the idle TaskManager was not released"
        time.sleep(1)
    released_after = time.monotonic() - released
    first = httpx.get(f"{rest}/jobs/{ids[0]}", timeout=10).json()
    assert first["state"] == "RUNNING" and not first["timestamps"].get("RESTARTING"), "the first job never restarts"
    print(f"idle TaskManager released {released_after:.1f}s after the second job was deleted")

    flinkops.ok("delete", "first")
    states = {j["jid"]: j["state"] for j in httpx.get(f"{rest}/jobs/overview", timeout=10).json()["jobs"]}
    assert states[ids[0]] in ("CANCELED", "CANCELLING"), "deleting a session job cancels it"
    pids = flinkops.cluster_pids("grow")
    flinkops.ok("delete", "grow")
    assert not any(running(p) for p in pids), "deleting the session cluster leaves no process"
