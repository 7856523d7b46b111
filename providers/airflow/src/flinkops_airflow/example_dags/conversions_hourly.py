"""The seed's hourly conversions batch as an Airflow DAG: every hour one FlinkDeployment (one Flink cluster) of
its own, named after the run, waited for until the job's real end, deleted when it succeeded; its counters
(records, groups) are the task's XCom.

Params: ``jar`` (the example jobs' jar: ``python -m flinkops.dev.example_jobs`` builds it), ``input`` and
``output`` (``s3://...`` on the S3 of ``flinkops dev up s3`` or in the cloud, or ``file:///...`` on one machine).
The ``flinkops_default`` connection says where the job runs (local runtime or a Kubernetes cluster).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag

from flinkops_airflow.operators import FlinkDeploymentOperator

JAR = "examples/jobs/target/flinkops-examples.jar"


@dag(
    dag_id="conversions_hourly",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={
        "jar": Param(JAR, type="string"),
        "input": Param("s3://conversions/raw/", type="string"),
        "output": Param("s3://conversions/hourly", type="string"),
    },
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30)},
    tags=["flinkops", "batch"],
)
def conversions_hourly() -> None:
    FlinkDeploymentOperator(
        task_id="conversions",
        application_file="conversions-batch.yaml",
        # One cluster per run: the name carries the run's hour (a retry reattaches to the same one).
        name="conversions-{{ dag_run.run_after.strftime('%Y%m%dt%H%M') }}",
        namespace="ads",
        wait_until="finished",
        delete_on_termination="on_success",
    )


conversions_hourly()
