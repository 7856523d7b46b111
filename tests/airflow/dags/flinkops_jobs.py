"""DAGs of the provider's live tests (tests/airflow/test_provider_live.py): one flinkops task each, its job given
by the run's conf, so each test picks the jar, entry class, arguments and resource name.

conf: ``name`` (the FlinkDeployment's name), ``jar``, ``entry``, ``args`` (a list), ``batch`` (true: BATCH runtime
mode), ``parallelism`` (default 1).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag

from flinkops_airflow.operators import FlinkDeploymentOperator

START = pendulum.datetime(2024, 1, 1, tz="UTC")

JOB = """\
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: placeholder
spec:
  flinkVersion: v2_2
  flinkConfiguration:
    execution.runtime-mode: "{{ 'BATCH' if dag_run.conf.get('batch') else 'STREAMING' }}"
    taskmanager.numberOfTaskSlots: "1"
    restart-strategy.type: none
  jobManager:
    resource: {memory: "1024m", cpu: 1}
  taskManager:
    resource: {memory: "1024m", cpu: 1}
  job:
    jarURI: "{{ dag_run.conf['jar'] }}"
    entryClass: "{{ dag_run.conf['entry'] }}"
    args: {{ dag_run.conf.get('args', []) | tojson }}
    parallelism: {{ dag_run.conf.get('parallelism', 1) }}
    upgradeMode: stateless
"""

NAME = "{{ dag_run.conf['name'] }}"


@dag(dag_id="flinkops_job", schedule=None, start_date=START, catchup=False)
def flinkops_job() -> None:
    """Deferred: the trigger waits for the job's end in the triggerer (or inline, under `dags test`). One retry,
    as production DAGs have: Airflow 3.3's scheduler can fail a resumed task on the stale "success" of its
    deferral (apache/airflow#72716) when the trigger fires within seconds; the retry reattaches to the job (or
    takes its recorded outcome) instead of running it again."""
    FlinkDeploymentOperator(task_id="run", application_file=JOB, name=NAME, retries=1, retry_delay=timedelta(seconds=1))


@dag(dag_id="flinkops_job_sync", schedule=None, start_date=START, catchup=False)
def flinkops_job_sync() -> None:
    """Waits in the worker (deferrable=False): a worker that dies mid-job leaves the job to the next attempt."""
    FlinkDeploymentOperator(task_id="run", application_file=JOB, name=NAME, deferrable=False)


@dag(dag_id="flinkops_reattach", schedule=None, start_date=START, catchup=False)
def flinkops_reattach() -> None:
    """As flinkops_job_sync, for the worker that dies mid-job (its runs are its own)."""
    FlinkDeploymentOperator(task_id="run", application_file=JOB, name=NAME, deferrable=False)


@dag(dag_id="flinkops_bad_input", schedule=None, start_date=START, catchup=False)
def flinkops_bad_input() -> None:
    """Input that must fail at once: the run's job (conf) and a connection that does not exist. Its failures are
    its own in the watchdog's counts."""
    FlinkDeploymentOperator(task_id="run", application_file=JOB, name=NAME)
    FlinkDeploymentOperator(
        task_id="no_connection", application_file=JOB, name="no-connection", flinkops_conn_id="flinkops_nowhere"
    )


flinkops_job()
flinkops_job_sync()
flinkops_bad_input()
flinkops_reattach()
