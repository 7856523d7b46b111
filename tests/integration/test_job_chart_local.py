"""The flink-job library chart's values run on one machine too (issue 13): ``flinkops render-job`` renders the
example chart (deploy/helm/flink-job-example) with the real ``helm`` and ``flinkops apply -f -`` takes its output
unchanged, to STABLE with the job RUNNING. What Kubernetes reads from the pod template (node pool, Datadog
annotations, the sidecar) means nothing locally. Two changes to the example's values: state goes to a directory of
the test instead of the example's S3 bucket, and the Prometheus reporter is off, because the local runtime hands
its configuration to Flink as it is and Flink's reporter would listen on every interface at port 9999 (the
JobManager and the TaskManager of one machine competing for it).
"""

from __future__ import annotations

import time
from pathlib import Path

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
        "--set",
        "metrics.prometheus.enabled=false",
    )
    assert "metrics.reporter.prom" not in rendered and "karpenter.sh/nodepool" in rendered
    started = time.monotonic()
    applied = flinkops.run("apply", "-f", "-", input_text=rendered)
    assert applied.code == 0, applied.stderr
    assert "flinkdeployment/state-machine" in applied.stdout
    status = flinkops.wait_lifecycle("state-machine", "STABLE", timeout=120)["status"]
    stable_s = time.monotonic() - started
    assert status["jobStatus"]["state"] == "RUNNING" and not status.get("error")
    print(f"\nrender-job | apply -f -: STABLE in {stable_s:.1f} s")
    flinkops.ok("delete", "state-machine")
    assert flinkops.get("state-machine") is None
