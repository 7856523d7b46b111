"""Every object ``runtimes.kubernetes.render`` makes for the seed FlinkDeployments (and for the reconstructions of
what the seeds ask of the pods: tolerations, affinity, Secrets by reference, metrics ports, an Ingress) is accepted
by a real kube-apiserver: server-side applied with ``dryRun=All`` and ``fieldValidation=Strict`` (a misspelled or
unknown field is an error, not silently dropped), in native and standalone mode, in a namespace that enforces Pod
Security "restricted" without a single warning about the pod templates. One cluster is also applied for real,
owned by a real FlinkDeployment: re-applying the next generation updates it in place (selectors never change),
the generation reads back from the stored JobManager Deployment, and deleting the FlinkDeployment takes every
child with it through the owner references.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from flinkops.api.crds import custom_resource_definitions
from flinkops.api.loader import load_documents
from flinkops.api.models import FlinkDeployment
from flinkops.flink.config import RenderInputs, render_flink_config
from flinkops.kube.client import object_path
from flinkops.runtimes.kubernetes.render import (
    GENERATION_ANNOTATION,
    ApplicationLaunch,
    child_names,
    generation_of,
    render_cluster,
)
from support.kube import KubeCluster

pytestmark = pytest.mark.integration

SEEDS = Path(__file__).parent.parent / "fixtures" / "seeds"
# The seed fixtures, and the reconstructions of what the seeds ask of the pods (Karpenter pools, Secrets by
# reference, the Prometheus port and Datadog annotations, an Ingress): every object of each must be accepted.
DEPLOYMENT_SEEDS = [
    "eks-session-cluster.yaml",
    "fraud-scoring.yaml",
    "fraud-scoring-rollback.yaml",
    *sorted(f"rendering/{p.name}" for p in (SEEDS / "rendering").glob("*.yaml")),
]
PLURALS = {"ConfigMap": "configmaps", "Service": "services", "Deployment": "deployments", "Ingress": "ingresses"}
FIELD_MANAGER = "flinkops-render-test"
API = "/apis/flink.apache.org/v1beta1"


def seed(name: str, namespace: str, uid: str = "9f1c2d3e-0000-4000-8000-00000000abcd") -> FlinkDeployment:
    (resource,) = load_documents((SEEDS / name).read_text(), name)
    assert isinstance(resource, FlinkDeployment)
    meta = resource.metadata.model_copy(update={"namespace": namespace, "uid": uid, "generation": 1})
    return resource.model_copy(update={"metadata": meta})


def manifests(resource: FlinkDeployment, mode: str, generation: int = 1) -> list[dict[str, Any]]:
    meta = resource.metadata
    # As on Kubernetes: no default state directory (a pod's disk does not outlive it), the image's Python.
    config = render_flink_config(resource.spec, RenderInputs(meta.name, meta.namespace, None, ""))
    job = resource.spec.job
    launch = ApplicationLaunch.of(job, "0123456789abcdef0123456789abcdef", job.initial_savepoint_path) if job else None
    return render_cluster(resource, config, generation=generation, application=launch, mode=mode)


def path_of(manifest: dict[str, Any]) -> str:
    meta = manifest["metadata"]
    return object_path(manifest["apiVersion"], PLURALS[manifest["kind"]], meta["namespace"], meta["name"])


def apply(api: httpx.Client, manifest: dict[str, Any], *, dry_run: bool) -> httpx.Response:
    params = {"fieldManager": FIELD_MANAGER, "force": "true", "fieldValidation": "Strict"}
    if dry_run:
        params["dryRun"] = "All"
    return api.patch(
        path_of(manifest),
        params=params,
        content=json.dumps(manifest).encode(),
        headers={"Content-Type": "application/apply-patch+yaml"},
    )


def wait_until(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def api(kube: KubeCluster) -> Iterator[httpx.Client]:
    with kube.client() as client:
        yield client


@pytest.fixture
def namespace(api: httpx.Client) -> Iterator[str]:
    name = f"render-{uuid.uuid4().hex[:8]}"
    # Pod Security "restricted": enforced on pods, and warned about on the pod templates of Deployments.
    labels = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn")}
    created = api.post("/api/v1/namespaces", json={"metadata": {"name": name, "labels": labels}})
    assert created.status_code == 201, created.text
    yield name
    api.delete(f"/api/v1/namespaces/{name}")


@pytest.mark.parametrize("mode", ["native", "standalone"])
@pytest.mark.parametrize("name", DEPLOYMENT_SEEDS)
def test_the_apiserver_accepts_every_rendered_object(api: httpx.Client, namespace: str, name: str, mode: str) -> None:
    resource = seed(name, namespace)
    rendered = manifests(resource, mode)
    children = [(r.kind, r.name) for r in child_names(resource.metadata.name, mode).refs()]
    if resource.spec.ingress is not None:
        children.append(("Ingress", resource.metadata.name))
    assert [(m["kind"], m["metadata"]["name"]) for m in rendered] == children
    for manifest in rendered:
        answer = apply(api, manifest, dry_run=True)
        assert answer.status_code in (200, 201), f"{manifest['kind']} {manifest['metadata']['name']}: {answer.text}"
        # No Pod Security warning: the restricted defaults hold for every container of the pod templates.
        assert "warning" not in answer.headers, answer.headers.get("warning")
        stored = answer.json()
        # Nothing of what flinkops says about ownership, identity and generation is dropped or changed.
        for field in ("labels", "ownerReferences"):
            assert stored["metadata"][field] == manifest["metadata"][field]
        assert stored["metadata"]["annotations"][GENERATION_ANNOTATION] == "1"
        if manifest["kind"] == "Deployment":
            template = stored["spec"]["template"]
            assert template["metadata"]["annotations"][GENERATION_ANNOTATION] == "1"
            assert template["spec"]["securityContext"]["runAsNonRoot"] is True
            assert template["spec"]["serviceAccountName"] == manifest["spec"]["template"]["spec"]["serviceAccountName"]


def test_applied_cluster_updates_in_place_and_goes_with_its_flinkdeployment(api: httpx.Client, namespace: str) -> None:
    for crd in custom_resource_definitions():
        applied = api.patch(
            f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}",
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
            content=json.dumps(crd).encode(),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
        assert applied.status_code in (200, 201), applied.text
    wait_until(lambda: api.get(f"{API}/namespaces/{namespace}/flinkdeployments").status_code == 200, "the CRD")

    # A real owner: the FlinkDeployment itself, so the garbage collector can tell owned from orphaned.
    body = yaml.safe_load((SEEDS / "fraud-scoring.yaml").read_text())
    body["metadata"]["namespace"] = namespace
    created = api.post(f"{API}/namespaces/{namespace}/flinkdeployments", json=body)
    assert created.status_code == 201, created.text
    uid = created.json()["metadata"]["uid"]
    resource = seed("fraud-scoring.yaml", namespace, uid)

    for generation in (1, 2):
        for manifest in manifests(resource, "standalone", generation):
            answer = apply(api, manifest, dry_run=False)
            assert answer.status_code in (200, 201), answer.text
    names = child_names(resource.metadata.name, "standalone")
    jobmanager = api.get(object_path("apps/v1", "deployments", namespace, names.jobmanager)).json()
    assert generation_of(jobmanager) == 2
    assert jobmanager["spec"]["template"]["metadata"]["annotations"][GENERATION_ANNOTATION] == "2"

    deleted = api.delete(
        f"{API}/namespaces/{namespace}/flinkdeployments/{resource.metadata.name}",
        params={"propagationPolicy": "Background"},
    )
    assert deleted.status_code == 200, deleted.text
    for ref in names.refs():
        path = object_path(ref.api_version, ref.plural, namespace, ref.name)
        wait_until(lambda path=path: api.get(path).status_code == 404, f"{ref.kind} {ref.name} to be collected")


def test_a_template_that_runs_as_root_is_what_pod_security_flags(api: httpx.Client, namespace: str) -> None:
    """The control for the check above: the user's template wins over the defaults, and the apiserver says so."""
    resource = seed("eks-session-cluster.yaml", namespace)
    root = {"spec": {"securityContext": {"runAsUser": 0}}}
    resource = resource.model_copy(update={"spec": resource.spec.model_copy(update={"pod_template": root})})
    (jobmanager,) = [m for m in manifests(resource, "native") if m["kind"] == "Deployment"]
    answer = apply(api, jobmanager, dry_run=True)
    assert answer.status_code in (200, 201), answer.text
    assert "restricted" in answer.headers.get("warning", "")
