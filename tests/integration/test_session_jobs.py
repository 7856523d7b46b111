"""A FlinkSessionJob runs on a session-mode FlinkDeployment; its jar is uploaded through the REST API."""

from __future__ import annotations

import textwrap
from pathlib import Path

import httpx
import pytest

from integration.flinkops_cli import Flinkops, running

pytestmark = pytest.mark.integration


def test_session_job_runs_on_session_cluster(flinkops: Flinkops, testjobs: Path, tmp_path: Path) -> None:
    spec = tmp_path / "session.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""
            apiVersion: flink.apache.org/v1beta1
            kind: FlinkDeployment
            metadata:
              name: session
            spec:
              flinkVersion: v2_2
              flinkConfiguration:
                taskmanager.numberOfTaskSlots: "2"
              taskManager:
                replicas: 1
            ---
            apiVersion: flink.apache.org/v1beta1
            kind: FlinkSessionJob
            metadata:
              name: counter-job
            spec:
              deploymentName: session
              job:
                jarURI: {testjobs}
                entryClass: flinkops.testjobs.CountingJob
                args: ["--rate", "10"]
                parallelism: 1
            """
        )
    )
    flinkops.ok("apply", "-f", str(spec), "--wait", "--timeout", "180")
    session = flinkops.wait_lifecycle("session", "STABLE")
    job = flinkops.wait_lifecycle("counter-job", "STABLE")
    job_id = job["status"]["jobStatus"]["jobId"]
    rest = session["status"]["clusterInfo"]["rest-url"]
    jobs = httpx.get(f"{rest}/jobs/overview", timeout=10).json()["jobs"]
    assert [(j["jid"], j["state"]) for j in jobs] == [(job_id, "RUNNING")]
    assert httpx.get(f"{rest}/jars", timeout=10).json()["files"] == [], "the uploaded jar is removed after run"

    flinkops.ok("delete", "counter-job")
    states = {j["jid"]: j["state"] for j in httpx.get(f"{rest}/jobs/overview", timeout=10).json()["jobs"]}
    assert states[job_id] in ("CANCELED", "CANCELLING")
    pids = flinkops.cluster_pids("session")
    flinkops.ok("delete", "session")
    assert not any(running(p) for p in pids)
