"""Killing the controller is a non-event: a new one adopts the running Flink processes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from integration.flinkops_cli import Flinkops, application, running

pytestmark = pytest.mark.integration


def counting_job(tmp_path: Path, jar: Path, name: str) -> Path:
    return application(
        tmp_path,
        name,
        jar,
        "flinkops.testjobs.CountingJob",
        ["--rate", "20"],
        # A STABLE resource is looked at once per reconcile interval (1 min by default): at 1 s the new
        # controller makes several passes over the adopted cluster within the test's window.
        {"execution.checkpointing.interval": "2 s", "kubernetes.operator.reconcile.interval": "1 s"},
        upgradeMode="last-state",
    )


def test_controller_sigkill_adopts_running_processes(flinkops: Flinkops, testjobs: Path, tmp_path: Path) -> None:
    flinkops.ok("apply", "-f", str(counting_job(tmp_path, testjobs, "counter")), "--wait", "--timeout", "180")
    before = flinkops.get("counter")
    assert before is not None
    pids = flinkops.cluster_pids("counter")
    job_id = before["status"]["jobStatus"]["jobId"]

    os.kill(flinkops.controller_pid(), signal.SIGKILL)
    assert flinkops.run("controller", "status").code == 1
    assert all(running(p) for p in pids), "Flink processes must outlive the controller"

    flinkops.ok("controller", "start")
    # Give the new controller several passes (one a second), then check it changed nothing but kept observing.
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        status = flinkops.get("counter")
        assert status is not None and status["status"]["lifecycleState"] == "STABLE"
        time.sleep(1)
    assert flinkops.cluster_pids("counter") == pids
    assert all(running(p) for p in pids)
    after = flinkops.get("counter")
    assert after is not None and after["status"]["jobStatus"]["jobId"] == job_id
    events = flinkops.ok("describe", "counter")
    assert events.count("Submit") == 1, "the adopted job must not have been resubmitted"
    flinkops.ok("delete", "counter")
    assert not any(running(p) for p in pids)
