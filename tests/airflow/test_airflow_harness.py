"""The Airflow test harness works: a real Airflow 3 (./.venv-airflow) discovers the flinkops provider, runs a
DAG with ``airflow dags test``, and (marked ``airflow_cluster``) its scheduler, dag-processor, triggerer and
api-server run a DAG whose task defers, with the outcome read through the REST API and metrics on StatsD."""

from __future__ import annotations

import time

import pytest

from support.airflow import AirflowCluster, AirflowHome, StatsdListener


def test_provider_is_discovered_and_dags_test_runs_a_task(airflow_home: AirflowHome) -> None:
    providers = {row["package_name"]: row for row in airflow_home.providers()}
    assert "airflow-provider-flinkops" in providers, sorted(providers)

    result = airflow_home.dags_test("harness_hello")

    assert result.returncode == 0, result.output[-4000:]
    assert result.state == "success"
    assert result.task_states == {"greet": "success"}
    assert airflow_home.xcom("harness_hello", result.run_id or "", "greet") == {"greeting": "hello"}
    print(f"\n[airflow] dags test harness_hello: {result.seconds:.1f}s")


@pytest.mark.airflow_cluster
def test_scheduler_and_triggerer_run_a_deferred_task(airflow_cluster: AirflowCluster, statsd: StatsdListener) -> None:
    api = airflow_cluster.api
    started = time.monotonic()
    api.wait_for_dag("harness_deferred")
    run_id = api.trigger("harness_deferred")

    state = api.wait_for_run("harness_deferred", run_id, timeout=300)

    run_seconds = time.monotonic() - started
    assert state == "success", airflow_cluster.processes["scheduler"].log()[-4000:]
    assert api.task_states("harness_deferred", run_id) == {"wait": "success"}
    value = api.xcom("harness_deferred", run_id, "wait")
    assert value["resumed"] is True, value  # only the trigger's event resumes the task
    # The task went through the triggerer: it finished once as deferred (StatsD, from the scheduler's side).
    statsd.wait_for("airflow.ti.finish.harness_deferred.wait.deferred", timeout=30)
    memory = airflow_cluster.memory_mb()
    print(
        f"\n[airflow] cluster ready in {airflow_cluster.started_seconds:.1f}s; deferred run to success in "
        f"{run_seconds:.1f}s; memory (MB, with children): "
        + ", ".join(f"{name} {mb:.0f}" for name, mb in memory.items())
        + f", {sum(memory.values()):.0f} in all"
    )
