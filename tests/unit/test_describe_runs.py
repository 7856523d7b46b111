"""``describe`` lists a deployment's runs: a job's with its id and restore point, a session cluster's (starts of its
JobManager, no job) without either; how each run ended, when it did (a start that died says CRASHED)."""

from __future__ import annotations

from typer.testing import CliRunner

from flinkops.api.models import DeploymentRecord, FlinkDeploymentStatus
from flinkops.cli.main import app
from flinkops.service import apply
from support.service import TestTarget, session_cluster


def test_a_session_clusters_runs_show_no_job_and_how_each_start_ended(cli: CliRunner, target: TestTarget) -> None:
    [applied] = apply(target, [session_cluster("session")])
    runs = [
        DeploymentRecord(generation=1, reason="first-deploy", started_at=1, ended_at=2, end_state="CRASHED"),
        DeploymentRecord(generation=1, reason="retry", started_at=3, running_at=4),
    ]
    store = target.store()
    stored = store.get(applied.key)
    assert stored is not None
    store.update_status(stored.model_copy(update={"status": FlinkDeploymentStatus(deployment_history=runs)}))
    result = cli.invoke(app, ["describe", "session"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.output.splitlines() if line.strip().startswith("gen ")]
    assert lines == [["gen", "1", "-", "first-deploy", "-", "-", "CRASHED"], ["gen", "1", "-", "retry", "-", "-"]]
