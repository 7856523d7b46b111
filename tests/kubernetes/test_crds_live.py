"""The generated CRDs on a real kube-apiserver: it accepts them (Established, names accepted), stores every seed
and example resource unchanged, keeps every field of a resource that fills every path of the reference
operator's schema, serves the status and scale subresources and the printer columns, and rejects wrong values.

Objects are created with ``fieldValidation=Strict``, so a field the CRD would prune is an error here instead of
a silent loss. The CRDs are server-side applied (idempotent; other tests in the session may apply the same ones)
and left installed; each test works in its own namespace, deleted afterwards.
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
from flinkops.api.loader import dump_resource, load_object
from support.crdcheck import REFERENCE_FILES, REPO, reference_crd, root_schema, sample
from support.kube import KubeCluster

pytestmark = pytest.mark.integration

API = "/apis/flink.apache.org/v1beta1"
PLURAL = {"FlinkDeployment": "flinkdeployments", "FlinkSessionJob": "flinksessionjobs"}
SEEDS = sorted((REPO / "tests" / "fixtures" / "seeds").glob("*.yaml"))
EXAMPLES = sorted(p for p in (REPO / "examples").glob("*/*.yaml") if not p.name.startswith("tmp-"))


def documents(path: Path) -> list[dict[str, Any]]:
    return [json.loads(json.dumps(d, default=str)) for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.fixture(scope="module")
def api(kube: KubeCluster) -> Iterator[httpx.Client]:
    """A cluster-admin client, with both CRDs applied and established."""
    with kube.client() as client:
        for crd in custom_resource_definitions():
            name = crd["metadata"]["name"]
            applied = client.patch(
                f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}",
                params={"fieldManager": "flinkops-crd-test", "force": "true", "fieldValidation": "Strict"},
                content=json.dumps(crd).encode(),
                headers={"Content-Type": "application/apply-patch+yaml"},
            )
            assert applied.status_code in (200, 201), applied.text
        for name in (c["metadata"]["name"] for c in custom_resource_definitions()):
            deadline = time.monotonic() + 60
            while True:
                conditions = {
                    c["type"]: c["status"]
                    for c in client.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
                    .json()
                    .get("status", {})
                    .get("conditions")
                    or []
                }
                if conditions.get("Established") == "True" and conditions.get("NamesAccepted") == "True":
                    break
                assert time.monotonic() < deadline, f"{name} not established: {conditions}"
                time.sleep(0.2)
        # Discovery takes a moment to serve a new group; the first create would 404 otherwise.
        deadline = time.monotonic() + 60
        while client.get(API).status_code != 200:
            assert time.monotonic() < deadline, "flink.apache.org/v1beta1 never appeared in discovery"
            time.sleep(0.2)
        yield client


@pytest.fixture
def namespace(api: httpx.Client) -> Iterator[str]:
    name = f"crds-{uuid.uuid4().hex[:8]}"
    created = api.post("/api/v1/namespaces", json={"metadata": {"name": name}})
    assert created.status_code == 201, created.text
    yield name
    api.delete(f"/api/v1/namespaces/{name}")


def create(api: httpx.Client, namespace: str, document: dict[str, Any]) -> httpx.Response:
    body = {**document, "metadata": {**document["metadata"], "namespace": namespace}}
    return api.post(
        f"{API}/namespaces/{namespace}/{PLURAL[document['kind']]}",
        params={"fieldValidation": "Strict"},
        json=body,
    )


def test_the_apiserver_accepts_the_crds_with_their_names_and_columns(api: httpx.Client) -> None:
    resources = {r["name"]: r for r in api.get(API).json()["resources"]}

    assert resources["flinkdeployments"]["shortNames"] == ["flinkdep"]
    assert resources["flinksessionjobs"]["shortNames"] == ["sessionjob"]
    assert {"flinkdeployments/status", "flinkdeployments/scale", "flinksessionjobs/status"} <= set(resources)


@pytest.mark.parametrize("path", SEEDS + EXAMPLES, ids=lambda p: str(p.relative_to(REPO)))
def test_seed_and_example_resources_are_stored_unchanged(api: httpx.Client, namespace: str, path: Path) -> None:
    for document in documents(path):
        created = create(api, namespace, document)
        assert created.status_code == 201, created.text
        stored = created.json()
        # Nothing pruned, nothing defaulted: the spec reads back exactly as written.
        assert stored["spec"] == document["spec"]
        # What flinkops writes back (its own dump of the same resource) is accepted as well.
        ours = dump_resource(load_object(document))
        ours["metadata"] = {"name": f"{document['metadata']['name']}-dump"}
        assert create(api, namespace, ours).status_code == 201


@pytest.mark.parametrize("variant", [0, 1])
@pytest.mark.parametrize("name", sorted(REFERENCE_FILES))
def test_a_resource_filling_every_reference_path_is_kept_whole(
    api: httpx.Client, namespace: str, name: str, variant: int
) -> None:
    reference = reference_crd(name)
    kind = reference["spec"]["names"]["kind"]
    full = sample(root_schema(reference), variant)
    document = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": kind,
        "metadata": {"name": f"full-{variant}"},
        "spec": full["spec"],
    }

    created = create(api, namespace, document)
    assert created.status_code == 201, created.text[:4000]
    assert created.json()["spec"] == full["spec"]
    # The status subresource takes the reference's full status too.
    url = f"{API}/namespaces/{namespace}/{PLURAL[kind]}/full-{variant}/status"
    patched = api.patch(
        url,
        params={"fieldValidation": "Strict"},
        content=json.dumps({"status": full["status"]}).encode(),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.text[:4000]
    assert patched.json()["status"] == full["status"]


def test_status_scale_and_printer_columns(api: httpx.Client, namespace: str) -> None:
    (document,) = documents(REPO / "tests" / "fixtures" / "seeds" / "eks-session-cluster.yaml")
    document["spec"]["taskManager"]["replicas"] = 2
    assert create(api, namespace, document).status_code == 201
    url = f"{API}/namespaces/{namespace}/flinkdeployments/{document['metadata']['name']}"

    status = {
        "jobStatus": {"state": "RUNNING"},
        "lifecycleState": "STABLE",
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Running",
                "status": "True",
                "reason": "JobRunning",
                "message": "",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
                "observedGeneration": 1,
            }
        ],
        "taskManager": {"replicas": 2, "labelSelector": "app=basic-session-cluster,component=taskmanager"},
    }
    patched = api.patch(
        f"{url}/status",
        content=json.dumps({"status": status}).encode(),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    # A write to the main resource cannot change status (the status subresource owns it).
    assert (
        api.patch(
            url,
            content=json.dumps({"status": {"lifecycleState": "FAILED"}}).encode(),
            headers={"Content-Type": "application/merge-patch+json"},
        ).json()["status"]["lifecycleState"]
        == "STABLE"
    )

    scale = api.get(f"{url}/scale").json()
    assert scale["spec"]["replicas"] == 2
    assert scale["status"] == {"replicas": 2, "selector": "app=basic-session-cluster,component=taskmanager"}
    scaled = api.patch(
        f"{url}/scale",
        content=json.dumps({"spec": {"replicas": 5}}).encode(),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert scaled.status_code == 200, scaled.text
    assert api.get(url).json()["spec"]["taskManager"]["replicas"] == 5

    table = api.get(
        f"{API}/namespaces/{namespace}/flinkdeployments",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
    ).json()
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns[:4] == ["Name", "Job Status", "Lifecycle State", "Age"]
    (row,) = table["rows"]
    assert row["cells"][1:3] == ["RUNNING", "STABLE"]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"job": {"parallelism": "four"}}, "spec.job.parallelism"),
        ({"flinkVersion": "v9_9"}, "spec.flinkVersion"),
        ({"job": {"upgradeMode": "latest"}}, "spec.job.upgradeMode"),
        ({"taskManager": {"replicas": 1.5}}, "spec.taskManager.replicas"),
    ],
)
def test_wrong_values_are_rejected_with_their_path(
    api: httpx.Client, namespace: str, spec: dict[str, Any], field: str
) -> None:
    document = {"apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment", "metadata": {"name": "bad"}}

    answer = create(api, namespace, {**document, "spec": spec})

    assert answer.status_code == 422, answer.text
    assert field in answer.text


def test_an_unknown_field_is_an_error_under_strict_field_validation(api: httpx.Client, namespace: str) -> None:
    document = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "typo"},
        "spec": {"jobManger": {"replicas": 1}},
    }

    answer = create(api, namespace, document)

    # A strict decoding error (400), not a schema violation (422): the field has no schema to violate.
    assert answer.status_code == 400, answer.text
    assert 'unknown field \\"spec.jobManger\\"' in answer.text
