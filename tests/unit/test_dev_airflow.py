"""flinkops.dev.airflow without building anything: what the cached Airflow environment holds (never flinkops' own
code), how the checkout's environment runs the cached commands, and that the main test run keeps out of
tests/airflow (which only the Airflow environment can run). The environment itself is exercised for real by
tests/airflow, which runs in it."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from flinkops.artifacts import ArtifactError
from flinkops.dev.airflow import AIRFLOW_VERSION, _link_commands, cached_requirements

ROOT = Path(__file__).resolve().parents[2]


def test_the_cached_environment_holds_airflow_and_the_declared_dependencies_but_not_flinkops() -> None:
    wanted = cached_requirements(ROOT / "pyproject.toml")

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert wanted[0] == f"apache-airflow[statsd]=={AIRFLOW_VERSION}"
    assert set(declared) <= set(wanted)
    assert {"pytest>=8", "pytest-asyncio>=0.23"} <= set(wanted)
    # A worker whose connection targets the local runtime runs Flink from its own environment.
    assert any(line.startswith("apache-flink") for line in wanted)
    assert not [line for line in wanted if line.split("[")[0].split("=")[0].split(">")[0].strip() == "flinkops"]


def test_an_unreadable_pyproject_is_reported(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project\n")

    with pytest.raises(ArtifactError, match="cannot read flinkops' dependencies"):
        cached_requirements(tmp_path / "pyproject.toml")


def test_cached_commands_run_with_the_checkouts_interpreter(tmp_path: Path) -> None:
    cached, venv = tmp_path / "cache" / "airflow-env", tmp_path / "checkout" / ".venv-airflow"
    (cached / "bin").mkdir(parents=True)
    (venv / "bin").mkdir(parents=True)
    (cached / "bin" / "airflow").write_text(f"#!{cached}/bin/python3.11\nfrom airflow.__main__ import main\n")
    (cached / "bin" / "pytest").write_text(
        f"#!/bin/sh\n'''exec' \"{cached}/bin/python\" \"$0\" \"$@\"\n' '''\nimport pytest\n"
    )
    (cached / "bin" / "tool").write_bytes(b"\x7fELF binary")
    (cached / "bin" / "python").write_text("the interpreter itself")

    _link_commands(cached, venv)

    python = f"{venv}/bin/python"
    assert (venv / "bin" / "airflow").read_text().splitlines()[0] == f"#!{python}"
    assert python in (venv / "bin" / "pytest").read_text().splitlines()[1]
    assert os.access(venv / "bin" / "airflow", os.X_OK)
    assert (venv / "bin" / "tool").resolve() == cached / "bin" / "tool"
    assert not (venv / "bin" / "python").exists()  # the checkout's own interpreter is never replaced


def _collect(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif((Path(sys.executable).parent / "airflow").exists(), reason="checks the main environment")
def test_the_main_environment_refuses_to_run_the_airflow_tests() -> None:
    done = _collect("tests/airflow")

    assert done.returncode == 4, done.stdout + done.stderr
    assert "./.venv-airflow/bin/python -m pytest" in done.stdout + done.stderr


@pytest.mark.skipif((Path(sys.executable).parent / "airflow").exists(), reason="checks the main environment")
def test_the_main_environment_does_not_collect_the_airflow_tests() -> None:
    others = [
        f"--ignore=tests/{path.name}" for path in (ROOT / "tests").iterdir() if path.is_dir() and path.name != "airflow"
    ]

    done = _collect("tests", *others)

    assert done.returncode == 5, done.stdout + done.stderr  # nothing collected, and no error
    assert "tests/airflow" not in done.stdout
