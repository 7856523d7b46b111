"""The Kubernetes runtime on a real kube-apiserver with kube-controller-manager: Flink's HA ConfigMaps and the
Ingress around a cluster's deploys and deletes.

Flink writes its Kubernetes HA metadata into ConfigMaps labelled ``app=<cluster id>,
configmap-type=high-availability`` with no owner reference; a JobManager that starts under that cluster id
recovers every job they name. flinkops decides restores itself, so what these tests check is what is left and
what is created: a deleted cluster leaves none of its HA ConfigMaps (and nothing of other clusters or of the user
is touched), a new cluster under an old name starts without its predecessor's, a last-state upgrade ends with
only the new job's JobManager Deployment (its job id and restore point on the command line) and no metadata
naming the old job, and re-applying a running cluster keeps its metadata. The Ingress of ``spec.ingress`` is
created with the cluster, removed when the spec drops it, and deleted with the cluster.

There is no kubelet: pods stay Pending, so the HA ConfigMaps are written here the way Flink writes them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from flinkops.api.models import FlinkDeployment
from flinkops.flink.config import RenderInputs, render_flink_config
from flinkops.kube.client import KubeClient, load_config, object_path
from flinkops.ports import ApplicationJob, ClusterKey, ClusterRequest
from flinkops.runtimes.kubernetes.render import JOB_ID_ANNOTATION, child_names
from flinkops.runtimes.kubernetes.runtime import KubernetesRuntime
from support.kube import KubeCluster, install_crds

pytestmark = pytest.mark.integration

API = "/apis/flink.apache.org/v1beta1"
OLD_JOB = "a" * 32
NEW_JOB = "b" * 32
CHECKPOINT = f"s3://state/ha/checkpoints/{OLD_JOB}/chk-42"


def flink1_ha_selector(cluster: str) -> str:
    """The labels Flink 1.x puts on its HA ConfigMaps (``KubernetesUtils.getConfigMapLabels``)."""
    return f"app={cluster},configmap-type=high-availability"


@pytest.fixture(scope="module")
def admin(kube: KubeCluster) -> Iterator[httpx.Client]:
    with kube.client() as client:
        install_crds(client)
        yield client


@pytest.fixture(scope="module")
def client(kube: KubeCluster) -> Iterator[KubeClient]:
    with KubeClient(load_config(kubeconfig=str(kube.kubeconfig))) as kube_client:
        yield kube_client


@pytest.fixture
def namespace(admin: httpx.Client) -> Iterator[str]:
    name = f"ha-{uuid.uuid4().hex[:8]}"
    created = admin.post("/api/v1/namespaces", json={"metadata": {"name": name}})
    assert created.status_code == 201, created.text
    yield name
    admin.delete(f"/api/v1/namespaces/{name}")


def flink_deployment(admin: httpx.Client, namespace: str, name: str = "payments", **extra: Any) -> FlinkDeployment:
    """A real FlinkDeployment (the owner the children reference) with Kubernetes HA and two JobManagers;
    ``extra`` adds spec fields."""
    body: dict[str, Any] = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "image": "flink:2.2",
            "flinkVersion": "v2_2",
            "serviceAccount": "flink",
            "mode": "standalone",
            "flinkConfiguration": {
                "high-availability.type": "kubernetes",
                "high-availability.storageDir": "s3://state/ha/recovery",
                "execution.checkpointing.dir": "s3://state/ha/checkpoints",
            },
            "jobManager": {"replicas": 2, "resource": {"memory": "1024m", "cpu": 0.1}},
            "taskManager": {"resource": {"memory": "1024m", "cpu": 0.1}},
            "job": {"jarURI": "local:///opt/flink/usrlib/job.jar", "upgradeMode": "last-state"},
            **extra,
        },
    }
    created = admin.post(f"{API}/namespaces/{namespace}/flinkdeployments", json=body)
    assert created.status_code == 201, created.text
    return FlinkDeployment.model_validate(created.json())


def request(resource: FlinkDeployment, generation: int, job_id: str, restore: str | None = None) -> ClusterRequest:
    meta = resource.metadata
    config = render_flink_config(resource.spec, RenderInputs(meta.name, meta.namespace, None, ""))
    if restore:
        config["execution.state-recovery.path"] = restore
    return ClusterRequest(
        key=ClusterKey(meta.namespace, meta.name),
        generation=generation,
        flink_config=config,
        jobmanager_replicas=2,
        application=ApplicationJob("com.example.Job", (), job_id, jar_uri="local:///opt/flink/usrlib/job.jar"),
        resource=resource,
    )


def write_ha_configmap(
    admin: httpx.Client, namespace: str, cluster: str, name: str, data: dict[str, str], *, flink2: bool = False
) -> None:
    """A ConfigMap as Flink's Kubernetes HA services write it (labels of ``KubernetesUtils.getConfigMapLabels``;
    Flink 2.x leaves ``configmap-type`` out, as seen on the dev node with Flink 2.2)."""
    labels = {"app": cluster, "type": "flink-native-kubernetes"}
    if not flink2:
        labels["configmap-type"] = "high-availability"
    body = {"metadata": {"name": name, "namespace": namespace, "labels": labels}, "data": data}
    created = admin.post(f"/api/v1/namespaces/{namespace}/configmaps", json=body)
    assert created.status_code == 201, created.text


def flink_wrote_metadata_for(admin: httpx.Client, namespace: str, cluster: str, job_id: str) -> None:
    """What a leading JobManager running ``job_id`` leaves in HA ConfigMaps: the cluster's (leader, job graph)
    and the job's own (its checkpoint counter and completed checkpoints)."""
    write_ha_configmap(
        admin, namespace, cluster, f"{cluster}-cluster-config-map", {f"jobGraph-{job_id}": "rO0ABXNy...(handle)"}
    )
    write_ha_configmap(
        admin, namespace, cluster, f"{cluster}-{job_id}-config-map",
        {"counter": "43", "checkpointID-0000000000000000042": json.dumps({"path": CHECKPOINT})},
    )  # fmt: skip


def configmaps(admin: httpx.Client, namespace: str, selector: str | None = None) -> dict[str, dict[str, Any]]:
    params = {"labelSelector": selector} if selector else {}
    listed = admin.get(f"/api/v1/namespaces/{namespace}/configmaps", params=params)
    listed.raise_for_status()
    return {item["metadata"]["name"]: item for item in listed.json()["items"]}


def wait_until(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_delete_removes_the_clusters_ha_configmaps_and_nothing_else(
    admin: httpx.Client, client: KubeClient, namespace: str
) -> None:
    resource = flink_deployment(admin, namespace)
    runtime = KubernetesRuntime(client, (namespace,))
    runtime.deploy(request(resource, 1, OLD_JOB))
    flink_wrote_metadata_for(admin, namespace, "payments", OLD_JOB)
    write_ha_configmap(admin, namespace, "other", "other-cluster-config-map", {"jobGraph-x": "y"})
    write_ha_configmap(
        admin, namespace, "payments", "payments-flink2-config-map", {"counter": "3"}, flink2=True
    )  # as Flink 2.2 labels them
    mine = {"metadata": {"name": "payments-settings", "labels": {"app": "payments"}}, "data": {"a": "b"}}
    assert admin.post(f"/api/v1/namespaces/{namespace}/configmaps", json=mine).status_code == 201
    assert set(configmaps(admin, namespace, flink1_ha_selector("payments"))) == {
        "payments-cluster-config-map",
        f"payments-{OLD_JOB}-config-map",
    }

    runtime.delete(ClusterKey(namespace, "payments"))

    left = configmaps(admin, namespace)
    assert not [n for n in left if n.startswith("payments-") and n != "payments-settings"], sorted(left)
    assert {"other-cluster-config-map", "payments-settings"} <= set(left), "other clusters' and the user's stay"
    # Deleted with Foreground propagation: an object stays (with a deletionTimestamp) until the garbage collector
    # has removed what it owns (a Service's EndpointSlices), which takes a moment on a busy machine.
    for ref in child_names("payments", "standalone").refs():
        path = object_path(ref.api_version, ref.plural, namespace, ref.name)
        wait_until(lambda path=path: client.get(path) is None, f"{ref.kind} {ref.name} gone")
    pods = admin.get(f"/api/v1/namespaces/{namespace}/pods", params={"labelSelector": "app=payments"}).json()
    assert pods["items"] == []


def test_a_new_cluster_under_an_old_name_starts_without_its_predecessors_metadata(
    admin: httpx.Client, client: KubeClient, namespace: str
) -> None:
    """Left by a predecessor under the same name (or by a delete interrupted before it removed them)."""
    flink_wrote_metadata_for(admin, namespace, "payments", OLD_JOB)
    resource = flink_deployment(admin, namespace)

    KubernetesRuntime(client, (namespace,)).deploy(request(resource, 1, NEW_JOB))

    assert configmaps(admin, namespace, flink1_ha_selector("payments")) == {}
    jobmanager = client.get(object_path("apps/v1", "deployments", namespace, "payments"))
    assert jobmanager is not None and jobmanager["metadata"]["annotations"][JOB_ID_ANNOTATION] == NEW_JOB


def test_a_last_state_upgrade_leaves_only_the_new_job(admin: httpx.Client, client: KubeClient, namespace: str) -> None:
    """The runtime's part of a last-state upgrade: stop the cluster, then start the new job from the stopped
    job's newest checkpoint under a new job id. Nothing may let Flink recover the old job next to it."""
    resource = flink_deployment(admin, namespace)
    runtime = KubernetesRuntime(client, (namespace,))
    key = ClusterKey(namespace, "payments")
    runtime.deploy(request(resource, 1, OLD_JOB))
    flink_wrote_metadata_for(admin, namespace, "payments", OLD_JOB)

    runtime.delete(key)
    observed = runtime.deploy(request(resource, 2, NEW_JOB, restore=CHECKPOINT))

    assert (observed.generation, observed.job_id) == (2, NEW_JOB)
    assert configmaps(admin, namespace, flink1_ha_selector("payments")) == {}
    assert not [n for n in configmaps(admin, namespace) if OLD_JOB in n]
    jobmanager = client.get(object_path("apps/v1", "deployments", namespace, "payments"))
    assert jobmanager is not None
    (container,) = [
        c for c in jobmanager["spec"]["template"]["spec"]["containers"] if c["name"] == "flink-main-container"
    ]
    args = container["args"]
    assert args[args.index("--job-id") + 1] == NEW_JOB and OLD_JOB not in args
    assert args[args.index("--fromSavepoint") + 1] == CHECKPOINT
    deployments = admin.get(f"/apis/apps/v1/namespaces/{namespace}/deployments").json()["items"]
    assert sorted(d["metadata"]["name"] for d in deployments) == ["payments", "payments-taskmanager"]


def test_reapplying_a_running_cluster_keeps_its_metadata(
    admin: httpx.Client, client: KubeClient, namespace: str
) -> None:
    """A JobManager Deployment that exists is a cluster that may be running its job: its HA ConfigMaps are how
    a restarted JobManager pod recovers that job, so only a delete removes them."""
    resource = flink_deployment(admin, namespace)
    runtime = KubernetesRuntime(client, (namespace,))
    runtime.deploy(request(resource, 1, OLD_JOB))
    flink_wrote_metadata_for(admin, namespace, "payments", OLD_JOB)

    runtime.deploy(request(resource, 1, OLD_JOB))

    assert len(configmaps(admin, namespace, flink1_ha_selector("payments"))) == 2


def test_the_ingress_comes_and_goes_with_the_spec_and_the_cluster(
    admin: httpx.Client, client: KubeClient, namespace: str
) -> None:
    ingress_spec = {"template": "flink.example.com/{{namespace}}/{{name}}(/|$)(.*)", "className": "nginx"}
    resource = flink_deployment(admin, namespace, ingress=ingress_spec)
    runtime = KubernetesRuntime(client, (namespace,))
    key = ClusterKey(namespace, "payments")
    path = object_path("networking.k8s.io/v1", "ingresses", namespace, "payments")

    runtime.deploy(request(resource, 1, OLD_JOB))
    ingress = client.get(path)
    assert ingress is not None and ingress["metadata"]["ownerReferences"][0]["uid"] == resource.metadata.uid
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "flink.example.com"
    assert rule["http"]["paths"][0]["path"] == f"/{namespace}/payments(/|$)(.*)"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "payments-rest", "port": {"number": 8081}}

    without = resource.model_copy(update={"spec": resource.spec.model_copy(update={"ingress": None})})
    runtime.delete(key)
    runtime.deploy(request(without, 2, NEW_JOB))
    assert client.get(path) is None, "the spec dropped it"

    runtime.deploy(request(resource, 3, NEW_JOB))
    assert client.get(path) is not None
    runtime.delete(key)
    assert client.get(path) is None, "deleted with the cluster"
