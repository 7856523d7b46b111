"""``flinkops top`` and ``flinkops ui`` on the command line: one frame of the fleet with ``--once`` (live figures
shown as ``?`` while unknown, never as zero), and exit 2 for a name that does not exist or an address that would
let the page's actions leave the machine."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

from flinkops.cli import fleet
from flinkops.cli.fleet import frame
from flinkops.cli.main import app
from flinkops.core.cost import price_text
from flinkops.ports.flink import JobFigures
from flinkops.service import apply
from flinkops.service.fleet import Row, rows
from support.fleet import NOW_MS, job_figures, with_status
from support.service import TestTarget, deployment


def a_fleet(target: TestTarget) -> None:
    (applied,) = apply(target, [deployment("fraud")])
    with_status(target.store(), applied.resource, checkpoint_age_s=42, restarts=3)
    apply(target, [deployment("conversions")])


def text_of(table: object) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()


def test_top_once_prints_one_frame_of_the_fleet(target: TestTarget, cli: CliRunner) -> None:
    a_fleet(target)
    result = cli.invoke(app, ["top", "--once"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["NAMESPACE", "NAME", "LIFECYCLE", "JOB"]
    fraud = next(line for line in lines if " fraud " in line).split()
    assert fraud[:4] == ["default", "fraud", "STABLE", "RUNNING"]
    assert fraud[4:7] == ["?", "?", "?"]  # records/s in and out, backpressure: no live figures here
    # Restarts, then the price so far: the very figure `flinkops cost` reports (two hours of a running cluster).
    priced = json.loads(cli.invoke(app, ["cost", "fraud", "-o", "json"]).output)
    assert fraud[-3:] == ["3", *price_text(priced["total"]["price"], "USD").split()], priced["total"]
    assert priced["total"]["price"] > 0
    conversions = next(line for line in lines if " conversions " in line).split()
    assert conversions[:4] == ["default", "conversions", "CREATED", "?"]


def test_top_of_one_name_shows_only_it(target: TestTarget, cli: CliRunner) -> None:
    a_fleet(target)
    result = cli.invoke(app, ["top", "fraud", "--once"])
    assert result.exit_code == 0, result.output
    assert " fraud " in result.output and "conversions" not in result.output


def test_top_and_ui_for_a_name_that_does_not_exist_exit_2(target: TestTarget, cli: CliRunner) -> None:
    a_fleet(target)
    for command in (["top", "nope", "--once"], ["ui", "nope"], ["top", "fraud", "-n", "other", "--once"]):
        result = cli.invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        assert "NAME: no FlinkDeployment or FlinkSessionJob named" in result.output


def test_ui_serves_on_loopback_only(target: TestTarget, cli: CliRunner) -> None:
    result = cli.invoke(app, ["ui", "--address", "0.0.0.0"])
    assert result.exit_code == 2
    assert "--address: 0.0.0.0 is not a loopback address" in result.output


def test_top_rejects_a_non_positive_interval(target: TestTarget, cli: CliRunner) -> None:
    result = cli.invoke(app, ["top", "--interval", "0", "--once"])
    assert result.exit_code == 2 and "--interval" in result.output


def test_live_figures_fill_the_columns_while_the_job_runs(target: TestTarget) -> None:
    a_fleet(target)

    def figures(row: Row) -> JobFigures | None:
        return job_figures(records_in_per_second=1234.5, records_out_per_second=1200.0, backpressure_ratio=0.25)

    text = text_of(frame(rows(target), NOW_MS, figures))
    fraud = next(line for line in text.splitlines() if " fraud " in line).split()
    assert fraud[4:8] == ["1234.5", "1200.0", "25%", "42s"]
    conversions = next(line for line in text.splitlines() if " conversions " in line).split()
    assert conversions[4:7] == ["?", "?", "?"]  # not running: no figures asked for


def test_a_figure_flink_did_not_answer_is_unknown_not_zero(target: TestTarget) -> None:
    a_fleet(target)
    text = text_of(frame(rows(target, "default"), NOW_MS, lambda row: job_figures(records_in_per_second=0.0)))
    fraud = next(line for line in text.splitlines() if " fraud " in line).split()
    assert fraud[4:7] == ["0.0", "?", "?"]


def test_top_redraws_every_interval_until_ctrl_c(
    target: TestTarget, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_fleet(target)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:
            raise KeyboardInterrupt  # Ctrl-C
        apply(target, [deployment(f"new-{len(slept)}")])  # the fleet changes between frames

    monkeypatch.setattr(fleet.time, "sleep", sleep)
    result = cli.invoke(app, ["top", "--interval", "0.5"])
    assert result.exit_code == 0, result.output
    assert slept == [0.5, 0.5, 0.5]
    assert "new-1" in result.output and "new-2" in result.output
