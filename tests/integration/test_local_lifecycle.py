"""A FlinkDeployment on real Flink processes: deploy → STABLE, a controller killed meanwhile is a non-event (a new
one adopts the running Flink processes), suspend → resume, delete leaves nothing.

Uses the fraud-scoring example (a PyFlink job) with its real YAML, so the demo path is what is tested.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import yaml

from integration.flinkops_cli import Flinkops, running

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).parents[2] / "examples" / "fraud-scoring"


@pytest.fixture(scope="module")
def fraud_yaml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example, copied so its output lands in a temp dir; faster event time so output commits quickly."""
    work = tmp_path_factory.mktemp("fraud")
    shutil.copy(EXAMPLE / "fraud_scoring.py", work)
    doc = yaml.safe_load((EXAMPLE / "fraud-scoring.yaml").read_text())
    doc["spec"]["flinkConfiguration"]["execution.checkpointing.interval"] = "3 s"
    doc["spec"]["flinkConfiguration"]["execution.checkpointing.min-pause"] = "1 s"
    # A STABLE resource is looked at once per reconcile interval (1 min by default): at 1 s a controller started
    # again makes several passes over the adopted cluster within the test's window.
    doc["spec"]["flinkConfiguration"]["kubernetes.operator.reconcile.interval"] = "1 s"
    doc["spec"]["job"]["args"] += ["--rows-per-second", "200"]
    path = work / "fraud-scoring.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_deploy_controller_sigkill_suspend_resume_delete(flinkops: Flinkops, fraud_yaml: Path) -> None:
    flinkops.ok("apply", "-f", str(fraud_yaml), "--wait", "--timeout", "240")
    status = flinkops.wait_lifecycle("fraud-scoring", "STABLE")["status"]
    assert status["jobStatus"]["state"] == "RUNNING"
    assert status["jobManagerDeploymentStatus"] == "READY"
    assert status["reconciliationStatus"]["lastStableSpec"] == status["reconciliationStatus"]["lastReconciledSpec"]
    first_job = status["jobStatus"]["jobId"]
    pids = flinkops.cluster_pids("fraud-scoring")
    assert len(pids) == 2 and all(running(p) for p in pids)  # one JobManager, one TaskManager (2 slots)

    # Scores are committed by the exactly-once file sink on checkpoints.
    output = fraud_yaml.parent / "output" / "scores"
    flinkops.wait_for("fraud-scoring", lambda _: any(output.glob("part-*")), 90, "committed output")
    row = next(output.glob("part-*")).read_text().splitlines()[0].split(",")
    assert len(row) == 8 and 0.0 <= float(row[-1]) <= 1.0

    # Killing the controller is a non-event: a new one adopts the running Flink processes.
    os.kill(flinkops.controller_pid(), signal.SIGKILL)
    assert flinkops.run("controller", "status").code == 1
    assert all(running(p) for p in pids), "Flink processes must outlive the controller"
    flinkops.ok("controller", "start")
    # Give the new controller several passes (one a second), then check it changed nothing but kept observing.
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        adopted = flinkops.get("fraud-scoring")
        assert adopted is not None and adopted["status"]["lifecycleState"] == "STABLE"
        time.sleep(1)
    assert flinkops.cluster_pids("fraud-scoring") == pids
    assert all(running(p) for p in pids)
    adopted = flinkops.get("fraud-scoring")
    assert adopted is not None and adopted["status"]["jobStatus"]["jobId"] == first_job
    assert flinkops.ok("describe", "fraud-scoring").count("Submit") == 1, "the adopted job must not be resubmitted"

    flinkops.ok("suspend", "fraud-scoring")
    suspended = flinkops.wait_lifecycle("fraud-scoring", "SUSPENDED", timeout=60)["status"]
    assert not any(running(p) for p in pids), "suspend must stop every process of the cluster"
    restore_from = suspended["jobStatus"]["upgradeSavepointPath"]
    assert restore_from and "chk-" in restore_from, "last-state suspend must record the latest checkpoint"

    flinkops.ok("resume", "fraud-scoring")
    resumed = flinkops.wait_lifecycle("fraud-scoring", "STABLE", timeout=240)["status"]
    assert resumed["jobStatus"]["jobId"] != first_job
    events = flinkops.ok("describe", "fraud-scoring")
    assert restore_from.split("/")[-1] in events  # the resume names the checkpoint it restored
    new_pids = flinkops.cluster_pids("fraud-scoring")

    flinkops.ok("delete", "fraud-scoring")
    assert flinkops.get("fraud-scoring") is None
    assert not any(running(p) for p in new_pids), "delete must leave no Flink process behind"
    checkpoints = Path(restore_from.removeprefix("file:")).parent
    assert checkpoints.is_dir(), "delete keeps checkpoint storage"
