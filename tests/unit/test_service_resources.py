"""service.resources: get and list read stored objects without building models, yet show exactly what the
models would (the ``-o json`` shape), and names resolve to one resource or a clear error."""

from __future__ import annotations

import json

import pytest

from flinkops.api.loader import dump_resource
from flinkops.api.models import (
    Condition,
    FlinkDeploymentStatus,
    FlinkSessionJobStatus,
    JobManagerDeploymentStatus,
    JobStatus,
    LifecycleState,
    ObjectMeta,
)
from flinkops.errors import InvalidInput, NotFound
from flinkops.ports import ResourceKey
from flinkops.service import apply, get, list_resources, resolve
from flinkops.service.resources import kind_named
from support.service import TestTarget, deployment, session_cluster, session_job

KEY = ResourceKey("FlinkDeployment", "default", "fraud")


def running_status() -> FlinkDeploymentStatus:
    return FlinkDeploymentStatus(
        job_status=JobStatus(job_id="a" * 32, state="RUNNING", job_name="fraud"),
        lifecycle_state=LifecycleState.STABLE,
        job_manager_deployment_status=JobManagerDeploymentStatus.READY,
        cluster_info={"rest-url": "http://127.0.0.1:8081"},
        observed_generation=1,
        error="first line\nsecond line",
        conditions=[Condition(type="Ready", status="True", reason="JobRunning")],
    )


def test_a_listing_shows_what_the_models_would(target: TestTarget) -> None:
    stored = target.store()
    (applied,) = apply(target, [deployment()])
    stored.update_status(applied.resource.model_copy(update={"status": running_status()}))
    apply(target, [session_cluster(), session_job()])
    views = list_resources(target)
    models = stored.list_resources()
    assert [v.key for v in views] == [ResourceKey.of(m) for m in models]
    for view, model in zip(views, models, strict=True):
        # Same content and the same key order: `get -o json` prints the same text as dumping the model.
        assert json.dumps(dict(view.document)) == json.dumps(dump_resource(model))
        assert view.model() == model
    fraud = get(target, "fraud")
    assert (fraud.lifecycle, fraud.job_state, fraud.job_id) == ("STABLE", "RUNNING", "a" * 32)
    assert (fraud.jobmanager, fraud.rest_url, fraud.generation) == ("READY", "http://127.0.0.1:8081", 1)
    assert fraud.error == "first line\nsecond line" and fraud.created is not None
    job = get(target, "sj", kind="FlinkSessionJob")
    assert (job.lifecycle, job.job_state, job.jobmanager, job.rest_url) == ("CREATED", None, None, None)


def test_lifecycle_is_deleting_once_deletion_was_asked_for(target: TestTarget) -> None:
    apply(target, [deployment()])
    target.store().request_deletion(KEY)
    assert get(target, "fraud").lifecycle == LifecycleState.DELETING.value


def test_a_session_job_status_without_a_lifecycle_reads_as_created(target: TestTarget) -> None:
    apply(target, [session_cluster(), session_job()])
    store = target.store()
    job = store.get(ResourceKey("FlinkSessionJob", "default", "sj"))
    assert job is not None
    store.update_status(job.model_copy(update={"status": FlinkSessionJobStatus()}))
    assert get(target, "sj").lifecycle == LifecycleState.CREATED.value


def test_namespaces_and_kinds_filter(target: TestTarget) -> None:
    other = deployment().model_copy(update={"metadata": ObjectMeta(name="fraud", namespace="payments")})
    apply(target, [deployment(), other, session_cluster()])
    assert [v.name for v in list_resources(target)] == ["fraud", "session"]
    assert [v.namespace for v in list_resources(target, namespace=None)] == ["default", "default", "payments"]
    assert list_resources(target, "FlinkSessionJob") == []
    assert get(target, "fraud", "payments").namespace == "payments"
    assert kind_named("FD") == "FlinkDeployment" and kind_named("sessionjobs") == "FlinkSessionJob"
    assert kind_named("pods") is None


def test_a_name_is_one_resource_or_a_clear_error(target: TestTarget) -> None:
    with pytest.raises(NotFound, match="'nope' in namespace 'default'"):
        get(target, "nope")
    apply(target, [session_cluster("twin"), session_job("twin", cluster="twin")])
    with pytest.raises(InvalidInput) as exc:
        get(target, "twin")
    assert exc.value.problems[0].path == "NAME"
    assert get(target, "twin", kind="FlinkSessionJob").kind == "FlinkSessionJob"
    assert resolve(target, "twin", kind="FlinkDeployment").kind == "FlinkDeployment"
    with pytest.raises(InvalidInput):
        resolve(target, "twin")
