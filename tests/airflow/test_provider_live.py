"""The provider on a real Airflow 3 and real Flink (the local runtime): each case the existing Airflow Flink
provider gets wrong, run the way a user's Airflow runs it.

* ``airflow dags test`` (tasks in their own processes, a deferred task's trigger run inline from its serialized
  form): a batch job that finishes (success, its counters in XCom, no process left), a job that fails after its
  JobManager came up (the task fails with Flink's root cause), bad input and a missing connection (the task fails
  at once, nothing is created), a worker that dies mid-job (the next attempt reattaches: same Flink job, one run);
* the real scheduler and triggerer (marked ``airflow_cluster``): a deferred task killed by a user takes its
  cluster with it.

The tasks' ``flinkops_default`` connection targets the session's own flinkops home (tests/airflow/conftest.py).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from flinkops.ports import ResourceKey
from flinkops.service.target import LocalTarget
from support.airflow import AirflowCluster, AirflowHome, airflow_command
from support.operator import wait_for
from support.testjobs import COUNTING_JOB, FAILING_JOB, testjobs_jar

REPO = Path(__file__).resolve().parents[2]
RECORDS, HOURS, PARTNERS, SEED = 20_000, 3, 4, 7


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("generate", REPO / "examples" / "conversions-batch" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example_jar() -> Path:
    from flinkops.dev.example_jobs import build_example_jobs

    return build_example_jobs()


@pytest.fixture(scope="module")
def jobs_jar() -> Path:
    return testjobs_jar()


@pytest.fixture(scope="module")
def conversions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small hourly conversions dataset, as files (``hour=.../part-N.csv``)."""
    root = tmp_path_factory.mktemp("conversions") / "raw"
    for key, body in _generator()._files(RECORDS, HOURS, PARTNERS, SEED, 1):
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    return root


def resource(flinkops_home: Path, name: str) -> Any:
    return LocalTarget(flinkops_home).store().get(ResourceKey("FlinkDeployment", "default", name))


def flink_processes(flinkops_home: Path, name: str) -> list[int]:
    """Live processes whose command line names this deployment's cluster directory (JobManager, TaskManagers)."""
    marker = f"{flinkops_home}/clusters/default/{name}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker in (proc / "cmdline").read_bytes():
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state not in ("Z", "X"):
                    found.append(int(proc.name))
        except OSError:
            continue
    return found


def task_end(airflow_home: AirflowHome, dag_id: str, run_id: str) -> float:
    """The epoch second the run's task ended, as Airflow recorded it."""
    from datetime import datetime

    (row,) = airflow_home._query(
        "SELECT end_date FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = 'run'", (dag_id, run_id)
    )
    return datetime.fromisoformat(str(row[0])).timestamp()


def test_a_finished_batch_job_succeeds_with_its_counters_and_leaves_no_process(
    airflow_home: AirflowHome, flinkops_home: Path, example_jar: Path, conversions: Path, tmp_path: Path
) -> None:
    name = "conversions-ok"
    conf = {
        "name": name,
        "jar": str(example_jar),
        "entry": "flinkops.examples.ConversionsBatchJob",
        "args": ["--input", f"file://{conversions}", "--output", f"file://{tmp_path / 'hourly'}"],
        "batch": True,
    }
    result = airflow_home.dags_test("flinkops_job", conf=conf)
    assert result.state == "success", result.output[-6000:]
    assert result.task_states == {"run": "success"}
    assert result.run_id is not None
    value = airflow_home.xcom("flinkops_job", result.run_id, "run")
    assert value["state"] == "finished" and value["job_state"] == "FINISHED", value
    assert int(value["accumulators"]["records"]) == RECORDS, value
    assert int(value["accumulators"]["groups"]) == HOURS * PARTNERS, value
    assert value["duration_ms"] > 0 and value["runs"] == 1 and len(value["job_id"]) == 32
    # The task ends with the job (not with its JobManager coming up) and takes everything with it.
    lag = task_end(airflow_home, "flinkops_job", result.run_id) - value["ended_at_ms"] / 1000
    print(f"\n[airflow] job FINISHED -> task success: {lag:.1f} s (dags test {result.seconds:.1f} s)")
    assert lag <= 10, lag
    assert resource(flinkops_home, name) is None, "delete_on_termination=on_success deletes it"
    assert flink_processes(flinkops_home, name) == []
    lines = [line for part in (tmp_path / "hourly").rglob("part-*") for line in part.read_text().splitlines()]
    assert len(lines) == HOURS * PARTNERS


def test_a_job_that_fails_after_its_jobmanager_came_up_fails_the_task_with_flinks_cause(
    airflow_home: AirflowHome, flinkops_home: Path, jobs_jar: Path
) -> None:
    name = "failing"
    conf = {"name": name, "jar": str(jobs_jar), "entry": FAILING_JOB, "args": ["--after", "50", "--rate", "50"]}
    result = airflow_home.dags_test("flinkops_job", conf=conf)
    assert result.state == "failed" and result.task_states == {"run": "failed"}, result.output[-6000:]
    assert "deliberate failure after 50 records" in result.output, result.output[-6000:]
    kept = resource(flinkops_home, name)
    assert kept is not None and kept.status.lifecycle_state.value == "FAILED", "a failed run stays for describe"
    assert kept.status.job_manager_deployment_status is not None
    wait_for("the failed job's processes gone", lambda: flink_processes(flinkops_home, name) == [], 30, 0.5)


def test_bad_input_and_a_missing_connection_fail_at_once_and_create_nothing(
    airflow_home: AirflowHome, flinkops_home: Path, jobs_jar: Path
) -> None:
    conf = {"name": "bad-input", "jar": str(jobs_jar), "entry": COUNTING_JOB, "parallelism": -1}
    bad = airflow_home.dags_test("flinkops_job", conf=conf)
    assert bad.state == "failed", bad.output[-4000:]
    assert "spec.job.parallelism" in bad.output and "nothing was created" in bad.output, bad.output[-4000:]
    assert resource(flinkops_home, "bad-input") is None
    missing = airflow_home.dags_test("flinkops_no_connection", conf={**conf, "name": "no-connection", "parallelism": 1})
    assert missing.state == "failed", missing.output[-4000:]
    assert "flinkops_nowhere" in missing.output and "airflow connections add" in missing.output
    assert resource(flinkops_home, "no-connection") is None


def test_a_worker_that_dies_mid_job_leaves_the_job_to_the_retry_which_reattaches(
    airflow_home: AirflowHome, flinkops_home: Path, jobs_jar: Path
) -> None:
    name = "reattached"
    conf = {"name": name, "jar": str(jobs_jar), "entry": COUNTING_JOB, "args": ["--records", "1500", "--rate", "50"]}
    worker = subprocess.Popen(
        [str(airflow_command()), "dags", "test", "flinkops_job_sync", "--conf", json.dumps(conf)],
        cwd=airflow_home.root,
        env=airflow_home.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:

        def running_job() -> str | None:
            found = resource(flinkops_home, name)
            status = found.status if found is not None else None
            return status.job_status.job_id if status and status.job_status.state == "RUNNING" else None

        first_job = wait_for("the job running", running_job, 120, 0.5)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the worker dies: no on_kill, nothing cleaned up
        worker.wait(30)
    assert running_job() == first_job, "the job outlives the worker"
    retry = airflow_home.dags_test("flinkops_job_sync", conf=conf)
    assert retry.state == "success", retry.output[-6000:]
    assert "reattaching to" in retry.output
    assert retry.run_id is not None
    value = airflow_home.xcom("flinkops_job_sync", retry.run_id, "run")
    assert value["job_id"] == first_job and value["runs"] == 1, value


@pytest.mark.airflow_cluster
def test_a_deferred_task_killed_by_a_user_takes_its_cluster_with_it(
    airflow_cluster: AirflowCluster, flinkops_home: Path, jobs_jar: Path
) -> None:
    name = "killed"
    api = airflow_cluster.api
    api.wait_for_dag("flinkops_job")
    conf = {"name": name, "jar": str(jobs_jar), "entry": COUNTING_JOB, "args": ["--rate", "20"]}
    run_id = api.trigger("flinkops_job", conf=conf)
    task = f"/dags/flinkops_job/dagRuns/{quote(run_id, safe='')}/taskInstances/run"

    def followed() -> bool:
        """Deferred, and its trigger taken up by the triggerer (a trigger dropped before a triggerer ran it has
        nobody to call its on_kill)."""
        found = api.request("GET", task)
        return bool(found["state"] == "deferred" and found.get("triggerer_job"))

    wait_for("the task deferred and its trigger running", followed, 180, 0.5)
    assert resource(flinkops_home, name) is not None and flink_processes(flinkops_home, name)
    killed_at = time.monotonic()
    # What "Mark as failed" in the UI does: the API server ends the task, the triggerer drops its trigger (and
    # calls the trigger's on_kill).
    api.request("PATCH", task, json={"new_state": "failed"})
    wait_for("the resource deleted", lambda: resource(flinkops_home, name) is None, 120, 0.5)
    wait_for("its processes gone", lambda: flink_processes(flinkops_home, name) == [], 60, 0.5)
    print(f"\n[airflow] task marked failed -> cluster gone: {time.monotonic() - killed_at:.1f} s")
