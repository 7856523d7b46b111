"""``FlinkDeploymentSensor``: wait for a flinkops resource someone else created to reach its real outcome.

Unlike a sensor that calls a batch job done when its JobManager is READY, it succeeds only when the job FINISHED
(``wait_until="finished"``) or runs and was judged STABLE (``"stable"``), fails at once with Flink's root cause
when the job FAILED, and gives the same answer hours after the end (the run history outlives the cluster).
Deferrable by default: the wait happens in the triggerer, following the resource, with no fixed poke interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue
from airflow.sdk.exceptions import AirflowException

from flinkops.ports import ResourceKey
from flinkops.service.outcomes import JobOutcome, WaitUntil, outcome, wait_until_of
from flinkops_airflow.hooks import FlinkopsHook
from flinkops_airflow.triggers import FlinkDeploymentTrigger

__all__ = ["FlinkDeploymentSensor"]


class FlinkDeploymentSensor(BaseSensorOperator):
    template_fields: Sequence[str] = ("name", "namespace")

    def __init__(
        self,
        *,
        name: str,
        namespace: str | None = None,
        kind: str = "FlinkDeployment",
        wait_until: str = "finished",
        flinkops_conn_id: str = FlinkopsHook.default_conn_name,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", 5.0)
        super().__init__(**kwargs)
        if kind not in ("FlinkDeployment", "FlinkSessionJob"):
            raise ValueError(f"{self.task_id}: kind must be FlinkDeployment or FlinkSessionJob, not {kind!r}")
        self.name, self.namespace, self.kind = name, namespace, kind
        self.wait_until: WaitUntil = wait_until_of(wait_until, self.task_id)
        self.flinkops_conn_id = flinkops_conn_id
        self.deferrable = deferrable

    def _key(self, hook: FlinkopsHook) -> ResourceKey:
        return ResourceKey(self.kind, self.namespace or hook.namespace, self.name)

    def _decide(self, found: JobOutcome) -> PokeReturnValue:
        if not found.succeeded:
            self.log.error("%s/%s: job %s FAILED:\n%s", found.namespace, found.name, found.job_id, found.error)
            raise AirflowException(
                f"{found.kind} {found.namespace}/{found.name}: job FAILED: {found.cause or 'failed'}"
            )
        return PokeReturnValue(is_done=True, xcom_value=found.as_dict())

    def poke(self, context: Context) -> bool | PokeReturnValue:
        hook = FlinkopsHook(self.flinkops_conn_id)
        key = self._key(hook)
        current = hook.get(key)
        # The sensor waits for a resource's outcome: one that is not there (yet) is waited for, not a failure.
        if current is None:
            self.log.info("%s does not exist (yet)", key)
            return False
        found = outcome(current, self.wait_until, current.metadata.generation or 1)
        return self._decide(found) if found is not None else False

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        hook = FlinkopsHook(self.flinkops_conn_id)
        key = self._key(hook)
        current = hook.get(key)
        if current is not None:
            found = outcome(current, self.wait_until, current.metadata.generation or 1)
            if found is not None:
                return self._decide(found).xcom_value
        generation = (current.metadata.generation or 1) if current is not None else 1
        self.defer(
            trigger=FlinkDeploymentTrigger(
                flinkops_conn_id=self.flinkops_conn_id,
                kind=key.kind,
                namespace=key.namespace,
                name=key.name,
                generation=generation,
                wait_until=self.wait_until,
                delete_on_kill=False,  # the sensor did not create it
                wait_for_creation=current is None,
            ),
            method_name="execute_complete",
            timeout=self.execution_timeout,
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        if event.get("status") != "done":
            raise AirflowException(f"waiting for the job failed: {event.get('message', event)}")
        return self._decide(JobOutcome.from_dict(event["outcome"])).xcom_value
