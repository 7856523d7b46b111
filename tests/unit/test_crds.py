"""The generated CRDs (``flinkops.api.crds``) are valid for a kube-apiserver and accept the YAML users write.

Structural rules are checked by ``support.crdcheck.structural_problems`` (the apiserver's rules restated); the
seeds' and examples' resources, and what flinkops itself writes back (``dump_resource``, a full status), are
validated with ``jsonschema`` against the CRD schemas, with unknown fields an error so that nothing the apiserver
would prune goes unnoticed. Compatibility with the reference operator's CRDs is ``test_crd_compat.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

import flinkops
from flinkops.api.crds import CRD_NAMES, custom_resource_definitions, structural_schema
from flinkops.api.loader import dump_resource, load_object
from flinkops.api.models import (
    Checkpoint,
    CheckpointInfo,
    Condition,
    DeploymentRecord,
    FlinkDeployment,
    FlinkDeploymentStatus,
    JobManagerDeploymentStatus,
    JobStatus,
    LifecycleState,
    ReconciliationState,
    ReconciliationStatus,
    Savepoint,
    SavepointInfo,
    TaskManagerInfo,
)
from support.crdcheck import (
    INT_OR_STRING,
    PRESERVE,
    REPO,
    crd_json_schema,
    node_at,
    reference_crd,
    root_schema,
    schema_problems,
    structural_problems,
)

CRDS = {crd["spec"]["names"]["kind"]: crd for crd in custom_resource_definitions()}
SEEDS = sorted((REPO / "tests" / "fixtures" / "seeds").glob("*.yaml"))
# examples/*/tmp-*.yaml are scratch copies (git-ignored), not examples.
EXAMPLES = sorted(p for p in (REPO / "examples").glob("*/*.yaml") if not p.name.startswith("tmp-"))


def documents(path: Path) -> list[dict[str, Any]]:
    # Through JSON, as kubectl sends YAML to the apiserver: an unquoted timestamp becomes a string.
    return [json.loads(json.dumps(d, default=str)) for d in yaml.safe_load_all(path.read_text()) if d]


def validator(crd: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(crd_json_schema(crd))


def errors(document: dict[str, Any], crd: dict[str, Any] | None = None) -> list[str]:
    crd = crd or CRDS[document["kind"]]
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(crd).iter_errors(document)]


# ------------------------------------------------------------------------------------------------ shape


def test_two_crds_in_apply_order() -> None:
    assert [c["metadata"]["name"] for c in custom_resource_definitions()] == list(CRD_NAMES)
    assert list(CRDS) == ["FlinkDeployment", "FlinkSessionJob"]


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_crd_is_structural(kind: str) -> None:
    assert structural_problems(CRDS[kind]) == []


def test_generation_is_pure_and_returns_fresh_dicts() -> None:
    first = custom_resource_definitions()
    first[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"].clear()

    assert custom_resource_definitions() == custom_resource_definitions()
    assert custom_resource_definitions()[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_no_construct_that_a_kube_apiserver_rejects_or_that_would_rewrite_objects(kind: str) -> None:
    text = json.dumps(CRDS[kind])

    for construct in ('"$ref"', '"$defs"', '"anyOf"', '"allOf"', '"nullable"', '"null"', '"const"', '"title"'):
        assert construct not in text, construct
    # Defaults would be written into stored objects, required fields would reject what the reference accepts.
    assert '"default"' not in text
    assert '"required"' not in text


def test_names_version_and_subresources() -> None:
    deployment, session_job = (CRDS["FlinkDeployment"], CRDS["FlinkSessionJob"])
    assert deployment["spec"]["names"]["shortNames"] == ["flinkdep"]
    assert session_job["spec"]["names"]["shortNames"] == ["sessionjob"]
    for crd in (deployment, session_job):
        (version,) = crd["spec"]["versions"]
        assert (crd["spec"]["group"], version["name"], version["served"], version["storage"]) == (
            "flink.apache.org",
            "v1beta1",
            True,
            True,
        )
        assert version["subresources"]["status"] == {}
        assert [(c["name"], c["jsonPath"]) for c in version["additionalPrinterColumns"]] == [
            ("Job Status", ".status.jobStatus.state"),
            ("Lifecycle State", ".status.lifecycleState"),
            ("Age", ".metadata.creationTimestamp"),
        ]
    assert deployment["spec"]["versions"][0]["subresources"]["scale"] == {
        "specReplicasPath": ".spec.taskManager.replicas",
        "statusReplicasPath": ".status.taskManager.replicas",
        "labelSelectorPath": ".status.taskManager.labelSelector",
    }
    assert "scale" not in session_job["spec"]["versions"][0]["subresources"]


def test_status_has_the_standard_conditions_and_observed_generation() -> None:
    for crd in CRDS.values():
        status = root_schema(crd)["properties"]["status"]
        assert status["properties"]["observedGeneration"] == {"type": "integer"}
        condition = status["properties"]["conditions"]["items"]["properties"]
        assert sorted(condition) == sorted(
            ["type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"]
        )


def test_open_fields_keep_what_users_write() -> None:
    schema = root_schema(CRDS["FlinkDeployment"])

    flink_configuration = node_at(schema, ".spec.flinkConfiguration")
    assert flink_configuration is not None and flink_configuration.get(PRESERVE) is True
    assert "type" not in flink_configuration  # flat map or nested YAML, as in the reference
    for path in (".spec.podTemplate", ".spec.jobManager.podTemplate", ".spec.taskManager.resources"):
        node = node_at(schema, path)
        assert node == {"type": "object", PRESERVE: True}, path


# ------------------------------------------------------------------------------------------------ the converter


class _Union(BaseModel):
    quantity: int | str
    cpu: float | int | None = None
    anything: Any = None
    names: list[str] | None = None


def test_optional_fields_become_plain_optional_fields_and_int_or_string_is_kept() -> None:
    schema = structural_schema(_Union)

    assert schema["properties"] == {
        "quantity": {INT_OR_STRING: True},
        "cpu": {"type": "number"},
        "anything": {PRESERVE: True},
        "names": {"type": "array", "items": {"type": "string"}},
    }
    assert schema_problems(schema) == []


class _Unstructural(BaseModel):
    value: int | list[str]


def test_a_union_without_a_structural_form_is_an_error_not_a_silent_schema() -> None:
    with pytest.raises(ValueError, match="value: a union"):
        structural_schema(_Unstructural)


def test_an_override_for_a_path_the_model_lacks_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"spec\.nope"):
        structural_schema(FlinkDeployment, widen_enum=frozenset({"spec.nope"}))


# ------------------------------------------------------------------------------------------------ user YAML


@pytest.mark.parametrize("path", SEEDS + EXAMPLES, ids=lambda p: str(p.relative_to(REPO)))
def test_seed_and_example_resources_validate_against_the_crds(path: Path) -> None:
    docs = documents(path)

    assert docs
    for doc in docs:
        assert errors(doc) == [], doc["metadata"]["name"]


@pytest.mark.parametrize("path", SEEDS + EXAMPLES, ids=lambda p: str(p.relative_to(REPO)))
def test_seed_and_example_resources_validate_against_the_reference_too(path: Path) -> None:
    # Cross-checks the JSON-schema conversion: the same documents pass the reference CRDs.
    for doc in documents(path):
        reference = reference_crd(f"{doc['kind'].lower()}s.flink.apache.org")
        assert errors(doc, reference) == [], doc["metadata"]["name"]


@pytest.mark.parametrize("path", SEEDS + EXAMPLES, ids=lambda p: str(p.relative_to(REPO)))
def test_what_flinkops_writes_back_validates(path: Path) -> None:
    for doc in documents(path):
        dumped = dump_resource(load_object(doc, str(path)))
        assert errors(dumped) == [], doc["metadata"]["name"]


def test_a_fully_populated_status_validates() -> None:
    savepoint = Savepoint(time_stamp=1, location="s3://b/sp-1", trigger_type="MANUAL", format_type="CANONICAL")
    status = FlinkDeploymentStatus(
        job_status=JobStatus(
            job_name="j",
            job_id="a" * 32,
            state="RUNNING",
            start_time="1",
            update_time="2",
            upgrade_savepoint_path="s3://b/sp-1",
            savepoint_info=SavepointInfo(
                last_savepoint=savepoint,
                trigger_id="t",
                trigger_timestamp=3,
                trigger_type="PERIODIC",
                format_type="NATIVE",
                savepoint_history=[savepoint],
                last_periodic_savepoint_timestamp=4,
            ),
            checkpoint_info=CheckpointInfo(
                last_checkpoint=Checkpoint(time_stamp=5, trigger_type="UPGRADE", format_type="FULL", trigger_nonce=6),
                trigger_id="c",
                trigger_timestamp=7,
                trigger_type="MANUAL",
                format_type="INCREMENTAL",
                last_periodic_checkpoint_timestamp=8,
            ),
        ),
        error='{"type": "x", "message": "m"}',
        observed_generation=2,
        lifecycle_state=LifecycleState.STABLE,
        reconciliation_status=ReconciliationStatus(
            reconciliation_timestamp=9,
            last_reconciled_spec="{}",
            last_stable_spec="{}",
            state=ReconciliationState.DEPLOYED,
        ),
        conditions=[
            Condition(
                type="Running",
                status="True",
                reason="JobRunning",
                message="ok",
                last_transition_time="2026-01-01T00:00:00Z",
                observed_generation=2,
            )
        ],
        cluster_info={"flink-version": "2.2.1"},
        job_manager_deployment_status=JobManagerDeploymentStatus.READY,
        task_manager=TaskManagerInfo(label_selector="app=x,component=taskmanager", replicas=3),
        deployment_history=[
            DeploymentRecord(generation=2, job_id="a" * 32, started_at=1, running_at=2, result={"records": "10"})
        ],
    )
    (doc,) = documents(REPO / "tests" / "fixtures" / "seeds" / "eks-session-cluster.yaml")
    resource = load_object(doc).model_copy(update={"status": status})

    assert errors(dump_resource(resource)) == []


@pytest.mark.parametrize(
    ("patch", "where"),
    [
        ({"spec": {"job": {"parallelism": "four"}}}, "spec.job.parallelism"),
        ({"spec": {"flinkVersion": "v9_9"}}, "spec.flinkVersion"),
        ({"spec": {"job": {"upgradeMode": "latest"}}}, "spec.job.upgradeMode"),
        ({"spec": {"jobManager": {"replicas": 1.5}}}, "spec.jobManager.replicas"),
        ({"spec": {"taskManager": {"replicaz": 2}}}, "spec.taskManager"),
        ({"spec": {"logConfiguration": {"log4j-console.properties": 1}}}, "spec.logConfiguration"),
    ],
)
def test_the_schemas_reject_wrong_values(patch: dict[str, Any], where: str) -> None:
    doc: dict[str, Any] = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "x"},
        "spec": {"flinkVersion": "v2_2", "jobManager": {"replicas": 1}, "taskManager": {}, "job": {}},
    }
    for key, value in patch["spec"].items():
        if isinstance(value, dict) and isinstance(doc["spec"].get(key), dict):
            doc["spec"][key].update(value)
        else:
            doc["spec"][key] = value

    problems = errors(doc)

    assert problems and all(p.startswith(where) for p in problems), problems


def test_nested_flink_configuration_and_any_pod_template_are_accepted() -> None:
    doc = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "x"},
        "spec": {
            "flinkConfiguration": {"state": {"backend": {"type": "rocksdb"}}, "parallelism.default": 2},
            "podTemplate": {
                "spec": {"containers": [{"name": "flink-main-container", "ports": [{"containerPort": 1}]}]}
            },
            "taskManager": {"resources": {"limits": {"cpu": 2, "memory": "4Gi"}}, "replicas": 3},
        },
    }

    assert errors(doc) == []


# ------------------------------------------------------------------------------------------------ flinkops crds


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flinkops", *args],
        # The flinkops this test imported (a worktree's, not whatever the environment installed).
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "PYTHONPATH": str(Path(flinkops.__file__).parents[1])},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_prints_both_crds_as_multi_document_yaml() -> None:
    result = cli("crds")

    assert result.returncode == 0, result.stderr
    assert list(yaml.safe_load_all(result.stdout)) == custom_resource_definitions()


def test_cli_prints_a_list_with_o_json() -> None:
    result = cli("crds", "-o", "json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"apiVersion": "v1", "kind": "List", "items": custom_resource_definitions()}


def test_cli_rejects_an_unknown_format_and_its_help_shows_how_to_install() -> None:
    bad = cli("crds", "-o", "table")
    assert bad.returncode == 2
    assert "unknown format" in bad.stderr

    help_text = cli("crds", "--help").stdout
    assert "flinkops crds | kubectl apply" in help_text


def _broken(change: Any) -> dict[str, Any]:
    crd = custom_resource_definitions()[0]
    change(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    return crd


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        # Each of these is rejected by k8s.io/apiextensions-apiserver v0.35.4's ValidateCustomResourceDefinition.
        (lambda s: s["properties"]["spec"].update(additionalProperties=False), "spec: additionalProperties"),
        (
            lambda s: s["properties"]["spec"]["properties"].update(
                image={"anyOf": [{"type": "string"}, {"type": "null"}]}
            ),
            "spec.image: type must not be empty",
        ),
        (
            lambda s: s["properties"].update(metadata={"type": "object", "properties": {"labels": {"type": "object"}}}),
            "metadata at the root",
        ),
        (lambda s: s["properties"]["spec"]["properties"]["job"].pop("type"), "spec.job: type must not be empty"),
        (lambda s: s["properties"]["spec"]["properties"]["job"].update({"$ref": "#/x"}), "spec.job: $ref"),
        (lambda s: s["properties"]["spec"]["properties"]["job"]["properties"]["args"].pop("items"), "spec.job.args"),
        (
            lambda s: s.update(additionalProperties={"type": "string"}),
            "additionalProperties must not be used at the root",
        ),
    ],
)
def test_the_structural_checker_reports_what_the_apiserver_rejects(change: Any, complaint: str) -> None:
    problems = structural_problems(_broken(change))

    assert any(complaint in p for p in problems), problems
