"""What the operator's caches keep of the objects it watches is what it reads: the runtime decides the same on a
cache of trimmed Deployments and JobManager pods as on whole objects (read from the API server), the fields a
watch event is judged by survive the trimming, and the bulk (pod templates, containers, managedFields) is gone.
The operator's memory at 100 deployments depends on it (benchmarks/kubernetes.py --resources-only)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fakes.specs import on_kubernetes
from flinkops.kube.informer import Informer, without_managed_fields
from flinkops.ports import ClusterKey
from flinkops.runtimes.kubernetes.cached import cached_deployment, cached_jobmanager_pod
from flinkops.runtimes.kubernetes.faults import pod_signature
from flinkops.runtimes.kubernetes.haleader import ended_instances
from flinkops.runtimes.kubernetes.names import generation_of
from flinkops.runtimes.kubernetes.pods import START_GATE
from flinkops.runtimes.kubernetes.render import MAIN_CONTAINER, ApplicationLaunch, render_cluster
from flinkops.runtimes.kubernetes.runtime import STARTED_POD_ANNOTATION, KubernetesRuntime

Obj = dict[str, Any]
KEY = ClusterKey("jobs", "demo")
DEPLOYMENTS = "/apis/apps/v1/namespaces/jobs/deployments"
PODS = "/api/v1/namespaces/jobs/pods"
MANAGED_FIELDS = [{"manager": "flinkops", "operation": "Apply", "fieldsV1": {"f:spec": {"f:template": {}}}}]


def _children() -> list[Obj]:
    resource = on_kubernetes(taskmanager_replicas=2, upgrade_mode=None)
    launch = ApplicationLaunch(job_id="0" * 32, jar_uri="local:///opt/flink/usrlib/job.jar")
    manifests = render_cluster(resource, {"taskmanager.numberOfTaskSlots": "1"}, generation=3, application=launch)
    deployments = [m for m in manifests if m["kind"] == "Deployment"]
    for number, deployment in enumerate(deployments):
        meta = deployment["metadata"]
        meta.update(resourceVersion=str(10 + number), creationTimestamp="2026-01-01T00:00:00Z")
        meta["managedFields"] = MANAGED_FIELDS
        deployment["status"] = {"replicas": 1, "readyReplicas": 0}
    return deployments


def _pod(name: str, uid: str, *, gated: bool, restarts: int = 0, version: int = 20) -> Obj:
    """A JobManager pod as the API server returns it: a full spec, a status with an IP and a terminated instance."""
    spec: Obj = {
        "containers": [{"name": MAIN_CONTAINER, "image": "flink:2.2", "env": [{"name": "X", "value": "y" * 500}]}],
        "volumes": [{"name": "conf", "configMap": {"name": "flink-config-demo"}}],
        "serviceAccountName": "flink",
    }
    if gated:
        spec["schedulingGates"] = [{"name": START_GATE}]
    main: Obj = {"name": MAIN_CONTAINER, "restartCount": restarts, "ready": False, "image": "flink:2.2"}
    main["state"] = {"waiting": {"reason": "ImagePullBackOff"}}
    if restarts:
        main["lastState"] = {"terminated": {"exitCode": 137, "finishedAt": "2026-01-01T00:00:09Z"}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "jobs",
            "uid": uid,
            "resourceVersion": str(version),
            "creationTimestamp": f"2026-01-01T00:00:0{name[-1]}Z",
            "labels": {"app": "demo", "component": "jobmanager", "app.kubernetes.io/managed-by": "flinkops"},
            "annotations": {"flinkops.io/generation": "3"},
            "managedFields": MANAGED_FIELDS,
        },
        "spec": spec,
        "status": {
            "phase": "Pending",
            "podIP": "10.0.0.7",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
            "containerStatuses": [main],
        },
    }


class FakeKube:
    """The KubeClient calls the runtime and its informers make, on whole objects kept by path; a watch waits
    until the test ends."""

    def __init__(self, objects: list[Obj]) -> None:
        self.objects = {
            f"{DEPLOYMENTS if o['kind'] == 'Deployment' else PODS}/{o['metadata']['name']}": copy.deepcopy(o)
            for o in objects
        }
        self.patches: list[tuple[str, Obj]] = []
        self.done = threading.Event()

    def get(self, path: str) -> Obj | None:
        found = self.objects.get(path)
        return copy.deepcopy(found) if found is not None else None

    def list(self, path: str, label_selector: str | None = None, **_: Any) -> Obj:
        wanted = dict(p.split("=", 1) for p in (label_selector or "").split(",") if "=" in p)
        items = [
            copy.deepcopy(o)
            for p, o in self.objects.items()
            if p.startswith(path + "/") and all(o["metadata"]["labels"].get(k) == v for k, v in wanted.items())
        ]
        return {"metadata": {"resourceVersion": "100"}, "items": items}

    def watch(self, path: str, **_: Any) -> Iterator[tuple[str, Obj]]:
        self.done.wait()
        return iter(())

    def patch(self, path: str, body: Obj, *, kind: str = "merge") -> Obj:
        self.patches.append((path, body))
        target = self.objects[path]
        annotations = (body.get("metadata") or {}).get("annotations") or {}
        target["metadata"].setdefault("annotations", {}).update(annotations)
        if "spec" in body:
            target["spec"].pop("schedulingGates", None)
        target["metadata"]["resourceVersion"] = str(int(target["metadata"]["resourceVersion"]) + 100)
        return copy.deepcopy(target)


@pytest.fixture
def cached_runtime() -> Iterator[Callable[[FakeKube], KubernetesRuntime]]:
    """A runtime on informers (as in the operator) over a fake API server: yields a factory."""
    kubes: list[FakeKube] = []
    runtimes: list[KubernetesRuntime] = []

    def make(kube: FakeKube) -> KubernetesRuntime:
        runtime = KubernetesRuntime(kube, ("jobs",))  # type: ignore[arg-type]
        runtime.start()
        assert runtime.wait_synced(10)
        kubes.append(kube)
        runtimes.append(runtime)
        return runtime

    yield make
    for runtime, kube in zip(runtimes, kubes, strict=True):
        runtime.stop()
        kube.done.set()


SCENARIOS = {
    "a gated pod waits for its start": lambda: [
        _pod("demo-1", "uid-1", gated=True),
        _pod("demo-2", "uid-2", gated=True),
    ],
    "the started pod restarted": lambda: [_pod("demo-1", "uid-1", gated=False, restarts=1)],
    "the started pod is gone": lambda: [],
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_runtime_decides_the_same_on_its_trimmed_cache_as_on_whole_objects(
    scenario: str, cached_runtime: Callable[[FakeKube], KubernetesRuntime]
) -> None:
    whole_kube, cached_kube = (FakeKube([*_children(), *SCENARIOS[scenario]()]) for _ in range(2))
    if scenario != "a gated pod waits for its start":
        for kube in (whole_kube, cached_kube):
            kube.objects[f"{DEPLOYMENTS}/demo"]["metadata"]["annotations"][STARTED_POD_ANNOTATION] = "3/uid-1"
    whole = KubernetesRuntime(whole_kube)  # type: ignore[arg-type]  # no informers: every read is a whole object
    cached = cached_runtime(cached_kube)

    for _ in range(2):  # the second pass sees what the first one wrote (a start is made once)
        assert cached.observe(KEY) == whole.observe(KEY)
    assert cached_kube.patches == whole_kube.patches
    if scenario == "a gated pod waits for its start":
        assert [path for path, _ in cached_kube.patches] == [f"{DEPLOYMENTS}/demo", f"{PODS}/demo-1"]


def test_a_cached_deployment_keeps_what_is_read_and_drops_the_template() -> None:
    jobmanager, taskmanager = _children()
    kept = cached_deployment(jobmanager)
    assert kept["spec"] == {"replicas": 1, "template": {"spec": {"schedulingGates": [{"name": START_GATE}]}}}
    assert generation_of(kept) == 3 and kept["status"] == jobmanager["status"]
    assert "managedFields" not in kept["metadata"] and kept["metadata"]["resourceVersion"] == "10"
    assert {k: v for k, v in kept["metadata"].items()} == without_managed_fields(jobmanager)["metadata"]
    assert cached_deployment(taskmanager)["spec"] == {"replicas": 2}  # never gated
    assert "managedFields" in jobmanager["metadata"] and "template" in taskmanager["spec"]  # inputs untouched


def test_a_cached_jobmanager_pod_keeps_its_gate_status_and_identity() -> None:
    pod = _pod("demo-1", "uid-1", gated=True, restarts=1)
    kept = cached_jobmanager_pod(pod)
    assert kept["spec"] == {"schedulingGates": [{"name": START_GATE}]}
    assert kept["status"] == pod["status"] and "managedFields" not in kept["metadata"]
    assert pod_signature(kept) == pod_signature(pod) == ("ImagePullBackOff", "Unschedulable")
    assert ended_instances(kept) == ended_instances(pod) != []
    assert ended_instances(kept, gone=True) == ended_instances(pod, gone=True)
    assert cached_jobmanager_pod(_pod("demo-2", "uid-2", gated=False))["spec"] == {}


def test_every_object_an_informer_holds_or_reports_went_through_its_transform() -> None:
    pods = [_pod("demo-1", "uid-1", gated=True)]
    kube = FakeKube(pods)
    seen: list[Obj] = []
    informer = Informer(
        kube,  # type: ignore[arg-type]
        PODS,
        on_change=lambda kind, obj: seen.append(obj),
        transform=cached_jobmanager_pod,
    ).start()
    try:
        assert informer.wait_synced(10)
        assert informer.objects() == seen == [cached_jobmanager_pod(pods[0])]
        newer = _pod("demo-1", "uid-1", gated=False, version=30)
        informer.remember(newer)  # a write of this process
        assert informer.get("jobs", "demo-1") == cached_jobmanager_pod(newer)
    finally:
        informer.stop()
        kube.done.set()
    plain = Informer(kube, PODS)  # type: ignore[arg-type]
    plain.remember(pods[0])
    assert plain.get("jobs", "demo-1") == without_managed_fields(pods[0])
