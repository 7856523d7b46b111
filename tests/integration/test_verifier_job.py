"""The verifier job on real Flink through flinkops: a bounded run commits exactly 0..N-1 with intact state, and
the checker catches a deployment that starts over without its state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from integration.flinkops_cli import Flinkops, application, running
from support.verifier import ENTRY_CLASS, check, job_args, read_committed, replayed, wait_for_records

pytestmark = pytest.mark.integration

KEYS = 64
# Two counter/sink subtasks in one TaskManager, so commits of one checkpoint land at different moments.
CONFIG = {"taskmanager.numberOfTaskSlots": "2", "execution.checkpointing.interval": "1 s"}


def verifier(directory: Path, name: str, jar: Path, args: list[str], upgrade_mode: str = "savepoint") -> Path:
    return application(directory, name, jar, ENTRY_CLASS, args, CONFIG, parallelism=2, upgradeMode=upgrade_mode)


def job_state(resource: dict[str, Any] | None) -> str | None:
    state: str | None = ((resource or {}).get("status") or {}).get("jobStatus", {}).get("state")
    return state


def test_bounded_run_commits_every_record_once_and_the_checker_catches_a_restart_without_state(
    flinkops: Flinkops, testjobs: Path, tmp_path: Path
) -> None:
    """A bounded run commits exactly 0..N-1 with intact state (the live check passes while it runs). Then a new
    deployment (another name, so no savepoint or checkpoint to restore) writes into the same output: it starts
    again at seq 0 with empty state, as a botched upgrade that lost the job's state would, and the checker
    flags it on that real output."""
    output, trace = tmp_path / "output", tmp_path / "trace"
    args = job_args(output, records=3000, rate=500, keys=KEYS, trace=trace)
    flinkops.ok("apply", "-f", str(verifier(tmp_path, "verifier-bounded", testjobs, args)))
    wait_for_records(output, 600, timeout=240)
    live = check(output, keys=KEYS, live=True)
    assert live.ok, live.summary()  # a healthy running job passes the live check
    flinkops.wait_for("verifier-bounded", lambda r: job_state(r) in ("FINISHED", "FAILED"), 240, "job FINISHED")
    resource = flinkops.get("verifier-bounded")
    assert job_state(resource) == "FINISHED", (resource or {}).get("status")

    report = check(output, keys=KEYS, expect_records=3000)
    assert report.ok, report.summary()
    assert report.total == 3000 and report.logic_counts == {"v1": 3000}
    assert report.files >= 2, "the sink should commit on several checkpoints"
    assert replayed(trace) == 0, "nothing failed, so nothing may have been processed twice"
    assert len(list(trace.glob("trace-*.txt"))) == 2, "one trace file per counter subtask"
    pids = flinkops.cluster_pids("verifier-bounded")
    flinkops.ok("delete", "verifier-bounded")
    assert not any(running(p) for p in pids)

    committed = len(read_committed(output))
    second = verifier(tmp_path, "verifier-second", testjobs, job_args(output, rate=300, keys=KEYS, logic="v2"))
    flinkops.ok("apply", "-f", str(second))
    wait_for_records(output, committed + 300, timeout=240)
    pids = flinkops.cluster_pids("verifier-second")
    flinkops.ok("delete", "verifier-second")
    assert not any(running(p) for p in pids)

    report = check(output, keys=KEYS, live=True)
    assert not report.ok, report.summary()
    assert len(report.duplicates) >= 300, report.summary()
    assert min(report.duplicates) == 0
    assert report.logic_started == {"v1": 0, "v2": 0}, report.summary()
    assert "DUPLICATES" in report.summary()
