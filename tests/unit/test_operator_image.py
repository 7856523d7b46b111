"""The operator image (deploy/docker/Dockerfile) without a Docker engine or any process: its instructions and
what it installs.

The Dockerfile is parsed (continuations, exec and shell
forms, ARG defaults in FROM) and checked for what matters at runtime: a non-root numeric USER that matches the
Helm chart's securityContext, an exec-form ENTRYPOINT (so the operator is PID 1 and receives SIGTERM), no
remote ADD, no Flink (the parser is ``support.dockerfile``). The build stage's one real step, building the flinkops
wheel from the files the build context admits, and the operator's CLI run with pyflink made unimportable are
tests/kubernetes/test_operator_image_live.py. The same recipe is built without Docker by flinkops' own packer
(tests/unit/test_operator_image_recipe.py compares the two) and run with runc in
tests/integration/test_operator_image_run.py.
"""

from __future__ import annotations

import re

import pytest
import yaml

from support.dockerfile import (
    DOCKERFILE,
    FLINK_PACKAGES,
    REPO,
    Instruction,
    admitted_paths,
    expand,
    global_args,
    parse,
    stages,
)

CHART_VALUES = REPO / "deploy" / "helm" / "flinkops" / "values.yaml"

# Debian's own Python 3.11 in both stages (the packer, flinkops.dev.node.operator_image, uses bookworm too).
BASE_IMAGE = "debian:bookworm-slim"


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text())


def chart_user() -> int:
    values = yaml.safe_load(CHART_VALUES.read_text())
    return int(values["securityContext"]["runAsUser"])


# ------------------------------------------------------------------------------------------------ the parser


def test_the_parser_joins_continuations_and_skips_comments() -> None:
    parsed = parse('FROM a AS b\n# note\nRUN one \\\n  # inside\n  && two\nENTRYPOINT ["x", "y"]\n')
    assert [(i.keyword, i.args, i.line) for i in parsed] == [
        ("FROM", "a AS b", 1),
        ("RUN", "one && two", 3),
        ("ENTRYPOINT", '["x", "y"]', 6),
    ]
    assert parsed[2].exec_form() == ["x", "y"]
    assert parse("CMD run it\n")[0].exec_form() is None


# ------------------------------------------------------------------------------------------------ the Dockerfile


def test_every_stage_is_built_on_debian_bookworm_slim(instructions: list[Instruction]) -> None:
    variables = global_args(instructions)
    all_stages = stages(instructions)
    assert len(all_stages) >= 2, "a multi-stage build: the runtime stage must not carry pip's build leftovers"
    for stage in all_stages:
        image = expand(stage[0].args.split()[0], variables)
        assert image == BASE_IMAGE or image.startswith(BASE_IMAGE + "@sha256:"), f"line {stage[0].line}: {image}"


def test_the_runtime_stage_runs_as_the_charts_numeric_non_root_user(instructions: list[Instruction]) -> None:
    runtime = stages(instructions)[-1]
    users = [i for i in runtime if i.keyword == "USER"]
    assert users, "the runtime stage sets no USER: the image would run as root"
    user, _, group = users[-1].args.partition(":")
    # Numeric, so the kubelet can enforce runAsNonRoot without reading /etc/passwd from the image.
    assert user.isdigit(), f"USER {users[-1].args!r} is not numeric"
    assert int(user) != 0 and (not group or (group.isdigit() and int(group) != 0))
    assert int(user) == chart_user(), "the image's user and the chart's securityContext.runAsUser differ"
    # The account exists in the image too (tools that look the uid up, like Python's getpass, work).
    created = " ".join(i.args for i in runtime if i.keyword == "RUN")
    assert re.search(rf"useradd\b.*--uid {user}\b", created), "no useradd for the USER's uid"


def test_nothing_is_added_from_a_remote_url(instructions: list[Instruction]) -> None:
    for instruction in instructions:
        if instruction.keyword == "ADD":
            sources = instruction.exec_form() or instruction.args.split()
            remote = [s for s in sources[:-1] if re.match(r"(https?|git|ssh)://|git@", s)]
            assert not remote, f"line {instruction.line}: ADD of {remote}: unpinned content no review can see"


def test_the_entrypoint_is_flinkops_in_exec_form(instructions: list[Instruction]) -> None:
    runtime = stages(instructions)[-1]
    entrypoints = [i for i in runtime if i.keyword == "ENTRYPOINT"]
    assert entrypoints, "no ENTRYPOINT in the runtime stage"
    # Exec form: flinkops is PID 1 and gets the kubelet's SIGTERM; a shell form would swallow it.
    assert entrypoints[-1].exec_form() == ["flinkops"]
    commands = [i for i in runtime if i.keyword == "CMD"]
    assert commands and commands[-1].exec_form() == ["operator", "run"]


def test_the_exposed_port_is_the_charts_http_port(instructions: list[Instruction]) -> None:
    exposed = [i.args.split("/")[0] for i in stages(instructions)[-1] if i.keyword == "EXPOSE"]
    assert exposed == [str(yaml.safe_load(CHART_VALUES.read_text())["httpPort"])]


def test_no_flink_is_installed(instructions: list[Instruction]) -> None:
    for instruction in instructions:
        if instruction.keyword in {"RUN", "COPY", "ADD", "ENV", "ARG"}:
            assert not FLINK_PACKAGES.search(instruction.args), f"line {instruction.line}: {instruction.args}"


def test_copy_sources_exist_and_the_build_context_admits_them(instructions: list[Instruction]) -> None:
    named_stages = {
        stage[0].args.split()[-1] for stage in stages(instructions) if " as " in f" {stage[0].args.lower()} "
    }
    admitted = admitted_paths()
    copied = 0
    for instruction in instructions:
        if instruction.keyword != "COPY":
            continue
        source_stage = instruction.flags().get("from")
        if source_stage is not None:
            assert source_stage in named_stages, f"line {instruction.line}: no stage named {source_stage}"
            continue
        words = [w for w in instruction.args.split() if not w.startswith("--")]
        for source in words[:-1]:
            path = REPO / source
            assert path.exists(), f"line {instruction.line}: {source} is not in the repository"
            assert source.rstrip("/") in admitted, f"line {instruction.line}: the .dockerignore excludes {source}"
            copied += 1
    assert copied >= 2
