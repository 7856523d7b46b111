"""The admission webhook's verdict (``core.admission.review``): an AdmissionReview in, its response out. What the
API server shows a user at ``kubectl apply``: denied with every problem and its field path, lint warnings as
admission warnings, and never a refusal of a delete, a canary or a write that leaves the spec alone."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from flinkops.api.loader import load_object
from flinkops.core.admission import MAX_WARNING_CHARS, Malformed, mutate, review
from support.admission_specs import valid_deployment

SEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "seeds"

GOOD: dict[str, Any] = valid_deployment(namespace="jobs", uid="abc", managedFields=[{"manager": "kubectl"}])


def admission(obj: dict[str, Any], operation: str = "CREATE", old: dict[str, Any] | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "flink.apache.org", "version": "v1beta1", "kind": obj.get("kind", "FlinkDeployment")},
        "resource": {"group": "flink.apache.org", "version": "v1beta1", "resource": "flinkdeployments"},
        "namespace": "jobs",
        "name": obj.get("metadata", {}).get("name", ""),
        "operation": operation,
        "object": obj if operation != "DELETE" else None,
        "oldObject": old,
    }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def with_spec(**changes: Any) -> dict[str, Any]:
    obj = copy.deepcopy(GOOD)
    for dotted, value in changes.items():
        node = obj
        *parents, last = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return obj


def test_a_valid_deployment_is_allowed_and_the_answer_carries_the_uid() -> None:
    answer = review(json.dumps(admission(GOOD)).encode()).response()

    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    assert answer["response"] == {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": True}


def test_every_problem_is_denied_with_its_field_path() -> None:
    obj = with_spec(metadata__name="Fraud_Scoring")
    obj["spec"]["job"]["upgradeMode"] = "sometimes"
    obj["spec"]["job"]["parallelism"] = "four"

    answer = review(admission(obj)).response()["response"]

    assert answer["allowed"] is False
    assert answer["status"]["code"] == 422
    message = answer["status"]["message"]
    assert "spec.job.upgradeMode" in message
    assert "spec.job.parallelism" in message


def test_semantic_rules_of_apply_deny_with_the_path_and_the_fix() -> None:
    obj = with_spec(metadata__name="Fraud_Scoring")
    del obj["spec"]["flinkConfiguration"]["state.savepoints.dir"]

    verdict = review(admission(obj))

    assert not verdict.allowed
    # Validation's savepoint rule and lint's FO006 find the same thing: said once.
    assert [p.path for p in verdict.problems] == ["metadata.name", "spec.job.upgradeMode"]
    assert "fix:" in verdict.message


def test_a_literal_secret_is_denied_without_echoing_it() -> None:
    obj = copy.deepcopy(GOOD)
    obj["spec"]["flinkConfiguration"]["s3.secret-key"] = "wJalrXUtnFEMI/K7MDENG"

    answer = review(admission(obj)).response()["response"]

    assert answer["allowed"] is False
    assert 'spec.flinkConfiguration["s3.secret-key"]' in answer["status"]["message"]
    assert "FO008" in answer["status"]["message"]
    assert "wJalrXUtnFEMI" not in json.dumps(answer)


def test_lint_warnings_come_back_as_admission_warnings() -> None:
    obj = copy.deepcopy(GOOD)
    del obj["spec"]["flinkConfiguration"]["execution.checkpointing.externalized-checkpoint-retention"]

    answer = review(admission(obj)).response()["response"]

    assert answer["allowed"] is True
    (warning,) = answer["warnings"]
    assert warning.startswith("FO007 spec.flinkConfiguration")
    assert len(warning) <= MAX_WARNING_CHARS


@pytest.mark.parametrize("path", sorted(SEEDS.rglob("*.yaml")), ids=lambda p: p.name)
def test_every_seed_is_allowed(path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        if document and document.get("kind") in ("FlinkDeployment", "FlinkSessionJob"):
            obj = json.loads(json.dumps(document, default=str))
            assert review(admission(obj)).allowed, path


def test_delete_is_allowed_whatever_is_stored() -> None:
    bad = with_spec(metadata__name="Bad_Name")

    assert review(admission(bad, "DELETE", old=bad)).response()["response"]["allowed"] is True


def test_an_update_that_keeps_the_spec_is_allowed_even_for_an_invalid_stored_object() -> None:
    # Stored before the webhook existed; the operator must still be able to remove its finalizer.
    bad = with_spec(metadata__name="Bad_Name")
    unfinalized = copy.deepcopy(bad)
    unfinalized["metadata"]["finalizers"] = []

    assert review(admission(unfinalized, "UPDATE", old=bad)).allowed


def test_an_update_that_changes_what_may_not_change_is_denied() -> None:
    old = copy.deepcopy(GOOD)
    new = with_spec(spec__mode="standalone")

    verdict = review(admission(new, "UPDATE", old=old))

    assert not verdict.allowed
    assert [p.path for p in verdict.problems] == ["spec.mode"]


def test_a_canary_is_allowed_without_a_spec() -> None:
    canary = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "canary", "namespace": "jobs", "labels": {"flink.apache.org/canary": "true"}},
        "spec": {},
    }

    assert review(admission(canary)).allowed


def test_a_session_job_on_an_application_cluster_is_denied_when_the_cache_knows_it() -> None:
    job = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkSessionJob",
        "metadata": {"name": "ingest", "namespace": "jobs"},
        "spec": {"deploymentName": "fraud", "job": {"jarURI": "https://repo.example/ingest.jar", "parallelism": 1}},
    }
    cluster = load_object(GOOD)

    def lookup(key: tuple[str, str, str]) -> Any:
        return cluster if key == ("FlinkDeployment", "jobs", "fraud") else None

    assert review(admission(job)).allowed  # not there yet: it waits, as apply lets it
    verdict = review(admission(job), lookup)
    assert not verdict.allowed
    assert [p.path for p in verdict.problems] == ["spec.deploymentName"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        json.dumps({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "x"}}),
        json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}),
        json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "Pod"}),
    ],
)
def test_a_malformed_review_is_refused_as_such(body: bytes | str) -> None:
    with pytest.raises(Malformed):
        review(body)


def test_an_object_that_is_not_a_mapping_where_one_is_expected_is_denied_with_its_path() -> None:
    obj = with_spec(spec__jobManager="big")

    verdict = review(admission(obj))

    assert not verdict.allowed
    assert [p.path for p in verdict.problems] == ["spec.jobManager"]


# ------------------------------------------------------------------------------------------ the defaulting webhook

SESSION_JOB: dict[str, Any] = {
    "apiVersion": "flink.apache.org/v1beta1",
    "kind": "FlinkSessionJob",
    "metadata": {"name": "ingest", "namespace": "jobs"},
    "spec": {"deploymentName": "shared", "job": {"jarURI": "https://repo.example/ingest.jar", "parallelism": 1}},
}


def patched(obj: dict[str, Any], operation: str = "CREATE") -> dict[str, Any]:
    """The object after the mutating webhook's JSON patch (add operations only, which is all it sends)."""
    answer = mutate(admission(obj, operation)).response()["response"]
    assert answer["allowed"] is True
    result = copy.deepcopy(obj)
    if "patch" not in answer:
        return result
    assert answer["patchType"] == "JSONPatch"
    for op in json.loads(base64.b64decode(answer["patch"])):
        assert op["op"] == "add"
        *parents, last = op["path"].strip("/").split("/")
        node = result
        for part in parents:
            node = node[part]
        node[last] = op["value"]
    return result


def test_a_session_job_is_labelled_with_its_session_cluster_as_the_reference_does() -> None:
    assert patched(SESSION_JOB)["metadata"]["labels"] == {"target.session": "shared"}
    labelled = copy.deepcopy(SESSION_JOB)
    labelled["metadata"]["labels"] = {"team": "ingest", "target.session": "old"}
    assert patched(labelled, "UPDATE")["metadata"]["labels"] == {"team": "ingest", "target.session": "shared"}


def test_the_defaulting_webhook_leaves_everything_else_alone() -> None:
    current = copy.deepcopy(SESSION_JOB)
    current["metadata"]["labels"] = {"target.session": "shared"}
    nameless = copy.deepcopy(SESSION_JOB)
    nameless["spec"]["deploymentName"] = 42

    for obj in (current, nameless, GOOD):
        answer = mutate(admission(obj)).response()["response"]
        assert answer == {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": True}
    with pytest.raises(Malformed):
        mutate(b"{}")
