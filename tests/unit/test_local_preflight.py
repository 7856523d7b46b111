"""Preflight of a job's local files in apply, plan and lint (issue 12, item 4), on the local target with the real
Flink distribution of the installed wheel: a missing jar, a jar without Main-Class and no entryClass, a missing
``-py`` script, an interpreter that cannot import pyflink each stop the command with exit 2, the field path and
what to do, before anything is written. ``plan`` and ``describe`` show what ``/opt/flink/...`` is here."""

from __future__ import annotations

import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from flinkops.api.models import FlinkDeployment
from flinkops.errors import InvalidInput
from flinkops.service import apply, describe, load_text, plan
from support.service import TestTarget

MAIN = "org.example.Fraud"


@pytest.fixture
def target(tmp_path: Path) -> TestTarget:
    return TestTarget(tmp_path / "home", preflight=True)


def jar(path: Path, main_class: str | None) -> Path:
    with zipfile.ZipFile(path, "w") as out:
        manifest = "Manifest-Version: 1.0\r\n" + (f"Main-Class: {main_class}\r\n" if main_class else "")
        out.writestr("META-INF/MANIFEST.MF", manifest)
    return path


def spec(target: TestTarget, base: Path, job: str, config: str = "") -> list[FlinkDeployment]:
    text = textwrap.dedent(
        """\
        apiVersion: flink.apache.org/v1beta1
        kind: FlinkDeployment
        metadata:
          name: basic
        spec:
          flinkVersion: v2_2
          flinkConfiguration:
            execution.checkpointing.interval: 10 s
        """
    )
    text += "".join(f"    {line}\n" for line in config.splitlines())
    text += "  job:\n" + "".join(f"    {line}\n" for line in textwrap.dedent(job).splitlines())
    found = load_text(target, text, "basic.yaml", base)
    assert all(isinstance(r, FlinkDeployment) for r in found)
    return [r for r in found if isinstance(r, FlinkDeployment)]


def problems(exc: pytest.ExceptionInfo[InvalidInput]) -> dict[str, str]:
    return {p.path: p.render() for p in exc.value.problems}


def bad_python(tmp_path: Path) -> Path:
    script = tmp_path / "python-without-pyflink"
    script.write_text("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'pyflink'\" >&2\nexit 1\n")
    script.chmod(0o755)
    return script


def test_a_missing_jar_stops_apply_with_its_field_and_writes_nothing(target: TestTarget, tmp_path: Path) -> None:
    resources = spec(target, tmp_path, "jarURI: local:///opt/flink/usrlib/fraud.jar\nparallelism: 1")
    with pytest.raises(InvalidInput) as exc:
        apply(target, resources)
    found = problems(exc)
    assert set(found) == {"spec.job.jarURI"}
    assert str(tmp_path / "fraud.jar") in found["spec.job.jarURI"]  # usrlib is the YAML's directory
    assert "FlinkDeployment" in found["spec.job.jarURI"]  # which resource
    assert target.documents() == [] and target.controller_starts == 0


def test_no_entry_class_and_no_main_class_in_the_jar_is_bad_input(target: TestTarget, tmp_path: Path) -> None:
    jar(tmp_path / "fraud.jar", None)
    resources = spec(target, tmp_path, "jarURI: local:///opt/flink/usrlib/fraud.jar\nparallelism: 1")
    with pytest.raises(InvalidInput) as exc:
        apply(target, resources)
    assert "set spec.job.entryClass" in problems(exc)["spec.job.entryClass"]
    assert target.documents() == []


def test_the_jars_main_class_is_enough_and_plan_shows_the_mapping(target: TestTarget, tmp_path: Path) -> None:
    jar(tmp_path / "fraud.jar", MAIN)
    resources = spec(target, tmp_path, "jarURI: local:///opt/flink/usrlib/fraud.jar\nparallelism: 1")
    report = plan(target, resources)
    notes = [n.message for n in report.resources[0].notes]
    assert any(n.startswith("local:///opt/flink/usrlib/fraud.jar → " + str(tmp_path / "fraud.jar")) for n in notes)
    assert any(MAIN in n for n in notes)
    assert [a.outcome for a in apply(target, resources)] == ["created"]
    shown = describe(target, "basic")
    assert any(str(tmp_path / "fraud.jar") in line for line in shown.local_files)


def test_a_usrlib_annotation_chooses_the_directory_relative_to_the_yaml(target: TestTarget, tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    jar(tmp_path / "jobs" / "fraud.jar", MAIN)
    text = textwrap.dedent(
        """\
        apiVersion: flink.apache.org/v1beta1
        kind: FlinkDeployment
        metadata:
          name: basic
          annotations:
            flinkops.io/usrlib: jobs
        spec:
          flinkVersion: v2_2
          job:
            jarURI: local:///opt/flink/usrlib/fraud.jar
            parallelism: 1
        """
    )
    resources = load_text(target, text, "basic.yaml", tmp_path)
    assert [a.outcome for a in apply(target, resources)] == ["created"]


def test_python_scripts_and_interpreters_are_checked_with_their_argument_paths(
    target: TestTarget, tmp_path: Path
) -> None:
    interpreter = bad_python(tmp_path)
    job = f"""\
        jarURI: local:///opt/flink/opt/flink-python-1.20.0.jar
        entryClass: org.apache.flink.client.python.PythonDriver
        args: ["-pyclientexec", "{interpreter}", "-py", "/opt/flink/usrlib/python_demo.py"]
        parallelism: 1
        """
    config = f'python.executable: "{interpreter}"'
    with pytest.raises(InvalidInput) as exc:
        plan(target, spec(target, tmp_path, job, config))
    found = problems(exc)
    assert set(found) == {"spec.job.args[1]", "spec.job.args[3]", 'spec.flinkConfiguration["python.executable"]'}
    assert "cannot import pyflink" in found["spec.job.args[1]"]
    assert "apache-flink" in found["spec.job.args[1]"]  # what to do
    assert str(tmp_path / "python_demo.py") in found["spec.job.args[3]"]


def test_a_python_job_with_its_script_and_an_interpreter_with_pyflink_passes(
    target: TestTarget, tmp_path: Path
) -> None:
    (tmp_path / "python_demo.py").write_text("print('hi')\n")
    job = f"""\
        jarURI: local:///opt/flink/opt/flink-python-1.20.0.jar
        entryClass: org.apache.flink.client.python.PythonDriver
        args: ["-pyclientexec", "{sys.executable}", "-py", "/opt/flink/usrlib/python_demo.py"]
        parallelism: 1
        """
    report = plan(target, spec(target, tmp_path, job))
    notes = [n.message for n in report.resources[0].notes]
    assert any(str(tmp_path / "python_demo.py") in n for n in notes)


def test_lint_exits_2_on_a_missing_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from flinkops.cli.main import app

    (tmp_path / "job.yaml").write_text(
        textwrap.dedent(
            """\
            apiVersion: flink.apache.org/v1beta1
            kind: FlinkDeployment
            metadata:
              name: py
            spec:
              flinkVersion: v2_2
              job:
                jarURI: local:///opt/flink/opt/flink-python-2.2.1.jar
                entryClass: org.apache.flink.client.python.PythonDriver
                args: ["-py", "gone.py"]
                parallelism: 1
            """
        )
    )
    monkeypatch.setenv("FLINKOPS_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["lint", "-f", str(tmp_path / "job.yaml")], env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert "spec.job.args[1]" in result.output and "gone.py" in result.output
    assert "Traceback" not in result.output


def test_a_session_jobs_jar_without_main_class_needs_an_entry_class(target: TestTarget, tmp_path: Path) -> None:
    jar(tmp_path / "job.jar", None)
    text = textwrap.dedent(
        """\
        apiVersion: flink.apache.org/v1beta1
        kind: FlinkDeployment
        metadata:
          name: session
        spec:
          flinkVersion: v2_2
        ---
        apiVersion: flink.apache.org/v1beta1
        kind: FlinkSessionJob
        metadata:
          name: sj
        spec:
          deploymentName: session
          job:
            jarURI: local:///opt/flink/usrlib/job.jar
            parallelism: 1
        """
    )
    with pytest.raises(InvalidInput) as exc:
        apply(target, load_text(target, text, "session.yaml", tmp_path))
    assert set(problems(exc)) == {"spec.job.entryClass"}
    assert "FlinkSessionJob" in problems(exc)["spec.job.entryClass"]
    assert target.documents() == []
