"""Resources for behaviour tests, written the way users write them (CRD-shaped mappings, loaded like YAML).

``application`` is an application-mode FlinkDeployment whose job args name its version (``["v1"]``), so a test
can tell which version ran and script a version's behaviour (``FakeFlink.script("v3", ...)``);
``session_cluster`` and ``session_job`` are a session-mode FlinkDeployment and a FlinkSessionJob on it;
``on_kubernetes`` is the FlinkDeployment ``jobs/demo`` as the Kubernetes runtime's unit tests render it (an
image, sized components, uid and generation set).

Called by: behaviour tests and ``fakes.world`` users.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flinkops.api.loader import load_object
from flinkops.api.models import FlinkDeployment, FlinkSessionJob

__all__ = ["CHECKPOINTING", "application", "on_kubernetes", "session_cluster", "session_job"]

#: Checkpoint every virtual second (the fake Flink reads the rendered configuration).
CHECKPOINTING: Mapping[str, str] = {"execution.checkpointing.interval": "1 s"}
JAR = "local:///opt/flink/usrlib/job.jar"


def application(
    name: str,
    *,
    args: Sequence[str] = ("v1",),
    mode: str = "last-state",
    conf: Mapping[str, str | None] | None = None,
    parallelism: int = 1,
    state: str = "running",
    namespace: str = "default",
    entry_class: str = "com.example.Counter",
    jobmanager_replicas: int | None = None,
    taskmanager_replicas: int | None = None,
    **job: Any,
) -> FlinkDeployment:
    """An application-mode deployment checkpointing every second; ``conf`` adds flinkConfiguration keys (None
    removes one), ``job`` adds JobSpec fields in their YAML spelling (``initialSavepointPath``...)."""
    merged = {**CHECKPOINTING, **(conf or {})}
    spec: dict[str, Any] = {
        "flinkVersion": "v2_2",
        "flinkConfiguration": {k: v for k, v in merged.items() if v is not None},
        "job": {
            "jarURI": JAR,
            "entryClass": entry_class,
            "args": list(args),
            "parallelism": parallelism,
            "upgradeMode": mode,
            "state": state,
            **job,
        },
    }
    if jobmanager_replicas is not None:
        spec["jobManager"] = {"replicas": jobmanager_replicas}
    if taskmanager_replicas is not None:
        spec["taskManager"] = {"replicas": taskmanager_replicas}
    resource = load_object(_document("FlinkDeployment", name, namespace, spec))
    assert isinstance(resource, FlinkDeployment)
    return resource


def session_cluster(name: str, *, conf: Mapping[str, str] | None = None, namespace: str = "default") -> FlinkDeployment:
    """A session-mode deployment (no job) with one TaskManager of two slots."""
    spec = {
        "flinkVersion": "v2_2",
        "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2", **CHECKPOINTING, **(conf or {})},
        "taskManager": {"replicas": 1},
    }
    resource = load_object(_document("FlinkDeployment", name, namespace, spec))
    assert isinstance(resource, FlinkDeployment)
    return resource


def session_job(
    name: str,
    deployment: str,
    *,
    args: Sequence[str] = ("v1",),
    mode: str = "last-state",
    state: str = "running",
    conf: Mapping[str, str] | None = None,
    namespace: str = "default",
    **job: Any,
) -> FlinkSessionJob:
    spec: dict[str, Any] = {
        "deploymentName": deployment,
        "job": {
            "jarURI": "file:///jobs/counter.jar",
            "entryClass": "com.example.Counter",
            "args": list(args),
            "parallelism": 1,
            "upgradeMode": mode,
            "state": state,
            **job,
        },
    }
    if conf:
        spec["flinkConfiguration"] = dict(conf)
    resource = load_object(_document("FlinkSessionJob", name, namespace, spec))
    assert isinstance(resource, FlinkSessionJob)
    return resource


def on_kubernetes(
    *,
    generation: int = 3,
    conf: Mapping[str, str] | None = None,
    mode: str | None = "standalone",
    jobmanager_replicas: int = 1,
    taskmanager_replicas: int | None = None,
    upgrade_mode: str | None = "savepoint",
    job: bool = True,
) -> FlinkDeployment:
    """``jobs/demo`` (uid ``u-1``) with the image ``flink:2.2`` and components of 1g / 0.25 CPU; ``mode=None`` and
    ``upgrade_mode=None`` leave those fields out, ``job=False`` makes it a session cluster."""
    spec: dict[str, Any] = {
        "image": "flink:2.2",
        "flinkVersion": "v2_2",
        "flinkConfiguration": dict(conf or {}),
        "jobManager": {"replicas": jobmanager_replicas, "resource": {"memory": "1g", "cpu": 0.25}},
        "taskManager": {"resource": {"memory": "1g", "cpu": 0.25}},
    }
    if mode is not None:
        spec["mode"] = mode
    if taskmanager_replicas is not None:
        spec["taskManager"]["replicas"] = taskmanager_replicas
    if job:
        spec["job"] = {"jarURI": JAR, "entryClass": "a.Job"}
        if upgrade_mode is not None:
            spec["job"]["upgradeMode"] = upgrade_mode
    document = _document("FlinkDeployment", "demo", "jobs", spec)
    document["metadata"].update(uid="u-1", generation=generation)
    return FlinkDeployment.model_validate(document)


def _document(kind: str, name: str, namespace: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": dict(spec),
    }
