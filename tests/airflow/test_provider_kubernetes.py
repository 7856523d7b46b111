"""The provider on a Kubernetes target: a real kube-apiserver (with flinkops' CRDs), a ``flinkops`` connection of
target ``kubernetes`` naming its kubeconfig, and the operator, trigger and hook as Airflow runs them. Nothing
reconciles on this API server: the test writes the statuses the flinkops operator would (the operator itself runs
Flink on a real node in tests/kubernetes). What this proves is the Airflow side on Kubernetes: the task's resource
is created there through the service layer, a retry reattaches by name and spec, the trigger follows the object
with a watch (a FINISHED job ends the task once its run is closed, a failed one resumes it to fail with Flink's
cause), and a killed task deletes the resource."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred
from airflow.triggers.base import TaskSuccessEvent

from flinkops.api.models import LifecycleState
from flinkops.ports import ResourceKey
from flinkops.service.target import KubernetesTarget
from flinkops_airflow.operators import FlinkDeploymentOperator
from flinkops_airflow.triggers import FlinkDeploymentTrigger
from support.controller_double import FakeTI, record
from support.kube import KubeCluster, install_crds, kube_control_plane

CONN = "flinkops_kube"
JOB = """\
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: placeholder
spec:
  image: flink:2.2
  flinkVersion: v2_2
  job:
    jarURI: local:///opt/flink/examples/streaming/WordCount.jar
    args: ["--execution-mode", "BATCH"]
    parallelism: 1
    upgradeMode: stateless
"""


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    with kube_control_plane(tmp_path_factory.mktemp("kube")) as cluster:
        with cluster.client() as admin:
            install_crds(admin)
        yield cluster


@pytest.fixture
def where(kube: KubeCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[KubernetesTarget, str]]:
    """A namespace of its own, and the connection ``flinkops_kube`` defaulting to it."""
    namespace = f"airflow-{uuid.uuid4().hex[:6]}"
    with kube.client() as admin:
        admin.post("/api/v1/namespaces", json={"metadata": {"name": namespace}}).raise_for_status()
        extra = {"target": "kubernetes", "kubeconfig": str(kube.kubeconfig), "namespace": namespace}
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps({"conn_type": "flinkops", "extra": extra}))
        try:
            yield KubernetesTarget(kubeconfig=str(kube.kubeconfig)), namespace
        finally:
            admin.delete(f"/api/v1/namespaces/{namespace}")


def operator(**kwargs: Any) -> FlinkDeploymentOperator:
    return FlinkDeploymentOperator(
        task_id="run", application_file=JOB, flinkops_conn_id=CONN, ui_link_timeout=0.5, **kwargs
    )


def deferred(op: FlinkDeploymentOperator) -> FlinkDeploymentTrigger:
    with pytest.raises(TaskDeferred) as raised:
        op.execute({"ti": FakeTI()})  # type: ignore[arg-type]
    trigger = raised.value.trigger
    assert isinstance(trigger, FlinkDeploymentTrigger)
    return FlinkDeploymentTrigger(**trigger.serialize()[1])  # as the triggerer rebuilds it


def test_on_kubernetes_a_task_creates_its_resource_a_retry_reattaches_and_the_trigger_ends_it(
    where: tuple[KubernetesTarget, str],
) -> None:
    target, namespace = where
    key = ResourceKey("FlinkDeployment", namespace, "conv")
    trigger = deferred(operator(name="conv"))
    created = target.store().get(key)
    assert created is not None and created.metadata.generation == 1, "the task's resource is on the API server"
    assert (trigger.namespace, trigger.generation, trigger.end_task) == (namespace, 1, True)
    record(target, "conv", namespace=namespace, state="RUNNING", lifecycle=LifecycleState.STABLE)
    running = target.store().get(key)
    assert running is not None

    # A retried task (a worker that died) finds the same resource and spec: it waits for it, submits nothing.
    again = deferred(operator(name="conv"))
    after = target.store().get(key)
    assert after is not None and after.metadata.resource_version == running.metadata.resource_version
    assert again.generation == 1

    async def scenario() -> tuple[Any, float]:
        events = trigger.run()
        waiting = asyncio.ensure_future(events.__anext__())
        await asyncio.to_thread(
            record, target, "conv", namespace=namespace, state="FINISHED", lifecycle=LifecycleState.STABLE, closed=False
        )
        await asyncio.sleep(1.0)
        assert not waiting.done(), "ended the task before the run record held the job's figures"
        closed_at = time.monotonic()
        await asyncio.to_thread(
            record, target, "conv", namespace=namespace, state="FINISHED", lifecycle=LifecycleState.STABLE,
            result={"rows": "12"},
        )  # fmt: skip
        event = await asyncio.wait_for(waiting, 30)
        return event, time.monotonic() - closed_at

    event, latency = asyncio.run(scenario())
    assert isinstance(event, TaskSuccessEvent) and event.xcoms is not None
    value = event.xcoms["return_value"]
    assert isinstance(value, dict) and value["state"] == "finished" and value["accumulators"] == {"rows": "12"}
    assert latency < 2.0, f"the watch took {latency:.1f} s to bring the job's end"
    assert target.store().get(key) is None, "delete_on_termination=on_success: the resource is gone"


def test_on_kubernetes_a_failed_job_resumes_the_task_which_fails_with_flinks_cause(
    where: tuple[KubernetesTarget, str],
) -> None:
    target, namespace = where
    op = operator(name="conv-bad")
    trigger = deferred(op)
    cause = "java.lang.IllegalStateException: partner table missing"
    record(
        target, "conv-bad", namespace=namespace, state="FAILED", lifecycle=LifecycleState.FAILED,
        error=f"org.apache.flink.runtime.JobException: Recovery is suppressed\nCaused by: {cause}",
    )  # fmt: skip

    async def first() -> Any:
        return await asyncio.wait_for(trigger.run().__anext__(), 30)

    event = asyncio.run(first())
    assert not isinstance(event, TaskSuccessEvent) and event.payload["outcome"]["state"] == "failed"
    with pytest.raises(AirflowException) as failed:
        op.execute_complete({"ti": FakeTI()}, event.payload)  # type: ignore[arg-type]
    assert cause in str(failed.value)
    assert target.store().get(ResourceKey("FlinkDeployment", namespace, "conv-bad")) is not None, "kept for describe"


def test_on_kubernetes_a_killed_deferred_task_deletes_its_resource(where: tuple[KubernetesTarget, str]) -> None:
    target, namespace = where
    trigger = deferred(operator(name="conv-killed"))
    record(target, "conv-killed", namespace=namespace, state="RUNNING", lifecycle=LifecycleState.STABLE)
    asyncio.run(trigger.on_kill())
    assert target.store().get(ResourceKey("FlinkDeployment", namespace, "conv-killed")) is None


def test_on_kubernetes_an_invalid_resource_creates_nothing(where: tuple[KubernetesTarget, str]) -> None:
    target, namespace = where

    bad = JOB.replace("upgradeMode: stateless", "upgradeMode: sometimes")
    with pytest.raises(AirflowFailException) as failed:
        FlinkDeploymentOperator(task_id="run", application_file=bad, name="conv", flinkops_conn_id=CONN).execute(
            {"ti": FakeTI()}  # type: ignore[arg-type]
        )
    assert "spec.job.upgradeMode" in str(failed.value)
    assert target.store().list_resources(namespace=namespace) == [], "nothing was created"
