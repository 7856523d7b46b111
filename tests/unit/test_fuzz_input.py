"""Fuzzing the input path with Hypothesis: for any generated input, the outcome is resources or ``InvalidInput``
(the CLI: exit 0, 1 or 2 with a message), never another exception, and never more than a fixed amount of
memory. Three generators: raw bytes (any encoding, any garbage), YAML text assembled from fragments that
stress the parser (anchors, aliases, flow brackets, tags, huge numbers), and resource-shaped documents with
arbitrary values in every field; the last also goes through ``lint``, ``plan`` and ``apply`` in this process,
where an apply that exits 2 must have written nothing. A fixed budget (``max_examples``, derandomized) keeps it
to seconds."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from flinkops.api.loader import decode_input, load_documents
from flinkops.api.validation import validate_against, validate_resource
from flinkops.cli.main import app
from flinkops.errors import InvalidInput
from support.service import TestTarget, cli_on

#: The most memory one example may allocate (tracemalloc's peak): the loader's bounds keep any input far below.
MEMORY_BOUND = 64 * 2**20

BUDGET = settings(
    max_examples=50,
    deadline=None,  # the memory tracer slows each example; the budget is the example count
    derandomize=True,
    database=None,  # the same examples every run: nothing to remember between runs, nothing written to the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)


def within_bound(check: Callable[[], None]) -> None:
    """Run ``check`` and assert its peak allocation stayed under ``MEMORY_BOUND``."""
    tracemalloc.start()
    try:
        check()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"peak {peak / 2**20:.1f} MiB"


def load_and_validate(text: str) -> None:
    """The input path of apply, plan and lint without a store: only ``InvalidInput`` may come out."""
    try:
        resources = load_documents(text, "fuzz.yaml")
    except InvalidInput as exc:
        assert exc.problems and all(p.message for p in exc.problems)
        return
    for resource in resources:
        validate_resource(resource, default_state_dirs=True)
    validate_against(resources, {})


# ------------------------------------------------------------------------------------------------ strategies

_FRAGMENTS = [
    "apiVersion: flink.apache.org/v1beta1\n",
    "kind: FlinkDeployment\n",
    "kind: FlinkSessionJob\n",
    "kind: List\nitems:\n",
    "metadata:\n  name: fuzz\n",
    "spec:\n",
    "  flinkVersion: v2_2\n",
    "  job:\n    jarURI: local:///job.jar\n    parallelism: ",
    "  flinkConfiguration:\n    a.b: 1\n    a:\n      b: 2\n",
    "  podTemplate: ",
    "&a ",
    "*a ",
    "&b [*a, *a, *a, *a]\n",
    "[" * 40,
    "]" * 40,
    "{" * 40,
    "}" * 40,
    "!!python/object:os.system ",
    "!!binary ",
    "9" * 30,
    "-1\n",
    "1e400\n",
    ".nan\n",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "? [a, b]\n: c\n",
    "<<: *a\n",
    "\t",
    "\x00",
    "\ufeff",
    "'\n",
    '"\\x',
    "- ",
    ": ",
    "\n",
    "    ",
]

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)


@st.composite
def resource_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A FlinkDeployment or FlinkSessionJob with arbitrary values in arbitrary fields."""
    kind = draw(st.sampled_from(["FlinkDeployment", "FlinkSessionJob", "Other"]))
    spec: dict[str, Any] = {"flinkVersion": "v2_2"} if kind == "FlinkDeployment" else {"deploymentName": "s"}
    job: dict[str, Any] = {"jarURI": "local:///job.jar", "parallelism": 1}
    fields = {
        "job.parallelism": job,
        "job.args": job,
        "job.upgradeMode": job,
        "job.savepointTriggerNonce": job,
        "flinkConfiguration": spec,
        "podTemplate": spec,
        "jobManager": spec,
        "taskManager": spec,
        "ingress": spec,
    }
    for name in draw(st.lists(st.sampled_from(sorted(fields)), max_size=4, unique=True)):
        fields[name][name.rsplit(".", 1)[-1]] = draw(_values)
    spec["job"] = job
    for component in ("jobManager", "taskManager"):
        if draw(st.booleans()):
            spec[component] = {
                "resource": {"memory": draw(_scalars), "cpu": draw(_scalars)},
                "resources": {"requests": {"cpu": draw(_scalars), "memory": draw(_scalars)}},
                "replicas": draw(st.integers()),
            }
    metadata: dict[str, Any] = {"name": draw(st.text(max_size=70) | st.just("fuzz"))}
    if draw(st.booleans()):
        metadata["labels"] = draw(st.dictionaries(st.text(max_size=80), _scalars, max_size=3))
    if draw(st.booleans()):
        metadata["namespace"] = draw(_scalars)
    return {"apiVersion": "flink.apache.org/v1beta1", "kind": kind, "metadata": metadata, "spec": spec}


# ------------------------------------------------------------------------------------------------ properties


@BUDGET
@given(st.binary(max_size=2048))
def test_any_bytes_are_read_or_refused(data: bytes) -> None:
    def check() -> None:
        try:
            text = decode_input(data, "fuzz.yaml")
        except InvalidInput:
            return
        load_and_validate(text)

    within_bound(check)


@BUDGET
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=30), st.integers(min_value=1, max_value=300))
def test_any_yaml_built_from_hostile_fragments_is_read_or_refused(parts: list[str], repeat: int) -> None:
    text = "".join(parts)
    within_bound(lambda: load_and_validate(text * (1 if len(text) * repeat > 200_000 else repeat)))


@BUDGET
@given(resource_documents())
def test_any_resource_shaped_document_is_read_or_refused(document: dict[str, Any]) -> None:
    text = yaml.safe_dump(document, allow_unicode=True)
    within_bound(lambda: load_and_validate(text))


@pytest.fixture
def target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestTarget:
    """The CLI in this process on a test target (a real SQLite store; the controller never starts)."""
    return cli_on(TestTarget(tmp_path / "home"), monkeypatch)


@settings(BUDGET, max_examples=20)
@given(document=resource_documents())
def test_the_cli_on_any_document_exits_0_1_or_2_and_an_apply_is_all_or_nothing(
    target: TestTarget, tmp_path: Path, document: dict[str, Any]
) -> None:
    path = tmp_path / "fuzz.yaml"
    second = {**document, "metadata": {"name": "second"}}
    path.write_text(yaml.safe_dump_all([second, document], allow_unicode=True))
    for command in ("lint", "plan"):
        result = CliRunner().invoke(app, [command, "-f", str(path)])
        assert result.exit_code in (0, 1, 2), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    before = target.documents()
    result = CliRunner().invoke(app, ["apply", "-f", str(path)])
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code == 2:
        assert target.documents() == before  # nothing of the file was written
