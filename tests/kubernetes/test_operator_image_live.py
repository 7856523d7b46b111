"""The operator image's runtime half, for real: the build stage's one real step (``pip wheel`` of flinkops from
exactly the files the build context admits; a wheel that needs no Flink), and the operator's CLI and modules run
in a Python process with pyflink made unimportable. The Dockerfile's instructions are checked without any process
in tests/unit/test_operator_image.py."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from support.dockerfile import DOCKERFILE, FLINK_PACKAGES, REPO, Instruction, admitted_paths, parse, stages

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text())


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
