"""Hostile and subtly invalid input: every case is invalid input (exit 2, the field path, nothing changed), found
in bounded time and memory, never a traceback. Covers what the loader bounds (encoding, size, nesting, alias
expansion, integer length), what validation adds (integer ranges, quantities, label and annotation rules,
a configuration key given twice) and that ``lint`` validates first."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flinkops.api.loader import load_documents
from flinkops.api.validation import validate_resource
from flinkops.cli.main import app
from flinkops.errors import Conflict, InvalidInput, Problem
from flinkops.ports import ResourceKey
from flinkops.service import apply, read_files
from support.service import TestTarget, deployment, deployment_yaml


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(InvalidInput) as exc:
        load_documents(text, "hostile.yaml")
    return exc.value.problems


def rendered(problems: list[Problem]) -> str:
    return "\n".join(p.render() for p in problems)


def paths(problems: list[Problem]) -> set[str]:
    return {p.path for p in problems}


def spec_problems(text: str) -> list[Problem]:
    """Problems of a document that parses: the loader's, or else validation's."""
    try:
        (resource,) = load_documents(text, "job.yaml")
    except InvalidInput as exc:
        return exc.problems
    return validate_resource(resource, default_state_dirs=True)


# ------------------------------------------------------------------------------------------------ files


@pytest.mark.parametrize(
    "content",
    [
        deployment_yaml("caf\xe9").encode("latin-1"),
        bytes(range(256)) * 8,
    ],
    ids=["latin-1", "binary"],
)
def test_a_file_that_is_not_utf8_is_invalid_input(target: TestTarget, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "job.yaml"
    path.write_bytes(content)
    with pytest.raises(InvalidInput) as exc:
        read_files(target, [path])
    text = rendered(exc.value.problems)
    assert "UTF-8" in text
    assert str(path) in text


def test_a_utf16_file_with_a_byte_order_mark_is_read(target: TestTarget, tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_bytes(deployment_yaml("good").encode("utf-16"))
    (resource,) = read_files(target, [path])
    assert resource.metadata.name == "good"


def test_a_file_larger_than_the_limit_is_refused_without_reading_it_all(target: TestTarget, tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("w") as f:
        f.write(deployment_yaml("big"))
        f.write("    args:\n")
        for _ in range(200_000):
            f.write("    - " + "x" * 40 + "\n")
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInput) as exc:
            read_files(target, [path])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "MiB" in rendered(exc.value.problems)
    assert peak < 16 * 2**20


# ------------------------------------------------------------------------------------------------ YAML shape


def test_deeply_nested_yaml_is_invalid_input_not_a_recursion_error() -> None:
    problems = problems_of("a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested" in rendered(problems)


def test_deeply_nested_mappings_are_invalid_input() -> None:
    text = deployment_yaml("deep") + "  podTemplate:\n"
    text += "".join("  " * (i + 2) + f"k{i}:\n" for i in range(300)) + "  " * 302 + "leaf: 1\n"
    assert "nested" in rendered(problems_of(text))


def test_an_alias_bomb_is_refused_in_bounded_memory() -> None:
    lines = [deployment_yaml("bomb").rstrip("\n"), "  podTemplate:", "    x-lol:", '      a: &a ["lol", "lol"]']
    previous = "a"
    for name in "bcdefghijklmnopqrstuvwxyz":
        lines.append(f"      {name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
        previous = name
    lines.append(f"    spec: *{previous}")
    tracemalloc.start()
    try:
        problems = problems_of("\n".join(lines) + "\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "alias" in rendered(problems)
    assert peak < 32 * 2**20


def test_an_input_of_countless_documents_is_refused_quickly() -> None:
    problems = problems_of("---\na: 1\n" * 100_000)
    assert len(problems) <= 2 * 1000 + 1  # two per document read (no apiVersion, no kind), then the refusal
    assert "documents" in problems[-1].message


def test_a_few_aliases_are_still_fine() -> None:
    text = deployment_yaml("anchors") + "    args: &args [a, b]\n"
    text += "  podTemplate:\n    metadata:\n      labels: &l {a: b}\n    spec:\n      x: *l\n"
    (resource,) = load_documents(text)
    assert resource.spec.job is not None and resource.spec.job.args == ["a", "b"]


def test_an_integer_with_thousands_of_digits_is_invalid_input() -> None:
    problems = problems_of(deployment_yaml("big").replace("parallelism: 1", "parallelism: " + "9" * 5000))
    assert "spec.job.parallelism" in rendered(problems) or "digits" in rendered(problems)


# ------------------------------------------------------------------------------------------------ all or nothing


def test_a_deep_pod_template_after_a_good_document_creates_nothing(cli: CliRunner, target: TestTarget) -> None:
    nested = "{}"
    for _ in range(400):
        nested = '{"a": ' + nested + "}"
    text = deployment_yaml("first") + "---\n" + deployment_yaml("second") + f"  podTemplate: {nested}\n"
    path = target.home / "deep.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    result = CliRunner().invoke(app, ["apply", "-f", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert target.documents() == []


def test_a_store_failure_part_way_through_a_batch_writes_nothing(target: TestTarget) -> None:
    store = target.store()
    apply(target, [deployment("leaving")])
    store.request_deletion(ResourceKey("FlinkDeployment", "default", "leaving"))
    before = target.documents()
    with pytest.raises(Conflict):
        apply(target, [deployment("new"), deployment("leaving", parallelism=2)])
    assert target.documents() == before  # 'new' was not created either


# ------------------------------------------------------------------------------------------------ ranges


@pytest.mark.parametrize("value", [2**63, 2**31, 32769])
def test_parallelism_beyond_what_flink_runs_is_refused(value: int) -> None:
    problems = spec_problems(deployment_yaml("wide").replace("parallelism: 1", f"parallelism: {value}"))
    assert "spec.job.parallelism" in paths(problems)


def test_parallelism_up_to_flinks_maximum_is_accepted() -> None:
    assert spec_problems(deployment_yaml("wide").replace("parallelism: 1", "parallelism: 32768")) == []


def test_replicas_beyond_a_kubernetes_int32_are_refused() -> None:
    text = deployment_yaml("many") + "  taskManager:\n    replicas: 4294967296\n"
    assert "spec.taskManager.replicas" in paths(spec_problems(text))


def test_a_nonce_beyond_a_java_long_is_refused() -> None:
    text = deployment_yaml("nonce") + "    savepointTriggerNonce: 9223372036854775808\n"
    assert "spec.job.savepointTriggerNonce" in paths(spec_problems(text))


# ------------------------------------------------------------------------------------------------ quantities


def with_resource(component: str, body: str) -> str:
    return deployment_yaml("sized") + f"  {component}:\n" + "".join(f"    {line}\n" for line in body.splitlines())


@pytest.mark.parametrize(
    ("component", "body", "path"),
    [
        ("jobManager", 'resource:\n  memory: "lots"', "spec.jobManager.resource.memory"),
        ("taskManager", 'resource:\n  memory: "-1g"', "spec.taskManager.resource.memory"),
        ("taskManager", 'resource:\n  memory: "1.5g"', "spec.taskManager.resource.memory"),
        ("taskManager", 'resource:\n  memory: "0"', "spec.taskManager.resource.memory"),
        ("taskManager", "resource:\n  cpu: -1", "spec.taskManager.resource.cpu"),
        ("jobManager", "resource:\n  cpu: 0", "spec.jobManager.resource.cpu"),
        ("jobManager", 'resource:\n  ephemeralStorage: "huge"', "spec.jobManager.resource.ephemeralStorage"),
        ("taskManager", 'resources:\n  requests:\n    cpu: "-500m"', "spec.taskManager.resources.requests.cpu"),
        ("taskManager", 'resources:\n  limits:\n    memory: "many"', "spec.taskManager.resources.limits.memory"),
    ],
)
def test_quantities_that_flink_or_kubernetes_reject_are_refused(component: str, body: str, path: str) -> None:
    problems = spec_problems(with_resource(component, body))
    assert path in paths(problems), rendered(problems)


@pytest.mark.parametrize("memory", ["2048m", "1g", "1 gb", "1024 mebibytes", "1073741824", "2Gi", "1.5Gi", "2G"])
def test_memory_sizes_in_flink_or_kubernetes_form_are_accepted(memory: str) -> None:
    body = f'resource:\n  memory: "{memory}"\n  cpu: 0.5'
    assert spec_problems(with_resource("taskManager", body)) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("taskmanager.memory.process.size", "lots"),
        ("jobmanager.memory.process.size", "2Gi"),
        ("taskmanager.memory.jvm-overhead.max", "-1m"),
        ("taskmanager.numberOfTaskSlots", "lots"),
        ("taskmanager.numberOfTaskSlots", "0"),
        ("parallelism.default", "99999999999"),
        ("flinkops.crash-loop.retries", "-1"),
        ("flinkops.crash-loop.backoff", "soon"),
        ("resourcemanager.taskmanager-timeout", "a while"),
        ("kubernetes.operator.observer.progress-check.interval", "often"),
    ],
)
def test_flink_options_flinkops_reads_itself_are_checked_as_flink_parses_them(key: str, value: str) -> None:
    text = deployment_yaml("conf") + f'  flinkConfiguration:\n    {key}: "{value}"\n'
    problems = spec_problems(text)
    assert [p.path for p in problems] == [f'spec.flinkConfiguration["{key}"]'], rendered(problems)


def test_a_kubernetes_exponent_size_is_refused_with_another_way_to_write_it() -> None:
    (problem,) = spec_problems(with_resource("taskManager", 'resource:\n  memory: "1e9"'))
    assert problem.path == "spec.taskManager.resource.memory" and "1G" in problem.hint


@pytest.mark.parametrize("cpu", ["500m", "2", "0.25"])
def test_cpu_quantities_are_accepted(cpu: str) -> None:
    body = f'resources:\n  requests:\n    cpu: "{cpu}"\n    memory: 2Gi'
    assert spec_problems(with_resource("jobManager", body)) == []


# ------------------------------------------------------------------------------------------------ metadata


def with_metadata(block: str) -> str:
    return deployment_yaml("tagged").replace("  name: tagged\n", "  name: tagged\n" + block)


@pytest.mark.parametrize(
    "key",
    ["bad key", "-leading", "a" * 64, "UPPER.example.com/" + "x", "a" * 254 + "/x", "example.com/", "a/b/c"],
)
def test_label_keys_kubernetes_rejects_are_refused(key: str) -> None:
    problems = spec_problems(with_metadata(f'  labels:\n    "{key}": "v"\n'))
    assert any(p.path.startswith("metadata.labels") for p in problems), rendered(problems)


@pytest.mark.parametrize("value", ["a" * 64, "has space", "-dash", "trailing."])
def test_label_values_kubernetes_rejects_are_refused(value: str) -> None:
    problems = spec_problems(with_metadata(f'  labels:\n    team: "{value}"\n'))
    assert "metadata.labels.team" in paths(problems), rendered(problems)


def test_valid_labels_are_accepted() -> None:
    block = '  labels:\n    app.kubernetes.io/name: fraud\n    team: ""\n    Tier_2: a.b-c_D\n'
    block += '    flink.apache.org/canary: "true"\n'
    assert spec_problems(with_metadata(block)) == []


def test_annotations_over_256_kib_in_total_are_refused() -> None:
    block = "  annotations:\n" + "".join(f'    note-{i}: "{"x" * 70_000}"\n' for i in range(4))
    assert "metadata.annotations" in paths(spec_problems(with_metadata(block)))


def test_an_invalid_annotation_key_is_refused() -> None:
    problems = spec_problems(with_metadata('  annotations:\n    "not a key": v\n'))
    assert any(p.path.startswith("metadata.annotations") for p in problems), rendered(problems)


# ------------------------------------------------------------------------------------------------ configuration


def test_a_configuration_key_given_flat_and_nested_with_different_values_is_refused() -> None:
    text = deployment_yaml("twice") + (
        '  flinkConfiguration:\n    taskmanager.numberOfTaskSlots: "2"\n    taskmanager:\n      numberOfTaskSlots: 4\n'
    )
    problems = problems_of(text)
    assert any(p.path.startswith("spec.flinkConfiguration") for p in problems)
    assert "taskmanager.numberOfTaskSlots" in rendered(problems)


def test_a_configuration_key_given_flat_and_nested_with_the_same_value_is_accepted() -> None:
    text = deployment_yaml("twice") + (
        '  flinkConfiguration:\n    taskmanager.numberOfTaskSlots: "2"\n    taskmanager:\n      numberOfTaskSlots: 2\n'
    )
    (resource,) = load_documents(text)
    assert resource.spec.flink_configuration["taskmanager.numberOfTaskSlots"] == "2"


# ------------------------------------------------------------------------------------------------ lint


def test_lint_reports_what_apply_rejects_as_errors_and_exits_2(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    bad = deployment_yaml("Bad_Name").replace("parallelism: 1", "parallelism: -1")
    path.write_text(bad + "---\n" + deployment_yaml("twin") + "---\n" + deployment_yaml("twin"))
    result = cli.invoke(app, ["lint", "-f", str(path)])
    assert result.exit_code == 2, result.output
    assert "no findings" not in result.output
    for expected in ("metadata.name", "spec.job.parallelism", "more than once", "default/Bad_Name", "default/twin"):
        assert expected in result.output


def test_lint_names_the_namespace_in_every_finding(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    text = deployment_yaml("fraud").replace("  name: fraud\n", "  name: fraud\n  namespace: payments\n")
    # last-state upgrades without retained checkpoints: a lint warning
    text += "    upgradeMode: last-state\n  flinkConfiguration:\n    state.checkpoints.dir: file:///tmp/c\n"
    path.write_text(text)
    result = cli.invoke(app, ["lint", "-f", str(path)])
    finding_lines = [line for line in result.output.splitlines() if line.startswith(("ERROR", "WARNING", "INFO"))]
    assert finding_lines, result.output
    assert all("payments/fraud" in line for line in finding_lines)


def test_a_front_end_parsing_documents_to_edit_them_meets_the_same_limits() -> None:
    """``parse_documents`` (the Airflow operator reads a rendered ``application_file`` with it, to set the run's
    name before validating): an alias bomb is refused in bounded memory, with where it is."""
    from flinkops.api.loader import parse_documents

    lines = ["a: &a [x, x]"]
    previous = "a"
    for name in "bcdefghijklmnopqrstuvwxyz":
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
        previous = name
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInput) as refused:
            parse_documents("\n".join(lines) + "\n", "job.yaml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * 2**20
    (problem,) = refused.value.problems
    assert "alias" in problem.message and problem.source == "job.yaml#1"
    assert parse_documents("---\n" + deployment_yaml("a") + "---\n\n---\nb: 1\n") == [
        *load_yaml_plain(deployment_yaml("a")),
        {"b": 1},
    ]


def load_yaml_plain(text: str) -> list[object]:
    import yaml

    return [d for d in yaml.safe_load_all(text) if d is not None]
