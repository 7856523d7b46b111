"""DAGs that prove the test harness (tests/airflow/test_airflow_harness.py): a plain Task SDK task, and a task
that defers to the standard provider's DateTimeTrigger (run by the triggerer, or inline by ``airflow dags test``)
and pushes an XCom from the method it resumes in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pendulum
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import BaseOperator, Context, dag, task

START = pendulum.datetime(2024, 1, 1, tz="UTC")


class DeferThenAnswer(BaseOperator):
    """Defers for ``seconds`` (always: the moment is taken when the task runs), then returns what it resumed with."""

    def __init__(self, *, seconds: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seconds = seconds

    def execute(self, context: Context) -> None:
        moment = datetime.now(UTC) + timedelta(seconds=self.seconds)
        self.defer(trigger=DateTimeTrigger(moment=moment), method_name="resume")

    def resume(self, context: Context, event: Any = None) -> dict[str, Any]:
        return {"resumed": True, "event": str(event)}


@dag(dag_id="harness_hello", schedule=None, start_date=START, catchup=False)
def harness_hello() -> None:
    @task
    def greet() -> dict[str, str]:
        return {"greeting": "hello"}

    greet()


@dag(dag_id="harness_deferred", schedule=None, start_date=START, catchup=False)
def harness_deferred() -> None:
    DeferThenAnswer(task_id="wait", seconds=2)


harness_hello()
harness_deferred()
