"""The Kubernetes runtime's side of running real Flink, without an API server: how the operator reaches a
JobManager (its REST Service's DNS name, or its ClusterIP from outside the cluster), how a JobManager without HA
starts its job once (the start gate lifted for the first pod of a generation, a lost pod reported dead), which
ConfigMaps count as Flink's HA metadata, and that S3 keys in a spec are refused on Kubernetes with the way out.
The same behaviours run for real on the dev node in tests/kubernetes/test_flink_on_node.py."""

from __future__ import annotations

import copy
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from fakes.specs import on_kubernetes
from flinkops.api.models import FlinkDeployment
from flinkops.errors import PermanentError
from flinkops.ports import ClusterKey
from flinkops.provisioning.pods import PodProvisioner
from flinkops.runtimes.kubernetes.pods import START_GATE
from flinkops.runtimes.kubernetes.render import MAIN_CONTAINER, ApplicationLaunch, render_cluster
from flinkops.runtimes.kubernetes.runtime import (
    REST_ADDRESS_CLUSTER_IP,
    STARTED_POD_ANNOTATION,
    KubernetesRuntime,
    is_ha_config_map_name,
)

Obj = dict[str, Any]
KEY = ClusterKey("jobs", "demo")
JM_PATH = "/apis/apps/v1/namespaces/jobs/deployments/demo"


def _resource(conf: dict[str, str] | None = None, replicas: int = 1) -> FlinkDeployment:
    return on_kubernetes(conf=conf, jobmanager_replicas=replicas)


def _jobmanager(manifests: list[Obj]) -> Obj:
    (found,) = [m for m in manifests if m["kind"] == "Deployment" and m["metadata"]["name"] == "demo"]
    return found


def _render(conf: dict[str, str] | None = None, *, replicas: int = 1, application: bool = True) -> Obj:
    resource = _resource(conf, replicas)
    launch = ApplicationLaunch(job_id="0" * 32, jar_uri="local:///opt/flink/usrlib/job.jar") if application else None
    config = {"taskmanager.numberOfTaskSlots": "1", **(conf or {})}
    return _jobmanager(render_cluster(resource, config, generation=3, application=launch))


def test_a_jobmanager_without_ha_starts_behind_the_gate_and_runs_its_entrypoint_once() -> None:
    spec = _render()["spec"]["template"]["spec"]
    assert spec["schedulingGates"] == [{"name": START_GATE}]
    (main,) = [c for c in spec["containers"] if c["name"] == MAIN_CONTAINER]
    assert main["command"][:2] == ["/bin/sh", "-c"] and main["command"][-1] == "/docker-entrypoint.sh"
    guard = main["command"][2]
    assert 'exec "$@"' in guard
    # The restarted container waits, and stops when its pod is deleted (PID 1 ignores an unhandled SIGTERM).
    waiting = guard.split("; fi;")[0]
    assert "trap 'kill $!; exit 0' TERM" in waiting and "wait" in waiting and "exec sleep" not in waiting
    mounted = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
    assert any(v.get("emptyDir") == {} and v["name"] in mounted for v in spec["volumes"])


def test_the_start_once_guard_runs_once_and_a_restarted_container_stops_at_once_on_sigterm(tmp_path: Path) -> None:
    """The guard itself, run by sh with its run directory in a temporary one: the first start runs the command;
    a second start (a restarted container) runs nothing and waits, and SIGTERM ends that wait at once (a pod
    delete then takes no grace period)."""
    (main,) = [c for c in _render()["spec"]["template"]["spec"]["containers"] if c["name"] == MAIN_CONTAINER]
    script = main["command"][2].replace("/flinkops-run", str(tmp_path))
    marker = tmp_path / "ran"
    first = subprocess.run(["/bin/sh", "-c", script, "guard", "touch", str(marker)], timeout=30, check=True)
    assert first.returncode == 0 and marker.exists()
    marker.unlink()
    second = subprocess.Popen(["/bin/sh", "-c", script, "guard", "touch", str(marker)], stderr=subprocess.PIPE)
    with pytest.raises(subprocess.TimeoutExpired):
        second.wait(timeout=1.0)  # waits for the operator instead of running the command again
    started = time.monotonic()
    second.send_signal(signal.SIGTERM)
    # the shell and its sleep both end (the sleep held the pipe open: communicate() would wait for it)
    _, err = second.communicate(timeout=5)
    assert second.returncode == 0 and time.monotonic() - started < 2
    assert not marker.exists()
    assert b"must not start its job again" in err


@pytest.mark.parametrize(
    ("conf", "replicas", "application"),
    [
        ({"high-availability.type": "kubernetes", "execution.checkpointing.dir": "s3://b/cp"}, 2, True),
        ({}, 1, False),  # a session cluster: its jobs are resubmitted from their checkpoints by the controller
    ],
)
def test_ha_and_session_jobmanagers_start_freely(conf: dict[str, str], replicas: int, application: bool) -> None:
    spec = _render(conf, replicas=replicas, application=application)["spec"]["template"]["spec"]
    assert "schedulingGates" not in spec
    (main,) = [c for c in spec["containers"] if c["name"] == MAIN_CONTAINER]
    assert main["command"] == ["/docker-entrypoint.sh"]


class FakeKube:
    """The few KubeClient calls the runtime makes here, on objects kept by path."""

    def __init__(self) -> None:
        self.objects: dict[str, Obj] = {}
        self.calls: list[tuple[str, str, Any]] = []

    def get(self, path: str) -> Obj | None:
        found = self.objects.get(path)
        return copy.deepcopy(found) if found is not None else None

    def list(self, path: str, label_selector: str | None = None) -> Obj:
        wanted = dict(p.split("=", 1) for p in (label_selector or "").split(",") if "=" in p and "!" not in p)
        items = [
            copy.deepcopy(o)
            for p, o in self.objects.items()
            if p.startswith(path + "/")
            and all((o["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
        ]
        return {"items": items}

    def patch(self, path: str, body: Obj, *, kind: str = "merge") -> Obj:
        self.calls.append(("patch", path, body))
        target = self.objects[path]
        for section, values in body.items():
            for field, value in values.items():
                if value is None:
                    target[section].pop(field, None)
                elif isinstance(value, dict):
                    target[section].setdefault(field, {}).update(value)
                else:
                    target[section][field] = value
        return copy.deepcopy(target)


def _pod(name: str, uid: str, *, gated: bool, restarts: int = 0, deleting: bool = False) -> Obj:
    meta: Obj = {
        "name": name,
        "namespace": "jobs",
        "uid": uid,
        "creationTimestamp": f"2026-01-01T00:00:0{name[-1]}Z",
        "labels": {"app": "demo", "component": "jobmanager"},
        "annotations": {"flinkops.io/generation": "3"},
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    spec: Obj = {"schedulingGates": [{"name": START_GATE}]} if gated else {}
    status = {"containerStatuses": [{"name": MAIN_CONTAINER, "restartCount": restarts}]}
    return {"metadata": meta, "spec": spec, "status": status}


def _cluster(kube: FakeKube, *pods: Obj) -> KubernetesRuntime:
    jm = _render()
    jm["status"] = {"readyReplicas": 0}
    kube.objects[JM_PATH] = jm
    for pod in pods:
        kube.objects[f"/api/v1/namespaces/jobs/pods/{pod['metadata']['name']}"] = pod
    return KubernetesRuntime(kube)  # type: ignore[arg-type]


def test_the_first_pod_of_a_generation_is_recorded_then_started_and_only_once() -> None:
    kube = FakeKube()
    runtime = _cluster(kube, _pod("demo-1", "uid-1", gated=True), _pod("demo-2", "uid-2", gated=True))

    observed = runtime.observe(KEY)

    assert observed is not None and observed.jobmanagers_alive == 1
    stamp, ungate = kube.calls
    assert stamp == ("patch", JM_PATH, {"metadata": {"annotations": {STARTED_POD_ANNOTATION: "3/uid-1"}}})
    assert ungate == ("patch", "/api/v1/namespaces/jobs/pods/demo-1", {"spec": {"schedulingGates": None}})
    runtime.observe(KEY)
    assert len(kube.calls) == 2  # recorded: the second pod is never started


def test_a_start_made_by_the_pod_watch_during_a_pass_is_not_made_again() -> None:
    """The pod watch lifts the gate between a pass's read of the Deployment and its own attempt: the pass must
    see the start recorded and leave the second pod gated."""
    kube = FakeKube()
    second = _pod("demo-2", "uid-2", gated=True)
    runtime = _cluster(kube, _pod("demo-1", "uid-1", gated=True), second)
    read = kube.get

    def get_then_watch_event(path: str) -> Obj | None:
        found = read(path)
        if path == JM_PATH and not kube.calls:  # the pass has its copy: now the watch reports a gated pod
            runtime._on_pod_change("MODIFIED", second)
        return found

    kube.get = get_then_watch_event  # type: ignore[method-assign]

    observed = runtime.observe(KEY)

    assert observed is not None and observed.jobmanagers_alive == 1
    assert [path for _, path, _ in kube.calls] == [JM_PATH, "/api/v1/namespaces/jobs/pods/demo-1"]
    assert kube.objects["/api/v1/namespaces/jobs/pods/demo-2"]["spec"]["schedulingGates"] == [{"name": START_GATE}]


@pytest.mark.parametrize(
    "started",
    [
        _pod("demo-1", "uid-1", gated=False, restarts=1),  # its container restarted (and waits)
        _pod("demo-1", "uid-1", gated=False, deleting=True),
        None,  # gone; the ReplicaSet's replacement stays gated
    ],
)
def test_a_lost_jobmanager_pod_is_reported_dead_and_its_replacement_stays_gated(started: Obj | None) -> None:
    kube = FakeKube()
    pods = [_pod("demo-2", "uid-2", gated=True)] + ([started] if started else [])
    runtime = _cluster(kube, *pods)
    kube.objects[JM_PATH]["metadata"]["annotations"][STARTED_POD_ANNOTATION] = "3/uid-1"

    observed = runtime.observe(KEY)

    assert observed is not None and observed.jobmanagers_alive == 0 and observed.rest_url is None
    assert kube.calls == []


def test_a_new_generation_starts_its_own_first_pod() -> None:
    kube = FakeKube()
    runtime = _cluster(kube, _pod("demo-3", "uid-3", gated=True))
    kube.objects[JM_PATH]["metadata"]["annotations"][STARTED_POD_ANNOTATION] = "2/uid-old"

    assert (observed := runtime.observe(KEY)) is not None and observed.jobmanagers_alive == 1
    assert kube.calls[0][2] == {"metadata": {"annotations": {STARTED_POD_ANNOTATION: "3/uid-3"}}}


def test_outside_the_cluster_the_rest_api_is_reached_at_the_services_cluster_ip() -> None:
    kube = FakeKube()
    runtime = KubernetesRuntime(kube, rest_address=REST_ADDRESS_CLUSTER_IP)  # type: ignore[arg-type]
    kube.objects[JM_PATH] = {**_render(), "status": {"readyReplicas": 1}}
    kube.objects[JM_PATH]["metadata"]["annotations"][STARTED_POD_ANNOTATION] = "3/uid-1"
    kube.objects["/api/v1/namespaces/jobs/pods/demo-1"] = _pod("demo-1", "uid-1", gated=False)
    assert (observed := runtime.observe(KEY)) is not None and observed.rest_url is None  # no Service yet
    kube.objects["/api/v1/namespaces/jobs/services/demo-rest"] = {
        "kind": "Service",
        "metadata": {"name": "demo-rest", "namespace": "jobs"},
        "spec": {"clusterIP": "10.96.0.7"},
    }
    assert (observed := runtime.observe(KEY)) is not None and observed.rest_url == "http://10.96.0.7:8081"
    in_cluster = KubernetesRuntime(kube)  # type: ignore[arg-type]
    assert (observed := in_cluster.observe(KEY)) is not None
    assert observed.rest_url == "http://demo-rest.jobs.svc:8081"


def test_ha_config_maps_are_told_by_flinks_names() -> None:
    assert is_ha_config_map_name("demo", "demo-cluster-config-map")
    assert is_ha_config_map_name("demo", "demo-0123456789abcdef0123456789abcdef-config-map")
    assert is_ha_config_map_name("demo", "demo-dispatcher-leader")  # Flink 1.x
    assert not is_ha_config_map_name("demo", "flink-config-demo")
    assert not is_ha_config_map_name("demo", "demo-settings")


def test_s3_keys_in_the_spec_are_refused_on_kubernetes_with_the_way_out(tmp_path: Any) -> None:
    provisioner = PodProvisioner(tmp_path)
    spec = _resource().spec
    with pytest.raises(PermanentError, match=r"s3\.secret-key.*kubernetes\.env\.secretKeyRef"):
        provisioner.prepare_cluster(spec, {"s3.secret-key": "x", "s3.endpoint": "http://s3"})
    assert provisioner.prepare_cluster(spec, {"s3.endpoint": "http://s3"}).environment == {}
