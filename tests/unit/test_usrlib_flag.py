"""``--usrlib DIR`` of apply, plan and lint: what the official image's ``/opt/flink/usrlib/`` is on this machine.
The flag wins over the ``flinkops.io/usrlib`` annotation, which wins over the YAML's own directory; a directory
that does not exist is exit 2 naming the flag, with nothing written. ``plan`` and ``describe`` show the path each
``/opt/flink/usrlib/...`` became. The CLI runs in this process on a local target with the real preflight."""

from __future__ import annotations

import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from flinkops.cli.main import app
from flinkops.errors import InvalidInput
from flinkops.service import describe
from flinkops.service.inputs import usrlib_dir
from support.service import TestTarget

JAR = "local:///opt/flink/usrlib/fraud.jar"


@pytest.fixture
def target(tmp_path: Path) -> TestTarget:
    return TestTarget(tmp_path / "home", preflight=True)


def jar(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "fraud.jar"
    with zipfile.ZipFile(path, "w") as out:
        out.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nMain-Class: org.example.Fraud\r\n")
    return path


def spec_file(directory: Path, annotation: str | None = None) -> Path:
    annotations = f"  annotations:\n    flinkops.io/usrlib: {annotation}\n" if annotation else ""
    text = (
        "apiVersion: flink.apache.org/v1beta1\nkind: FlinkDeployment\nmetadata:\n  name: basic\n"
        f"{annotations}spec:\n  flinkVersion: v2_2\n  job:\n    jarURI: {JAR}\n    parallelism: 1\n"
    )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "basic.yaml"
    path.write_text(text)
    return path


def mapped_to(output: str) -> str:
    """Where ``plan`` says the usrlib jar is."""
    [line] = [line for line in output.splitlines() if f"{JAR} →" in line]
    return line.split("→", 1)[1].strip().split(" ", 1)[0]


def test_plan_maps_usrlib_to_the_flag_over_the_yamls_directory(cli: CliRunner, tmp_path: Path) -> None:
    spec = spec_file(tmp_path / "yaml")
    chosen = jar(tmp_path / "build" / "libs")
    result = cli.invoke(app, ["plan", "-f", str(spec), "--usrlib", str(chosen.parent)])
    assert result.exit_code == 0, result.output
    assert mapped_to(result.output) == str(chosen)

    without = cli.invoke(app, ["plan", "-f", str(spec)])
    assert without.exit_code == 2 and str(tmp_path / "yaml" / "fraud.jar") in without.output, "default: the YAML's"


def test_the_flag_wins_over_the_annotation_and_the_annotation_over_the_yamls_directory(
    cli: CliRunner, tmp_path: Path
) -> None:
    spec = spec_file(tmp_path / "yaml", annotation="annotated")
    annotated = jar(tmp_path / "yaml" / "annotated")
    jar(tmp_path / "yaml")  # the YAML's own directory holds one too: it is not used
    flagged = jar(tmp_path / "flagged")
    assert mapped_to(cli.invoke(app, ["plan", "-f", str(spec)]).output) == str(annotated)
    result = cli.invoke(app, ["plan", "-f", str(spec), "--usrlib", str(flagged.parent)])
    assert mapped_to(result.output) == str(flagged)


def test_apply_with_the_flag_runs_the_jar_from_there_and_describe_says_so(
    cli: CliRunner, target: TestTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = spec_file(tmp_path / "yaml")
    chosen = jar(tmp_path / "libs")
    monkeypatch.chdir(tmp_path)
    result = cli.invoke(app, ["apply", "-f", str(spec), "--usrlib", "libs"])  # relative to the working directory
    assert result.exit_code == 0, result.output
    shown = describe(target, "basic")
    assert any(line.startswith(f"{JAR} → {chosen}") for line in shown.local_files), shown.local_files


def test_lint_preflights_the_jar_in_the_flags_directory(cli: CliRunner, tmp_path: Path) -> None:
    spec = spec_file(tmp_path / "yaml")
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = cli.invoke(app, ["lint", "-f", str(spec), "--usrlib", str(empty)])
    assert missing.exit_code == 2 and str(empty / "fraud.jar") in missing.output, missing.output
    jar(empty)
    assert cli.invoke(app, ["lint", "-f", str(spec), "--usrlib", str(empty)]).exit_code == 0


@pytest.mark.parametrize("command", ["apply", "plan", "lint"])
@pytest.mark.parametrize("kind", ["missing", "a-file"])
def test_a_usrlib_that_is_no_directory_is_exit_2_naming_the_flag_and_changes_nothing(
    cli: CliRunner, target: TestTarget, tmp_path: Path, command: str, kind: str
) -> None:
    spec = spec_file(tmp_path / "yaml")
    given = tmp_path / "nope"
    if kind == "a-file":
        given.write_text("not a directory")
    result = cli.invoke(app, [command, "-f", str(spec), "--usrlib", str(given)])
    assert result.exit_code == 2, result.output
    assert "--usrlib" in result.output and str(given) in result.output
    assert "does not exist" in result.output if kind == "missing" else "is not a directory" in result.output
    assert "Traceback" not in result.output
    assert target.documents() == [] and target.controller_starts == 0


def test_the_flag_is_refused_for_a_kubernetes_target(tmp_path: Path) -> None:
    kubernetes = SimpleNamespace(local=False)
    with pytest.raises(InvalidInput) as refused:
        usrlib_dir(kubernetes, tmp_path)  # type: ignore[arg-type]
    [problem] = refused.value.problems
    assert problem.path == "--usrlib" and "image" in problem.message
    assert usrlib_dir(kubernetes, None) is None  # type: ignore[arg-type]


def test_help_teaches_the_flag() -> None:
    result = CliRunner().invoke(app, ["apply", "--help"], env={"COLUMNS": "200"})
    assert "--usrlib" in result.output and "/opt/flink/usrlib/" in result.output
    assert "flinkops.io/usrlib" in result.output
