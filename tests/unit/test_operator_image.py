"""The operator image (deploy/docker/Dockerfile) without a Docker engine: its instructions, what it installs, and
whether the operator can run without Flink.

There is no container engine on the test machine, so the Dockerfile is parsed (continuations, exec and shell
forms, ARG defaults in FROM) and checked for what matters at runtime: a non-root numeric USER that matches the
Helm chart's securityContext, an exec-form ENTRYPOINT (so the operator is PID 1 and receives SIGTERM), no
remote ADD, no Flink. The build stage's one real step, building the flinkops wheel from the files the build
context admits, is run here for real, and the operator's CLI is run with pyflink made unimportable.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = REPO / "deploy" / "docker" / "Dockerfile.dockerignore"
CHART_VALUES = REPO / "deploy" / "helm" / "flinkops" / "values.yaml"

BASE_IMAGE = "python:3.11-slim"
FLINK_PACKAGES = re.compile(r"apache[-_]flink|pyflink|flinkops\[[^\]]*flink", re.IGNORECASE)


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str  # the rest of the logical line, continuations joined
    line: int  # where it starts, for failure messages

    def exec_form(self) -> list[str] | None:
        """The JSON-array ("exec") form's arguments, or None for the shell form."""
        try:
            parsed = json.loads(self.args)
        except ValueError:
            return None
        return parsed if isinstance(parsed, list) and all(isinstance(a, str) for a in parsed) else None

    def flags(self) -> dict[str, str]:
        """Leading ``--name=value`` options (``COPY --from=build``)."""
        return dict(re.findall(r"--([a-z-]+)=(\S+)", self.args.split(" ", 1)[0] if self.args else ""))


def parse(text: str) -> list[Instruction]:
    """Logical instructions: ``\\`` continuations joined, comment lines (also inside a continuation) dropped."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if not pending:
            start = number
        continued = stripped.endswith("\\")
        pending.append(stripped[:-1].strip() if continued else stripped)
        if continued:
            continue
        keyword, _, args = " ".join(part for part in pending if part).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        pending = []
    assert not pending, "the Dockerfile ends inside a line continuation"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """Instructions per build stage, each starting with its FROM."""
    result: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def global_args(instructions: list[Instruction]) -> dict[str, str]:
    """ARGs declared before the first FROM (the only ones a FROM line may use), with their defaults."""
    found: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG":
            name, _, default = instruction.args.partition("=")
            found[name.strip()] = default.strip().strip('"')
    return found


def expand(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: variables.get(m.group(1) or m.group(2), m.group(0)), text)


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


def test_every_stage_is_built_on_python_slim(instructions: list[Instruction]) -> None:
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


def admitted_paths() -> set[str]:
    """Top-level paths the .dockerignore lets into the build context (its rules are "exclude all, re-admit")."""
    rules = [r.strip() for r in DOCKERIGNORE.read_text().splitlines() if r.strip() and not r.startswith("#")]
    assert rules[0] == "*", "the context should start from nothing and admit what the build needs"
    kept: set[str] = set()
    for entry in REPO.iterdir():
        keep = False
        for rule in rules:
            negated = rule.startswith("!")
            pattern = rule.lstrip("!").rstrip("/")
            if fnmatch.fnmatchcase(entry.name, pattern):
                keep = negated
        if keep:
            kept.add(entry.name)
    return kept


# ------------------------------------------------------------------------------------------------ what runs


def test_the_wheel_the_image_installs_builds_from_the_admitted_files_and_needs_no_flink(
    instructions: list[Instruction], tmp_path: Path
) -> None:
    """The build stage's ``pip wheel --no-deps .`` (with build isolation, as in the image, so pip fetches the
    build backend pyproject.toml asks for), on a copy of exactly the files the build context admits."""
    build = " ".join(i.args for i in stages(instructions)[0] if i.keyword == "RUN")
    # What this test repeats is what the image does: the wheel alone, then installed without extras.
    assert "pip wheel --no-deps --wheel-dir /wheels ." in build
    assert re.search(r"pip install /wheels/flinkops-\*\.whl(\s|$)", build), build
    context = tmp_path / "context"
    context.mkdir()
    for name in sorted(admitted_paths()):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(source, context / name)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(tmp_path), "."],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = tmp_path.glob("flinkops-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    assert {"flinkops/cli/main.py", "flinkops/py.typed"} <= names
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    flink = [r for r in requires if FLINK_PACKAGES.search(r)]
    # Flink may only come in through the optional `flink` extra, which the image does not install.
    assert flink and all("extra ==" in r for r in flink), requires


_BLOCK_PYFLINK = """
import importlib.abc, sys
class NoFlink(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "pyflink" or name.startswith("pyflink."):
            raise ImportError("pyflink is not in the operator image")
        return None
sys.meta_path.insert(0, NoFlink())
"""


def run_without_pyflink(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _BLOCK_PYFLINK + code], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_cli_starts_without_pyflink() -> None:
    done = run_without_pyflink(
        "import sys\nfrom flinkops.cli.main import app\n"
        "from typer.testing import CliRunner\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'pyflink' not in sys.modules\n"
    )
    assert done.returncode == 0, done.stderr


# What `flinkops operator run` is made of (cli.operator imports the rest when the command runs).
OPERATOR_MODULES = (
    "flinkops.cli.operator",
    "flinkops.wiring.operator",
    "flinkops.kube",
    "flinkops.runtimes.kubernetes",
    "flinkops.stores.kubernetes",
    "flinkops.api.crds",
)


def test_the_operators_modules_import_without_pyflink() -> None:
    """Every module (and submodule) the operator is made of imports with pyflink unimportable."""
    done = run_without_pyflink(
        "import importlib, importlib.util, pkgutil, sys\n"
        f"for package in {OPERATOR_MODULES!r}:\n"
        "    module = importlib.import_module(package)\n"
        "    for info in pkgutil.walk_packages(getattr(module, '__path__', []), package + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "assert 'pyflink' not in sys.modules\n"
    )
    assert done.returncode == 0, done.stderr


def test_operator_run_needs_no_pyflink() -> None:
    """``flinkops operator run`` parses the options the chart passes, with pyflink unimportable. (Running it
    for real, with the chart's arguments and RBAC, is tests/kubernetes/test_helm_live.py's job.)"""
    done = run_without_pyflink(
        "import sys\nfrom flinkops.cli.main import app\n"
        "from typer.testing import CliRunner\n"
        "result = CliRunner().invoke(app, ['operator', 'run', '--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "import typer\n"
        "run = typer.main.get_command(app).commands['operator'].commands['run']\n"
        "options = {o for p in run.params for o in (*p.opts, *p.secondary_opts)}\n"
        "for option in ('--leader-election', '--no-leader-election', '--lease-name', '--lease-duration',\n"
        "               '--http-port'):\n"
        "    assert option in options, option\n"
        "assert 'pyflink' not in sys.modules\n"
    )
    assert done.returncode == 0, done.stderr
