"""``flinkops get`` answers fast because it loads only what reading the store needs: no HTTP or S3 client, no
Kubernetes, controller, runtime or dev-service code, and no pydantic (neither the resource models nor typer's
coercion), and for a plain ``get`` not even typer or rich. Checked on the modules a real ``flinkops get`` run has
imported, not on a timing."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import flinkops
import flinkops.service
from flinkops.service import apply
from support.service import TestTarget, deployment, session_cluster, session_job

SOURCE = str(Path(flinkops.__file__).parents[1])  # the flinkops this test imported, not an installed one
NEVER = (
    "httpx",
    "httpx2",
    "lightkube",
    "boto3",
    "botocore",
    "yaml",
    "pydantic",
    "flinkops.api.models",
    "flinkops.dev",
    "flinkops.kube",
    "flinkops.controller",
    "flinkops.runtimes",
    "flinkops.snapshots",
    "flinkops.core",
    # A plain ``get`` needs no command-line framework and no console library (cli.entry, cli.listing).
    "typer",
    "rich",
)

_RUN = """
import json, runpy, sys
sys.argv = ["flinkops", *json.loads(sys.argv[1])]
try:
    runpy.run_module("flinkops", run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
with open(OUT, "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""


def imported_by(home: Path, *args: str) -> tuple[int, list[str]]:
    """The exit code and the modules loaded by one ``flinkops ARGS`` run."""
    out = home.parent / "modules.json"
    code = _RUN.replace("OUT", repr(str(out)))
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(args)],
        env={"FLINKOPS_HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONPATH": SOURCE},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    return result["code"], result["modules"]


def loaded(modules: list[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


@pytest.mark.parametrize("output", [[], ["-o", "json"], ["-o", "wide"]])
@pytest.mark.parametrize("stored", [False, True])
def test_get_loads_no_heavy_module(tmp_path: Path, output: list[str], stored: bool) -> None:
    home = tmp_path / "home"
    if stored:  # the jars these specs name need not exist: no preflight of local files
        apply(TestTarget(home), [deployment(), session_cluster(), session_job()], start_controller=False)
    code, modules = imported_by(home, "get", "-A", *output)
    assert code in (0, None)
    assert "flinkops.stores.sqlite" in modules  # it did read the store
    assert [name for name in NEVER if loaded(modules, name)] == []


def test_get_by_name_loads_no_heavy_module(tmp_path: Path) -> None:
    home = tmp_path / "home"
    apply(TestTarget(home), [deployment()], start_controller=False)
    code, modules = imported_by(home, "get", "fd", "fraud", "-n", "default", "-o", "json")
    assert code in (0, None)
    assert [name for name in NEVER if loaded(modules, name)] == []


def test_the_service_api_names_functions_and_classes_not_modules() -> None:
    """Submodules are named apart from the functions (``applying`` holds ``apply``): importing a submodule never
    replaces the function a caller gets from ``flinkops.service``."""
    for name in flinkops.service.__all__:
        __import__(f"flinkops.service.{flinkops.service._MODULE_OF[name]}")
    for name in flinkops.service.__all__:
        value = getattr(flinkops.service, name)
        assert not isinstance(value, ModuleType), name
        assert inspect.isfunction(value) or inspect.isclass(value), name


def test_help_lists_every_command_the_lazy_dev_group_included() -> None:
    from typer.testing import CliRunner

    from flinkops.cli.main import app

    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    listed = {line.split()[1] for line in result.output.splitlines() if line.startswith("│ ") and len(line.split()) > 2}
    expected = {"apply", "get", "describe", "delete", "suspend", "resume", "logs", "lint", "crds", "savepoint"}
    expected |= {"checkpoint", "snapshots", "restore", "rollback", "plan", "controller", "operator", "dev"}
    assert expected <= listed


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], {"kind_or_name": None, "name": None, "output": "table", "namespace": "default", "all_namespaces": False}),
        (
            ["fd", "fraud", "-n", "payments", "-o", "json"],
            {"kind_or_name": "fd", "name": "fraud", "output": "json", "namespace": "payments", "all_namespaces": False},
        ),
        (
            ["--output=yaml", "-A"],
            {"kind_or_name": None, "name": None, "output": "yaml", "namespace": "default", "all_namespaces": True},
        ),
        (["--help"], None),
        (["-ojson"], None),
        (["a", "b", "c"], None),
        (["-n"], None),
    ],
)
def test_a_plain_get_is_parsed_without_typer_and_anything_else_goes_to_typer(
    args: list[str], expected: dict[str, object] | None
) -> None:
    from flinkops.cli.entry import _plain_get

    assert _plain_get(args) == expected


def test_a_get_that_fails_on_the_fast_path_reports_through_typer(tmp_path: Path) -> None:
    """An unknown name: the fast path hands over, and the typer command prints the error with exit code 1."""
    code, modules = imported_by(tmp_path / "home", "get", "nope")
    assert code == 1
    assert loaded(modules, "typer")
