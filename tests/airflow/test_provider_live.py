"""The provider on a real Airflow 3 and real Flink (the local runtime): each case the existing Airflow Flink
provider gets wrong, run the way a user's Airflow runs it.

* ``airflow dags test``, before the scheduler starts (a scheduler would also run the runs ``dags test`` makes),
  (tasks in their own processes, a deferred task's trigger run inline from its serialized
  form): a batch job that finishes (success, its counters in XCom, no process left), a job that fails after its
  JobManager came up (the task fails with Flink's root cause), bad input and a missing connection (the task fails
  at once, nothing is created), a worker that dies mid-job (the next attempt reattaches: same Flink job, one run);
* the real scheduler and triggerer (marked ``airflow_cluster``): a deferred task killed by a user takes its
  cluster with it.

The tasks' ``flinkops_default`` connection targets the session's own flinkops home (tests/airflow/conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from flinkops.ports import ResourceKey
from flinkops.service.target import LocalTarget
from flinkops_airflow.example_dags.watchdog import WATCHDOG
from support.airflow import AirflowCluster, AirflowHome, StatsdListener, airflow_command
from support.examples import example_module
from support.operator import wait_for
from support.testjobs import COUNTING_JOB, FAILING_JOB, testjobs_jar

REPO = Path(__file__).resolve().parents[2]
RECORDS, HOURS, PARTNERS, SEED = 20_000, 3, 4, 7


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
    for key, body in example_module("conversions-batch/generate.py")._files(RECORDS, HOURS, PARTNERS, SEED, 1):
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


def test_airflow_discovers_the_provider_through_its_entry_point(airflow_home: AirflowHome) -> None:
    providers = {row["package_name"]: row for row in airflow_home.providers()}
    assert "airflow-provider-flinkops" in providers, sorted(providers)


def test_bad_input_and_a_missing_connection_fail_at_once_and_create_nothing(
    airflow_home: AirflowHome, flinkops_home: Path, jobs_jar: Path
) -> None:
    conf = {"name": "bad-input", "jar": str(jobs_jar), "entry": COUNTING_JOB, "parallelism": -1}
    bad = airflow_home.dags_test("flinkops_bad_input", conf=conf)
    assert bad.task_states == {"run": "failed", "no_connection": "failed"}, bad.output[-4000:]
    assert "spec.job.parallelism" in bad.output and "nothing was created" in bad.output, bad.output[-4000:]
    assert "flinkops_nowhere" in bad.output and "airflow connections add" in bad.output, bad.output[-4000:]
    assert resource(flinkops_home, "bad-input") is None and resource(flinkops_home, "no-connection") is None


def test_a_worker_that_dies_mid_job_leaves_the_job_to_the_retry_which_reattaches(
    airflow_home: AirflowHome, flinkops_home: Path, jobs_jar: Path
) -> None:
    name = "reattached"
    conf = {"name": name, "jar": str(jobs_jar), "entry": COUNTING_JOB, "args": ["--records", "400", "--rate", "50"]}
    worker = subprocess.Popen(
        [str(airflow_command()), "dags", "test", "flinkops_reattach", "--conf", json.dumps(conf)],
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
    retry = airflow_home.dags_test("flinkops_reattach", conf=conf)
    assert retry.state == "success", retry.output[-6000:]
    # The retry finds the job still running (it waits for it) or, on a slow machine where `dags test` takes longer
    # to start than the job's 8 s, already FINISHED (its outcome again): either way it submitted nothing.
    assert "reattaching to" in retry.output or "already reached finished" in retry.output, retry.output[-6000:]
    assert retry.run_id is not None
    value = airflow_home.xcom("flinkops_reattach", retry.run_id, "run")
    assert value["job_id"] == first_job and value["runs"] == 1, value


@dataclass
class Runs:
    """The DAG runs the cluster tests share, started together (the cluster's start-up is paid once and the jobs
    overlap): a batch job that finishes, a job that fails, a streaming job whose task a user kills."""

    cluster: AirflowCluster
    ok: str
    failing: str
    killed: str
    restarted: str
    output: Path


@pytest.fixture(scope="module")
def runs(
    airflow_cluster: AirflowCluster, example_jar: Path, jobs_jar: Path, conversions: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Runs:  # fmt: skip
    api = airflow_cluster.api
    for dag_id in ("flinkops_job", "flinkops_job_sync", WATCHDOG):
        api.wait_for_dag(dag_id)
    output = tmp_path_factory.mktemp("hourly")
    ok = api.trigger(
        "flinkops_job",
        conf={
            "name": "conversions-ok",
            "jar": str(example_jar),
            "entry": "flinkops.examples.ConversionsBatchJob",
            "args": ["--input", f"file://{conversions}", "--output", f"file://{output}"],
            "batch": True,
        },
    )
    # Waited for in the worker (deferrable=False): the sync path's decision, next to the trigger's.
    failing = api.trigger(
        "flinkops_job_sync",
        conf={"name": "failing", "jar": str(jobs_jar), "entry": FAILING_JOB, "args": ["--after", "50", "--rate", "50"]},
    )
    killed = api.trigger(
        "flinkops_job", conf={"name": "killed", "jar": str(jobs_jar), "entry": COUNTING_JOB, "args": ["--rate", "20"]}
    )
    restarted = api.trigger(
        "flinkops_job",
        conf={
            "name": "restarted",
            "jar": str(jobs_jar),
            "entry": COUNTING_JOB,
            "args": ["--records", "400", "--rate", "25"],
            "batch": True,  # a BATCH job's end is looked for twice a second, a streaming job's less often
        },
    )
    return Runs(airflow_cluster, ok, failing, killed, restarted, output)


def followed(api: Any, task: str) -> bool:
    """Deferred, and its trigger taken up by a triggerer."""
    found = api.request("GET", task)
    return bool(found["state"] == "deferred" and found.get("triggerer_job"))


def task_path(dag_id: str, run_id: str) -> str:
    return f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/run"


def task_log(home: AirflowHome, dag_id: str, run_id: str) -> str:
    return "\n".join(
        p.read_text() for p in (home.root / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}").rglob("*.log")
    )


@pytest.mark.airflow_cluster
def test_a_finished_batch_job_succeeds_with_its_counters_and_leaves_no_process(
    runs: Runs, airflow_home: AirflowHome, flinkops_home: Path
) -> None:
    api = runs.cluster.api
    assert api.wait_for_run("flinkops_job", runs.ok, timeout=300) == "success", task_log(
        airflow_home, "flinkops_job", runs.ok
    )[-6000:]
    value = api.xcom("flinkops_job", runs.ok, "run")
    assert value["state"] == "finished" and value["job_state"] == "FINISHED", value
    assert int(value["accumulators"]["records"]) == RECORDS, value
    assert int(value["accumulators"]["groups"]) == HOURS * PARTNERS, value
    assert value["duration_ms"] > 0 and value["runs"] == 1 and len(value["job_id"]) == 32
    # The task ends with the job (not with its JobManager coming up) and takes everything with it.
    ended = api.request("GET", task_path("flinkops_job", runs.ok))["end_date"]
    lag = datetime.fromisoformat(ended).timestamp() - value["ended_at_ms"] / 1000
    print(f"\n[airflow] job FINISHED -> deferred task success (triggerer): {lag:.1f} s")
    assert lag <= 10, lag
    # delete_on_termination=on_success: the controller removes it right after (its cluster went with the job).
    wait_for("the resource deleted", lambda: resource(flinkops_home, "conversions-ok") is None, 10, 0.2)
    assert flink_processes(flinkops_home, "conversions-ok") == []
    links = api.request("GET", task_path("flinkops_job", runs.ok) + "/links")["extra_links"]
    assert (links.get("Flink UI") or "").startswith("http://127.0.0.1:"), links  # the task's button in Airflow's UI
    assert "Flink UI of FlinkDeployment/default/conversions-ok: http://127.0.0.1:" in task_log(
        airflow_home, "flinkops_job", runs.ok
    )
    lines = [line for part in runs.output.rglob("part-*") for line in part.read_text().splitlines()]
    assert len(lines) == HOURS * PARTNERS


@pytest.mark.airflow_cluster
def test_a_job_that_fails_after_its_jobmanager_came_up_fails_the_task_with_flinks_cause(
    runs: Runs, airflow_home: AirflowHome, flinkops_home: Path
) -> None:
    api = runs.cluster.api
    assert api.wait_for_run("flinkops_job_sync", runs.failing, timeout=300) == "failed"
    assert api.task_states("flinkops_job_sync", runs.failing) == {"run": "failed"}
    log = task_log(airflow_home, "flinkops_job_sync", runs.failing)
    # The exception the task fails with names Flink's root cause (not "Recovery is suppressed by ...").
    assert "job FAILED: java.lang.IllegalStateException: flinkops-test: deliberate failure after 50 records" in log, (
        log[-6000:]
    )
    kept = resource(flinkops_home, "failing")
    assert kept is not None and kept.status.lifecycle_state.value == "FAILED", "a failed run stays for describe"
    wait_for("the failed job's processes gone", lambda: flink_processes(flinkops_home, "failing") == [], 30, 0.5)


@pytest.mark.airflow_cluster
def test_a_deferred_task_killed_by_a_user_takes_its_cluster_with_it(runs: Runs, flinkops_home: Path) -> None:
    api = runs.cluster.api
    task = task_path("flinkops_job", runs.killed)
    # Deferred and taken up by the triggerer: a trigger dropped before any triggerer ran it has nobody to call its
    # on_kill.
    wait_for("the task deferred and its trigger running", lambda: followed(api, task), 180, 0.5)
    assert resource(flinkops_home, "killed") is not None and flink_processes(flinkops_home, "killed")
    killed_at = time.monotonic()
    # What "Mark as failed" in the UI does: the API server ends the task, the triggerer cancels its trigger and
    # calls the trigger's on_kill.
    api.request("PATCH", task, json={"new_state": "failed"})
    wait_for("the resource deleted", lambda: resource(flinkops_home, "killed") is None, 120, 0.5)
    wait_for("its processes gone", lambda: flink_processes(flinkops_home, "killed") == [], 60, 0.5)
    print(f"\n[airflow] task marked failed -> cluster gone: {time.monotonic() - killed_at:.1f} s")


@pytest.mark.airflow_cluster
def test_the_watchdog_publishes_the_failed_dag_count_on_statsd_and_as_a_prometheus_gauge(
    runs: Runs, airflow_home: AirflowHome, statsd: StatsdListener
) -> None:
    api = runs.cluster.api
    # Two DAGs failed in the window: flinkops_job (the killed run) and flinkops_job_sync (the failing job).
    for dag_id, run_id in (("flinkops_job_sync", runs.failing), ("flinkops_job", runs.killed)):
        assert api.wait_for_run(dag_id, run_id, timeout=300) == "failed"
    watch = api.trigger(WATCHDOG)
    assert api.wait_for_run(WATCHDOG, watch, timeout=120) == "success", task_log(airflow_home, WATCHDOG, watch)[-4000:]
    counts = api.xcom(WATCHDOG, watch, "count_failed_dag_runs")
    assert counts["flinkops_job"] == 1 and counts["flinkops_job_sync"] == 1, counts
    assert counts["flinkops_bad_input"] == 1, counts
    assert WATCHDOG not in counts, "the watchdog does not count itself"
    # Every DAG is there (0 when none failed), so an alert on a recovered DAG clears.
    quiet = [dag_id for dag_id, n in counts.items() if n == 0]
    assert quiet, counts
    total = sum(counts.values())
    metric = statsd.wait_for("airflow.FailedDagCount", timeout=30, where=lambda m: m.value == total)
    assert metric.type == "g"
    statsd.wait_for("airflow.FailedDagCount.flinkops_job_sync", timeout=30, where=lambda m: m.value == 1)
    statsd.wait_for(f"airflow.FailedDagCount.{quiet[0]}", timeout=30, where=lambda m: m.value == 0)
    prom = (airflow_home.root / "metrics" / "watchdog.prom").read_text()
    assert 'airflow_failed_dag_count{dag_id="flinkops_job"} 1.0' in prom, prom
    assert 'airflow_failed_dag_count{dag_id="flinkops_job_sync"} 1.0' in prom, prom
    assert f'airflow_failed_dag_count{{dag_id="{quiet[0]}"}} 0.0' in prom, prom
    assert f"airflow_failed_dag_count_total {float(total)}" in prom, prom


@pytest.mark.airflow_cluster
def test_a_triggerer_restarted_mid_job_resumes_the_wait_from_the_serialized_trigger(
    runs: Runs, flinkops_home: Path
) -> None:
    api = runs.cluster.api
    task = task_path("flinkops_job", runs.restarted)
    wait_for("the task deferred and its trigger running", lambda: followed(api, task), 180, 0.5)
    job = resource(flinkops_home, "restarted").status.job_status.job_id
    triggerer = runs.cluster.processes["triggerer"]
    triggerer.stop()
    triggerer.start(timeout=120)  # a new triggerer process rebuilds the trigger from the metadata database
    assert api.wait_for_run("flinkops_job", runs.restarted, timeout=300) == "success"
    value = api.xcom("flinkops_job", runs.restarted, "run")
    assert value["job_id"] == job and value["runs"] == 1 and value["state"] == "finished", value
