"""The flink-job library chart's values run on one machine too (issue 13): ``flinkops render-job`` renders the
example chart (deploy/helm/flink-job-example) with the real ``helm`` and ``flinkops apply -f -`` takes its output
unchanged, to STABLE with the job RUNNING. What Kubernetes reads from the pod template (node pool, Datadog
annotations, the sidecar) means nothing locally. One change to the example's values: state goes to a directory of
the test instead of the example's S3 bucket. The chart's Prometheus reporter (port 9999) stays on: locally each
process serves it on a port of its own, on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from integration.flinkops_cli import Flinkops

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "flink-job-example"


def test_render_job_output_applied_locally_runs_to_stable(flinkops: Flinkops, tmp_path: Path) -> None:
    values = tmp_path / "state-machine.yaml"
    values.write_text((EXAMPLE / "values.yaml").read_text())
    rendered = flinkops.ok(
        "render-job",
        "-f",
        str(values),
        "--set",
        f"state.checkpointsDir=file://{tmp_path}/state/checkpoints",
        "--set",
        f"state.savepointsDir=file://{tmp_path}/state/savepoints",
    )
    assert "metrics.reporter.prom" in rendered and "karpenter.sh/nodepool" in rendered
    started = time.monotonic()
    applied = flinkops.run("apply", "-f", "-", input_text=rendered)
    assert applied.code == 0, applied.stderr
    assert "flinkdeployment/state-machine" in applied.stdout
    status = flinkops.wait_lifecycle("state-machine", "STABLE", timeout=120)["status"]
    stable_s = time.monotonic() - started
    assert status["jobStatus"]["state"] == "RUNNING" and not status.get("error")
    print(f"\nrender-job | apply -f -: STABLE in {stable_s:.1f} s")
    listed = [e for e in json.loads((flinkops.home / "prometheus" / "flink.json").read_text())
              if e["labels"]["name"] == "state-machine"]  # fmt: skip
    assert all(e["targets"][0].startswith("127.0.0.1:") for e in listed), listed
    served = {e["labels"]["component"]: httpx.get(f"http://{e['targets'][0]}/metrics", timeout=5).text for e in listed}
    assert "flink_jobmanager_numRegisteredTaskManagers" in served["jobmanager"]
    assert "flink_taskmanager_Status_JVM_CPU_Load" in served["taskmanager"]
    flinkops.ok("delete", "state-machine")
    assert flinkops.get("state-machine") is None
