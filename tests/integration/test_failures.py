"""A job that fails is reported, not hidden: FAILED with its exception in status.error and an event."""

from __future__ import annotations

from pathlib import Path

import pytest

from integration.flinkops_cli import Flinkops, application, running

pytestmark = pytest.mark.integration


def app(tmp_path: Path, jar: Path, name: str, entry: str, args: list[str] | None = None) -> Path:
    return application(tmp_path, name, jar, entry, args or [], {"restart-strategy.type": "none"})


def test_job_that_throws_lands_in_failed_with_its_exception(flinkops: Flinkops, testjobs: Path, tmp_path: Path) -> None:
    spec = app(tmp_path, testjobs, "failing", "flinkops.testjobs.FailingJob", ["--after", "20", "--rate", "20"])
    result = flinkops.run("apply", "-f", str(spec), "--wait", "--timeout", "180")
    assert result.code == 1, "apply --wait must fail when the job fails"
    status = flinkops.wait_lifecycle("failing", "FAILED")["status"]
    assert status["jobStatus"]["state"] == "FAILED"
    assert "deliberate failure after 20 records" in status["error"]
    assert "Warning" in flinkops.ok("describe", "failing")
    # A failed job keeps nothing running: its cluster is released once the cause is recorded.
    pids = flinkops.cluster_pids("failing")
    released = flinkops.wait_for("failing", lambda r: not flinkops.cluster_pids("failing"), 15, "cluster released")
    assert released is not None and "ClusterReleased" in flinkops.ok("describe", "failing")
    assert released["status"]["deploymentHistory"][-1]["endState"] == "FAILED"
    assert not any(running(p) for p in pids)
    flinkops.ok("delete", "failing")


def test_main_that_throws_lands_in_failed(flinkops: Flinkops, testjobs: Path, tmp_path: Path) -> None:
    spec = app(tmp_path, testjobs, "bad-main", "flinkops.testjobs.ThrowingMain")
    flinkops.run("apply", "-f", str(spec))
    status = flinkops.wait_lifecycle("bad-main", "FAILED")["status"]
    assert "main() refused to build the job" in status["error"]
    flinkops.ok("delete", "bad-main")


def test_missing_jar_is_bad_input_and_changes_nothing(flinkops: Flinkops, tmp_path: Path) -> None:
    spec = app(tmp_path, tmp_path / "nope.jar", "no-jar", "x.Y")
    result = flinkops.run("apply", "-f", str(spec))
    assert result.code == 2, result.stdout + result.stderr
    assert "spec.job.jarURI" in result.stderr and "nope.jar" in result.stderr
    assert "Traceback" not in result.stderr
    assert flinkops.get("no-jar") is None
    assert flinkops.cluster_pids("no-jar") == []
