"""Loading FlinkDeployment / FlinkSessionJob YAML: what a user gets back for good and for bad input."""

from __future__ import annotations

import json
import textwrap

import pytest

from flinkops.api.loader import DOCUMENT_PATH, dump_resource, load_documents, load_object
from flinkops.api.models import FlinkDeployment, FlinkSessionJob, UpgradeMode
from flinkops.errors import InvalidInput, Problem

DEPLOYMENT = """\
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: fraud-scoring
  namespace: payments
spec:
  flinkVersion: v1_20
  job:
    jarURI: local:///opt/flink/usrlib/job.jar
    parallelism: 2
"""

SESSION_JOB = """\
apiVersion: flink.apache.org/v1beta1
kind: FlinkSessionJob
metadata:
  name: inv-job-1
spec:
  deploymentName: session
"""


def problems_of(text: str, source: str = "in.yaml") -> list[Problem]:
    with pytest.raises(InvalidInput) as caught:
        load_documents(text, source)
    return list(caught.value.problems)


def by_path(problems: list[Problem]) -> dict[str, Problem]:
    return {p.path: p for p in problems}


# --------------------------------------------------------------------------------------------- good input


def test_multi_document_text_yields_every_resource_in_order_and_skips_empty_documents() -> None:
    text = f"---\n{DEPLOYMENT}---\n# only a comment\n---\n{SESSION_JOB}---\n"

    resources = load_documents(text, "both.yaml")

    assert [type(r) for r in resources] == [FlinkDeployment, FlinkSessionJob]
    assert [r.metadata.name for r in resources] == ["fraud-scoring", "inv-job-1"]
    assert resources[0].metadata.namespace == "payments"
    assert resources[1].metadata.namespace == "default"


def test_empty_text_is_no_resources() -> None:
    assert load_documents("") == []
    assert load_documents("# nothing here\n---\n") == []


def test_kind_list_contributes_its_items() -> None:
    items = textwrap.indent(f"- {DEPLOYMENT.replace(chr(10), chr(10) + '  ')}", "  ")
    text = f"apiVersion: v1\nkind: List\nitems:\n{items}"

    resources = load_documents(text)

    assert [r.metadata.name for r in resources] == ["fraud-scoring"]


def test_nested_and_flat_flink_configuration_are_the_same_resource() -> None:
    flat = DEPLOYMENT + textwrap.indent(
        textwrap.dedent(
            """\
            flinkConfiguration:
              state.backend.type: rocksdb
              state.backend.incremental: true
              taskmanager.numberOfTaskSlots: 2
              high-availability.type: kubernetes
            """
        ),
        "  ",
    )
    nested = DEPLOYMENT + textwrap.indent(
        textwrap.dedent(
            """\
            flinkConfiguration:
              state:
                backend:
                  type: rocksdb
                  incremental: "true"
              taskmanager:
                numberOfTaskSlots: "2"
              high-availability:
                type: kubernetes
            """
        ),
        "  ",
    )

    (from_flat,) = load_documents(flat)
    (from_nested,) = load_documents(nested)

    assert from_flat == from_nested
    assert from_flat.spec.flink_configuration == {
        "state.backend.type": "rocksdb",
        "state.backend.incremental": "true",
        "taskmanager.numberOfTaskSlots": "2",
        "high-availability.type": "kubernetes",
    }


def test_unquoted_timestamps_stay_strings_like_kubectl_output() -> None:
    text = DEPLOYMENT.replace(
        "  namespace: payments\n", "  namespace: payments\n  creationTimestamp: 2024-05-01T10:00:00Z\n"
    )

    (resource,) = load_documents(text)

    assert resource.metadata.creation_timestamp == "2024-05-01T10:00:00Z"


def test_dump_is_the_crd_shape_and_loads_back_to_the_same_resource() -> None:
    (resource,) = load_documents(DEPLOYMENT)

    dumped = dump_resource(resource)

    assert dumped["apiVersion"] == "flink.apache.org/v1beta1"
    assert dumped["kind"] == "FlinkDeployment"
    assert dumped["spec"]["job"] == {
        "jarURI": "local:///opt/flink/usrlib/job.jar",
        "parallelism": 2,
        "args": [],
        "state": "running",
        "upgradeMode": "stateless",
    }
    assert "status" not in dumped  # nulls are left out
    assert "image" not in dumped["spec"]
    json.dumps(dumped)  # plain JSON data
    assert load_object(dumped) == resource


# --------------------------------------------------------------------------------------------- bad input


def test_malformed_yaml_reports_line_and_column_in_the_whole_file() -> None:
    text = DEPLOYMENT + "---\napiVersion: flink.apache.org/v1beta1\nkind: FlinkDeployment\nmetadata: name: x\n"

    (problem,) = problems_of(text)

    assert problem.source == "in.yaml#2"
    assert problem.path == DOCUMENT_PATH
    # The broken line is the 14th of the file: 10 lines of the first document, the separator, 3 more.
    assert problem.message.startswith("malformed YAML at line 14, column 15:")
    assert problem.hint


def test_a_malformed_document_does_not_hide_problems_in_the_next_one() -> None:
    text = "a: b: c\n---\n" + DEPLOYMENT.replace("parallelism: 2", "parallelism: two")

    problems = problems_of(text)

    assert [(p.source, p.path) for p in problems] == [
        ("in.yaml#1", DOCUMENT_PATH),
        ("in.yaml#2", "spec.job.parallelism"),
    ]


def test_tabs_get_a_hint_about_spaces() -> None:
    (problem,) = problems_of("apiVersion: flink.apache.org/v1beta1\nmetadata:\n\tname: x\n")

    assert "line 3, column 1" in problem.message
    assert "spaces, not tabs" in problem.hint


def test_duplicate_keys_are_an_error_not_a_silent_override() -> None:
    text = DEPLOYMENT + "  flinkConfiguration:\n    state.checkpoints.dir: s3://a\n    state.checkpoints.dir: s3://b\n"

    (problem,) = problems_of(text)

    assert "duplicate key 'state.checkpoints.dir'" in problem.message
    assert "line 13" in problem.message
    assert "first defined at line 12" in problem.message


def test_wrong_api_version_names_the_expected_one() -> None:
    text = DEPLOYMENT.replace("flink.apache.org/v1beta1", "flink.apache.org/v1alpha1")

    (problem,) = problems_of(text)

    assert problem.path == "apiVersion"
    assert "'flink.apache.org/v1alpha1'" in problem.message
    assert "expected 'flink.apache.org/v1beta1'" in problem.message


def test_wrong_api_version_does_not_hide_field_problems_of_the_same_document() -> None:
    text = DEPLOYMENT.replace("flink.apache.org/v1beta1", "v1").replace("parallelism: 2", "paralelism: 2")

    assert [p.path for p in problems_of(text)] == ["apiVersion", "spec.job.paralelism"]


@pytest.mark.parametrize(
    ("kind", "message", "hint"),
    [
        ("FlinkDeploymnet", "unsupported kind 'FlinkDeploymnet'", "did you mean 'FlinkDeployment'?"),
        ("Pod", "unsupported kind 'Pod'", "FlinkDeployment or FlinkSessionJob"),
        (
            "FlinkStateSnapshot",
            "kind 'FlinkStateSnapshot' is not supported",
            "FlinkDeployment or FlinkSessionJob",
        ),
    ],
)
def test_wrong_kind_is_named_with_a_suggestion(kind: str, message: str, hint: str) -> None:
    (problem,) = problems_of(DEPLOYMENT.replace("kind: FlinkDeployment", f"kind: {kind}"))

    assert problem.path == "kind"
    assert message in problem.message
    assert hint in problem.hint


def test_missing_api_version_and_kind() -> None:
    text = "metadata:\n  name: x\nspec: {}\n"

    problems = by_path(problems_of(text))

    assert set(problems) == {"apiVersion", "kind"}
    assert problems["apiVersion"].message == "missing required field"
    assert problems["kind"].message == "missing required field"


def test_a_document_that_is_not_a_mapping() -> None:
    (problem,) = problems_of("- just\n- a list\n")

    assert problem.path == DOCUMENT_PATH
    assert "got a list" in problem.message


@pytest.mark.parametrize(
    ("replace", "path", "message", "hint"),
    [
        (
            ("parallelism: 2", 'parallelism: "2"'),
            "spec.job.parallelism",
            "expected an integer, got the string '2'",
            "write 2 without quotes",
        ),
        (
            ("parallelism: 2", "parallelism: 2.5"),
            "spec.job.parallelism",
            "expected an integer, got the number 2.5",
            "whole number",
        ),
        (
            ("parallelism: 2", "parallelism: 2\n    args: [--window, 30, --strict]"),
            "spec.job.args[1]",
            "expected a string, got the number 30",
            'quote the value: "30"',
        ),
        (
            ("parallelism: 2", "parallelism: 2\n    allowNonRestoredState: 'true'"),
            "spec.job.allowNonRestoredState",
            "expected true or false, got the string 'true'",
            "without quotes",
        ),
        (
            ("  job:\n", "  jobManager:\n    resource: {cpu: '1'}\n  job:\n"),
            "spec.jobManager.resource.cpu",
            "expected a number, got the string '1'",
            "write 1 without quotes",
        ),
        (
            ("  job:\n", "  flinkConfiguration: [a, b]\n  job:\n"),
            "spec.flinkConfiguration",
            "expected a mapping, got a list",
            "key: value",
        ),
        (
            ("  job:\n", "  job: yes-please\n  x:\n"),
            "spec.job",
            "expected a mapping of fields, got the string 'yes-please'",
            "key: value",
        ),
    ],
)
def test_wrong_types_are_explained_at_their_yaml_path(
    replace: tuple[str, str], path: str, message: str, hint: str
) -> None:
    problems = by_path(problems_of(DEPLOYMENT.replace(*replace)))

    assert problems[path].message == message
    assert hint in problems[path].hint


def test_an_enum_lists_its_values_and_suggests_the_closest() -> None:
    text = DEPLOYMENT.replace("parallelism: 2", "parallelism: 2\n    upgradeMode: savepoints")

    (problem,) = problems_of(text)

    assert problem.path == "spec.job.upgradeMode"
    assert problem.message == "must be one of: stateless, last-state, savepoint"
    assert "did you mean 'savepoint'?" in problem.hint


@pytest.mark.parametrize(
    ("replace", "path", "message", "hint"),
    [
        (
            ("parallelism: 2", "paralelism: 2"),
            "spec.job.paralelism",
            "unknown field 'paralelism'",
            "did you mean 'parallelism'?",
        ),
        (
            ("parallelism: 2", "parallelism: 2\n    upgrade_mode: savepoint"),
            "spec.job.upgrade_mode",
            "unknown field 'upgrade_mode'",
            "did you mean 'upgradeMode'? YAML field names are camelCase",
        ),
        (
            ("  job:\n", "  jarURI: local:///x.jar\n  job:\n"),
            "spec.jarURI",
            "unknown field 'jarURI'",
            "'jarURI' belongs under spec.job",
        ),
        (
            ("  namespace: payments\n", "  namespace: payments\n  lables: {team: fraud}\n"),
            "metadata.lables",
            "unknown field 'lables'",
            "did you mean 'labels'?",
        ),
        (
            ("  job:\n", "  zzz: 1\n  job:\n"),
            "spec.zzz",
            "unknown field 'zzz'",
            "fields allowed under spec are:",
        ),
    ],
)
def test_unknown_fields_come_with_a_suggestion(replace: tuple[str, str], path: str, message: str, hint: str) -> None:
    (problem,) = problems_of(DEPLOYMENT.replace(*replace))

    assert (problem.path, problem.message) == (path, message)
    assert hint in problem.hint


def test_missing_name_and_missing_deployment_name() -> None:
    text = SESSION_JOB.replace("  name: inv-job-1\n", "  namespace: x\n").replace(
        "  deploymentName: session\n", "  job: {}\n"
    )

    problems = by_path(problems_of(text))

    assert set(problems) == {"metadata.name", "spec.deploymentName"}
    assert problems["metadata.name"].message == "missing required field"
    assert problems["spec.deploymentName"].message == "missing required field"
    assert "session-cluster FlinkDeployment" in problems["spec.deploymentName"].hint


def test_every_problem_of_every_document_is_reported_at_once_with_exact_paths() -> None:
    first = DEPLOYMENT.replace("parallelism: 2", 'parallelism: "2"\n    args: [a, b, 3]\n    upgradeMode: fast')
    second = SESSION_JOB.replace("  name: inv-job-1\n", "  namespace: team-a\n")
    third = DEPLOYMENT.replace("kind: FlinkDeployment", "kind: FlinkJob")
    text = "---\n".join([first, second, "# empty\n", DEPLOYMENT, third])

    problems = problems_of(text, "batch.yaml")

    assert sorted((p.source, p.path) for p in problems) == [
        ("batch.yaml#1", "spec.job.args[2]"),
        ("batch.yaml#1", "spec.job.parallelism"),
        ("batch.yaml#1", "spec.job.upgradeMode"),
        ("batch.yaml#2", "metadata.name"),
        ("batch.yaml#4", "kind"),
    ]
    assert all(p.hint for p in problems)


def test_errors_never_mention_the_validation_library() -> None:
    text = DEPLOYMENT.replace("parallelism: 2", 'parallelism: "2"\n    foo: 1\n    state: asleep')

    with pytest.raises(InvalidInput) as caught:
        load_documents(text)

    rendered = str(caught.value).lower()
    assert "pydantic" not in rendered
    assert "input should" not in rendered
    assert "errors.pydantic.dev" not in rendered


def test_no_partial_result_when_one_document_is_bad() -> None:
    with pytest.raises(InvalidInput):
        load_documents(DEPLOYMENT + "---\n" + SESSION_JOB.replace("deploymentName", "deployment"))


def test_load_object_validates_a_parsed_mapping() -> None:
    (resource,) = load_documents(SESSION_JOB)

    assert load_object(dump_resource(resource)) == resource
    with pytest.raises(InvalidInput) as caught:
        load_object({"apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkSessionJob", "metadata": {}}, "db")
    assert {p.path for p in caught.value.problems} == {"metadata.name", "spec"}
    assert {p.source for p in caught.value.problems} == {"db"}


def test_values_are_typed_models() -> None:
    text = DEPLOYMENT.replace("parallelism: 2", "parallelism: 2\n    upgradeMode: last-state")

    (resource,) = load_documents(text)

    assert isinstance(resource, FlinkDeployment)
    assert resource.spec.job is not None
    assert resource.spec.job.upgrade_mode is UpgradeMode.LAST_STATE


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [("v1", "Secret"), ("cert-manager.io/v1", "Certificate"), ("autoscaling/v2", "HorizontalPodAutoscaler")],
)
def test_a_kubernetes_object_next_to_flink_resources_is_named_as_such_once(api_version: str, kind: str) -> None:
    """The reference's TLS and HPA examples keep Secrets, cert-manager objects and an HPA in the same file. Each
    was two problems whose hints were wrong for it ("set apiVersion: flink.apache.org/v1beta1", "use kind
    FlinkDeployment"); failed before the fix."""
    text = f"apiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: x\n"
    (problem,) = problems_of(text)
    assert problem.path == "kind"
    assert f"'{kind}' ({api_version}) is not a Flink resource" in problem.message
    assert "kubectl" in problem.hint and "remove this document" in problem.hint
