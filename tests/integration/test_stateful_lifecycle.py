"""Stateful lifecycle on real Flink, proven record by record with the verifier job.

Each scenario runs the verifier (an ordered, checkpointed sequence keyed by 64 keys, per-key counts in state,
an exactly-once file sink) through flinkops, does something that used to lose state (an upgrade, a broken
version, a SIGKILL, a controller crash mid-upgrade, a point-in-time restore), lets the bounded job finish and
checks the committed output: every record exactly once, every count continuing where the state left it.

A Flink start costs 10-20 s here, so scenarios that can follow each other on one running job are chained in one
test (the savepoint upgrade v1 -> v2, a controller crash in the upgrade to a broken v3 and its rollback to v2;
the JobManager SIGKILL, the TaskManager SIGKILL and the last-state upgrade; the savepoint on demand, the manual
rollback and the point-in-time restore).
Each step of a chained test is a ``Steps`` block (tests/support/steps.py): it prints when it starts (``pytest -s``)
and a failure inside it names it. Each test stays under ~150 s, as tests/conftest.py runs each as its own group.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from integration.flinkops_cli import Flinkops, application, running
from support.steps import Steps
from support.verifier import ENTRY_CLASS, check, job_args, read_committed, replayed, trace_counts, wait_for_records

pytestmark = pytest.mark.integration

KEYS = 64
RATE = 200
INTERVAL_MS = 1000
BASE = {
    "taskmanager.numberOfTaskSlots": "2",
    "execution.checkpointing.interval": "1 s",
    # Most scenarios end by waiting for the bounded job to FINISH. A STABLE resource with nothing to do is looked
    # at again after the reconcile interval (1 min by default), and Flink's REST API serves job states from a
    # cache refreshed every web.refresh-interval (3 s): without these the end was seen up to a minute late.
    "kubernetes.operator.reconcile.interval": "1 s",
    "web.refresh-interval": "500 ms",
}
#: Upgrades in the usual order (stop, then start the new cluster). The savepoint upgrade v1 -> v2 proves pre-started
#: upgrades on real Flink; the other upgrades keep their short bounded jobs, which a pre-started cluster's start
#: could outlast (its every path is proven on fakes in tests/behaviour/test_prestart.py).
OLD_ORDER = {"flinkops.upgrade.prestart": "false"}


def write(tmp: Path, name: str, jar: Path, args: list[str], mode: str, **config: str) -> Path:
    return application(tmp, name, jar, ENTRY_CLASS, args, {**BASE, **config}, parallelism=2, upgradeMode=mode)


def status(resource: dict[str, Any] | None) -> dict[str, Any]:
    return dict((resource or {}).get("status") or {})


def job_state(resource: dict[str, Any] | None) -> str | None:
    state: str | None = status(resource).get("jobStatus", {}).get("state")
    return state


def at_generation(generation: int, *states: str) -> Any:
    def settled(resource: dict[str, Any] | None) -> bool:
        s = status(resource)
        return (s.get("observedGeneration") or 0) >= generation and s.get("lifecycleState") in states

    return settled


def finished(flinkops: Flinkops, name: str, timeout: float = 240) -> dict[str, Any]:
    found = flinkops.wait_for(name, lambda r: job_state(r) in ("FINISHED", "FAILED"), timeout, "job FINISHED")
    assert job_state(found) == "FINISHED", flinkops.events(name)
    assert found is not None
    return found


def teardown(flinkops: Flinkops, name: str) -> None:
    pids = flinkops.cluster_pids(name)
    flinkops.ok("delete", name)
    assert not any(running(p) for p in pids), "delete leaves no Flink process behind"


# ------------------------------------------------------------------ upgrades


def test_savepoint_upgrade_v1_to_v2_then_a_broken_v3_rolls_back_to_v2(
    flinkops: Flinkops, testjobs: Path, tmp_path: Path
) -> None:
    """Three scenarios on one job, one Flink start: (1) a savepoint upgrade v1 -> v2 on a pre-started cluster loses
    and duplicates nothing; (2) the controller dies in the upgrade to v3 after v2's savepoint completed and before
    it was recorded, and the restarted controller starts v3 from it; (3) the broken v3 (its counters throw) is
    rolled back to the stable v2, which carries on with its state. The bounded job finishes under v2 and every
    record is checked."""
    steps = Steps("savepoint upgrade v1 -> v2, controller crash upgrading to a broken v3, rolled back to v2")
    out = tmp_path / "out"
    # v1 must outlive the upgrade's first step: the new cluster's JVMs start next to it before it stops (on a
    # busy 2-core machine that took from 13 s to 45 s: up to 11000 records at the usual rate). v2 changes the rate
    # along with the logic and runs five times as fast, so the rest after the rollback takes seconds; it still has
    # 15000 records (15 s) for becoming stable and being stopped for v3, which takes about 10 s.
    records = 27000

    def version(logic: str, rate: float, **config: str) -> Path:
        args = job_args(
            out, records=records, rate=rate, keys=KEYS, logic=logic, fail_after=300 if logic == "v3" else None
        )
        (tmp_path / logic).mkdir()  # one file per version: the last plan is of v1 itself
        return write(tmp_path / logic, "sp-upgrade", testjobs, args, "savepoint", **config)

    v1 = version("v1", RATE)
    with steps("deploy v1"):
        flinkops.ok("apply", "-f", str(v1), "--wait", "--timeout", "180")
        wait_for_records(out, 1000, timeout=120)

    with steps("savepoint upgrade v1 -> v2: plan, then apply"):
        v2 = version("v2", 5 * RATE)
        old_job = status(flinkops.get("sp-upgrade"))["jobStatus"]["jobId"]
        generation = flinkops.get("sp-upgrade")["metadata"]["generation"]  # type: ignore[index]
        preview = flinkops.ok("plan", "-f", str(v2))
        assert "UPGRADE (spec.job.args" in preview, preview
        assert f"stop job {old_job} with a savepoint" in preview, preview
        assert "expected downtime" in preview and "Lint:" in preview, preview
        assert flinkops.get("sp-upgrade")["metadata"]["generation"] == generation, "plan changes nothing"  # type: ignore[index]
        flinkops.ok("apply", "-f", str(v2), "--wait", "--timeout", "180")

    with steps("savepoint upgrade v1 -> v2: restored from the upgrade savepoint on the pre-started cluster"):
        upgraded = status(flinkops.get("sp-upgrade"))
        restored = upgraded["jobStatus"]["upgradeSavepointPath"]
        assert "/savepoint-" in restored, f"a savepoint upgrade restores from a savepoint, not {restored}"
        last = upgraded["jobStatus"]["savepointInfo"]["lastSavepoint"]
        assert last["triggerType"] == "UPGRADE" and last["location"] == restored, last
        committed = len(read_committed(out))

    with steps("broken v3 applied: v2 stopped with a savepoint"):
        # v3 stops v2 first (no pre-start: the failing job is deployed the usual way) and may roll back.
        v3 = version(
            "v3",
            5 * RATE,
            **OLD_ORDER,
            **{
                "kubernetes.operator.deployment.rollback.enabled": "true",
                "kubernetes.operator.deployment.readiness.timeout": "60 s",
            },
        )
        wait_for_records(out, committed + 200, timeout=60)  # v2 wrote its own records before v3 is applied
        old_pids = set(flinkops.cluster_pids("sp-upgrade"))

    with steps("the controller dies once v2's upgrade savepoint is done, before it is recorded"):
        # Flink's application cluster shut down with the job: the restarted controller must read the savepoint from
        # storage (the truth), not start v3 from an older checkpoint. Every other crash point of every action is
        # proven on fakes in tests/behaviour/test_crash_safety.py, in seconds.
        flinkops.ok("controller", "stop")
        flinkops.extra_env = {"FLINKOPS_FAILPOINT": "before:DeleteCluster"}
        try:
            flinkops.ok("controller", "start")
            pid = flinkops.controller_pid()
            flinkops.ok("apply", "-f", str(v3), "--no-start-controller")
            deadline = time.monotonic() + 120
            while running(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not running(pid), "the controller should have died before deleting v2's cluster"
        finally:
            flinkops.extra_env = {}
        crashed = status(flinkops.get("sp-upgrade"))
        assert crashed["reconciliationStatus"]["state"] == "UPGRADING", "the write-ahead intent is on record"
        flinkops.ok("controller", "start")

    with steps("broken v3, started from that savepoint, is rolled back to v2 when its job fails"):
        rolled = flinkops.wait_for("sp-upgrade", at_generation(3, "ROLLED_BACK"), 240, "ROLLED_BACK")
        s = status(rolled)
        v3_run = next(r for r in s["deploymentHistory"] if r["generation"] == 3)
        assert "/savepoint-" in (v3_run.get("restoredFrom") or ""), v3_run
        assert not any(running(p) for p in old_pids), "v2's old cluster is gone"
        assert (
            json.loads(s["reconciliationStatus"]["lastReconciledSpec"])["spec"]["job"]["args"]
            == json.loads(s["reconciliationStatus"]["lastStableSpec"])["spec"]["job"]["args"]
        ), "the stable (v2) spec runs again"
        events = flinkops.events("sp-upgrade")
        assert "Rollback" in events and "deliberate v3 failure" in events, events

    with steps("savepoint upgrade v1 -> v2 (seen afterwards): pre-started, and its downtime feeds the next plan"):
        # Read after v3 was applied: the v2 job's time before v3 is kept short (the events stay on record).
        assert "PrestartReady" in events, f"the v2 cluster was pre-started and promoted: {events}"
        assert "SavepointCompleted" in events, events
        again = flinkops.ok("plan", "-f", str(v1))
        assert "expected downtime: ~" in again, f"the measured downtime of the upgrade feeds the next plan:\n{again}"

    with steps("the rolled-back v2 finishes: every record once, state carried through v1, v2, v3 and v2"):
        finished(flinkops, "sp-upgrade")
        report = check(out, keys=KEYS, expect_records=records)
        assert report.ok, report.summary()
        # v3 may commit a checkpoint or two before it throws; the rolled-back v2 continues from its state.
        logic = [run.logic for run in report.logic_runs]
        assert logic in (["v1", "v2"], ["v1", "v2", "v3", "v2"]), report.summary()
        teardown(flinkops, "sp-upgrade")


def test_savepoints_on_demand_manual_rollback_and_restore_to_a_point_in_time(
    flinkops: Flinkops, testjobs: Path, tmp_path: Path
) -> None:
    """Three scenarios on one job, one Flink start: (1) a savepoint on demand is recorded and listed; (2) a new
    spec that is up but not trusted yet is rolled back by hand, the job carrying on with its state; (3) a restore
    to a point in time (after refusing bad input) replays from the savepoint of that moment. The job is
    suspended at the end and every record is checked: none lost, state carried, the restore's replay the only
    duplicates."""
    steps = Steps("savepoint on demand, manual rollback, point-in-time restore")
    out = tmp_path / "out"

    def version(logic: str, **config: str) -> Path:
        (tmp_path / logic).mkdir()
        args = job_args(out, rate=RATE, keys=KEYS, logic=logic)
        return write(tmp_path / logic, "manual", testjobs, args, "savepoint", **config)

    with steps("deploy v1"):
        flinkops.ok("apply", "-f", str(version("v1")), "--wait", "--timeout", "180")

    with steps("savepoint on demand: recorded as MANUAL and listed"):
        printed = flinkops.ok("savepoint", "manual", "--timeout", "120")
        location = printed.strip().splitlines()[-1].split(": ", 1)[1]
        info = status(flinkops.get("manual"))["jobStatus"]["savepointInfo"]
        assert info["lastSavepoint"]["location"] == location and info["lastSavepoint"]["triggerType"] == "MANUAL"
        assert (Path(location.removeprefix("file:")) / "_metadata").is_file()
        listing = json.loads(flinkops.ok("snapshots", "manual", "-o", "json"))["snapshots"]
        assert any(s["path"] == location and s["trigger"] == "MANUAL" and s["generation"] == 1 for s in listing)

    with steps("manual rollback: v2 is up but not stable yet, rolled back by hand to v1 with its state"):
        # Not stable: it must run 10 minutes first.
        v2 = version("v2", **{"flinkops.stability.min-running-time": "10 min"})
        flinkops.ok("apply", "-f", str(v2))
        flinkops.wait_for(
            "manual", lambda r: at_generation(2, "DEPLOYED")(r) and job_state(r) == "RUNNING", 180, "v2 up"
        )
        wait_for_records(out, len(read_committed(out)) + 200, timeout=120)
        flinkops.ok("rollback", "manual", "--wait", "--timeout", "180")
        rolled = status(flinkops.get("manual"))
        assert rolled["lifecycleState"] == "ROLLED_BACK" and rolled["jobStatus"]["state"] == "RUNNING", rolled
        wait_for_records(out, len(read_committed(out)) + 200, timeout=120)

    with steps("point-in-time restore: a savepoint, then more records"):
        printed = flinkops.ok("savepoint", "manual", "--timeout", "120")
        target = printed.strip().splitlines()[-1].split(": ", 1)[1]
        snapshots = json.loads(flinkops.ok("snapshots", "manual", "-o", "json"))["snapshots"]
        moment = next(s for s in snapshots if s["path"] == target)["timeMs"]
        wait_for_records(out, len(read_committed(out)) + 400, timeout=120)

    with steps("point-in-time restore: bad input changes nothing"):
        generation = flinkops.get("manual")["metadata"]["generation"]  # type: ignore[index]
        early = flinkops.run("restore", "manual", "--to", "2001-01-01T00:00:00Z")
        assert early.code == 2 and "no snapshot at or before" in early.stderr, early
        missing = flinkops.run("restore", "manual", "--to", str(tmp_path / "nope"))
        assert missing.code == 2 and "not a completed checkpoint or savepoint" in missing.stderr, missing
        assert flinkops.get("manual")["metadata"]["generation"] == generation  # type: ignore[index]

    with steps("point-in-time restore: the savepoint of that moment is restored"):
        # Any time after the savepoint and before the next snapshot selects it (checkpoints are more frequent, so
        # ask for the savepoint's own completion time).
        moment_iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment / 1000)) + f".{moment % 1000:03d}Z"
        flinkops.ok("restore", "manual", "--to", moment_iso, "--wait", "--timeout", "180")
        restored = status(flinkops.get("manual"))["jobStatus"]["upgradeSavepointPath"]
        assert restored == target, f"restored {restored}, not the savepoint {target}"
        committed = len(read_committed(out))
        wait_for_records(out, committed + 400, timeout=120)

    with steps("suspend; every record checked: the restore's replay is the only duplicate range"):
        flinkops.ok("suspend", "manual")
        flinkops.wait_lifecycle("manual", "SUSPENDED", 120)
        # Restoring replays from the savepoint: the records after it come again, with the state of that moment.
        report = check(out, keys=KEYS)
        assert not report.state_breaks and not report.missing and not report.malformed, report.summary()
        dupes = sorted(report.duplicates)
        assert dupes and dupes == list(range(dupes[0], dupes[-1] + 1)), "one contiguous replayed range"
        assert all(n == 2 for n in report.duplicates.values()), report.summary()
        assert [run.logic for run in report.logic_runs] == ["v1", "v2", "v1"], report.summary()
        teardown(flinkops, "manual")


def test_periodic_savepoints_with_retention(flinkops: Flinkops, testjobs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = {
        "kubernetes.operator.periodic.savepoint.interval": "3 s",
        "kubernetes.operator.savepoint.history.max.count": "2",
        "kubernetes.operator.savepoint.dispose-on-delete": "true",
    }
    spec = write(tmp_path, "periodic", testjobs, job_args(out, rate=RATE, keys=KEYS), "savepoint", **config)
    flinkops.ok("apply", "-f", str(spec), "--wait", "--timeout", "180")

    def enough(resource: dict[str, Any] | None) -> bool:
        events = flinkops.events("periodic")
        return events.count("SavepointRetention") >= 2

    flinkops.wait_for("periodic", enough, 120, "two retention passes")

    def history() -> list[str]:
        info = status(flinkops.get("periodic"))["jobStatus"]["savepointInfo"]
        assert all(s["triggerType"] == "PERIODIC" for s in info["savepointHistory"]), info
        return [s["location"] for s in info["savepointHistory"]]

    # A savepoint comes every 3 s and retention follows it, and on a busy machine listing storage (a CLI run) can
    # outlast a savepoint or two. So the history is read before and after the listing, and compared when at most
    # one savepoint came in between: a savepoint in both reads was kept the whole time and must be in storage, and
    # storage holds nothing that neither read kept but the one savepoint that may be in flight.
    for _ in range(20):
        before = history()
        on_disk = [
            s["path"]
            for s in json.loads(flinkops.ok("snapshots", "periodic", "-o", "json"))["snapshots"]
            if s["kind"] == "savepoint"
        ]
        after = history()
        kept = [path for path in before if path in after]
        if kept and len(set(after) - set(before)) <= 1:
            break
    else:
        raise AssertionError("the savepoint history moved on while storage was listed, 20 times in a row")
    assert 1 <= len(before) <= 2 and 1 <= len(after) <= 2, (before, after)
    assert set(kept) <= set(on_disk), "kept savepoints are still in storage"
    stray = set(on_disk) - set(before) - set(after)
    assert len(stray) <= 1, f"trimmed savepoints are disposed (one may be in flight): {on_disk}; kept {before}, {after}"

    # Retention keeps working while the job is stopped, and never removes the savepoint it would resume from.
    flinkops.ok("suspend", "periodic")
    suspended = status(flinkops.wait_lifecycle("periodic", "SUSPENDED", 120))
    resume_from = suspended["jobStatus"]["upgradeSavepointPath"]
    assert (Path(resume_from.removeprefix("file:")) / "_metadata").is_file()
    flinkops.ok("resume", "periodic")
    flinkops.wait_for("periodic", at_generation(3, "STABLE", "DEPLOYED"), 180, "running again")
    flinkops.ok("suspend", "periodic")
    flinkops.wait_lifecycle("periodic", "SUSPENDED", 120)
    report = check(out, keys=KEYS)
    assert report.ok, report.summary()
    teardown(flinkops, "periodic")


# ------------------------------------------------------------------ failures


def test_jobmanager_then_taskmanager_sigkill_then_last_state_upgrade(
    flinkops: Flinkops, testjobs: Path, tmp_path: Path
) -> None:
    """Three scenarios on one job, one Flink start: (1) the JobManager is SIGKILLed without HA and the job is
    redeployed from the latest checkpoint, replaying at most a few intervals' worth; (2) a TaskManager is SIGKILLed
    and replaced, the JobManager untouched; (3) a last-state upgrade v1 -> v2 restores the newest checkpoint. The
    bounded job finishes under v2 and every record is checked."""
    steps = Steps("JobManager SIGKILL, TaskManager SIGKILL, last-state upgrade")
    out, trace = tmp_path / "out", tmp_path / "trace"
    # v1 runs 10-20 s in all between the steps (2000-4000 records); v2 runs five times as fast and has the rest.
    records = 6500

    def version(logic: str, rate: float) -> Path:
        args = job_args(out, records=records, rate=rate, keys=KEYS, logic=logic, trace=trace)
        # The JobManager learns of a dead TaskManager when two heartbeat RPCs to it fail in a row: with Flink's
        # 10 s heartbeat interval that took 15-20 s; at 1 s the job restarts on the replacement as soon as it
        # registers.
        return write(tmp_path, "kill", testjobs, args, "last-state", **{"heartbeat.interval": "1 s"}, **OLD_ORDER)

    with steps("deploy v1"):
        flinkops.ok("apply", "-f", str(version("v1", RATE)), "--wait", "--timeout", "180")
        wait_for_records(out, 800, timeout=120)

    with steps("JobManager SIGKILL without HA: a new job from the latest checkpoint"):
        before = status(flinkops.get("kill"))["jobStatus"]["jobId"]
        [jm] = flinkops.processes("kill", "jobmanager")
        os.kill(jm, signal.SIGKILL)
        killed = time.monotonic()
        reached = max(trace_counts(trace))  # the highest seq processed before the kill (flushed per record)

        def recovered(resource: dict[str, Any] | None) -> bool:
            s = status(resource)
            return s.get("jobStatus", {}).get("jobId") != before and job_state(resource) == "RUNNING"

        after = status(flinkops.wait_for("kill", recovered, 180, "a new job from the latest checkpoint"))
        took = time.monotonic() - killed
        restored = after["jobStatus"]["upgradeSavepointPath"]
        assert f"/{before}/chk-" in restored, f"restored from the killed job's checkpoint, not {restored}"
        # Every record up to the one reached before the kill (and a little beyond) is committed again: the
        # replay is over.
        wait_for_records(out, reached + 200, timeout=120)
        again = replayed(trace)
        print(f"JobManager SIGKILL (no HA): job running again after {took:.1f}s, {again} records replayed")
        # Replay is bounded by what ran since the last checkpoint: one interval plus detection and restart.
        assert again <= RATE * (INTERVAL_MS / 1000) * 3, f"replayed {again} records"

    with steps("TaskManager SIGKILL: replaced, the JobManager untouched"):
        [tm] = flinkops.processes("kill", "taskmanager")
        jm_before = flinkops.processes("kill", "jobmanager")
        os.kill(tm, signal.SIGKILL)
        flinkops.wait_for(
            "kill",
            lambda r: any(running(p) and p != tm for p in flinkops.processes("kill", "taskmanager")),
            120,
            "a replacement TaskManager",
        )
        assert flinkops.processes("kill", "jobmanager") == jm_before, "the JobManager is not touched"
        reached = max(trace_counts(trace))
        wait_for_records(out, reached + 200, timeout=120)  # running again on the replacement
        assert "RecoverTaskManager" in flinkops.events("kill")

    with steps("last-state upgrade v1 -> v2: restores the newest checkpoint"):
        flinkops.ok("apply", "-f", str(version("v2", 5 * RATE)))
        # Deployed and running is enough here (v2 may finish before it would count as stable).
        upgraded = flinkops.wait_for(
            "kill",
            lambda r: at_generation(2, "DEPLOYED", "STABLE")(r) and job_state(r) in ("RUNNING", "FINISHED"),
            180,
            "v2 deployed",
        )
        restored = status(upgraded)["jobStatus"]["upgradeSavepointPath"]
        assert "/chk-" in restored, f"last-state restores the newest checkpoint, not {restored}"

    with steps("v2 finishes: every record once, state carried through both kills and the upgrade"):
        finished(flinkops, "kill")
        report = check(out, keys=KEYS, expect_records=records)
        assert report.ok, report.summary()
        assert [run.logic for run in report.logic_runs] == ["v1", "v2"], report.summary()
        teardown(flinkops, "kill")


# ------------------------------------------------------------------ refused input


def test_an_initial_savepoint_that_does_not_exist_is_refused(
    flinkops: Flinkops, testjobs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    spec = application(
        tmp_path, "bad-restore", testjobs, ENTRY_CLASS, job_args(out), BASE, parallelism=2,
        upgradeMode="savepoint", initialSavepointPath=(tmp_path / "no-such-savepoint").as_uri(),
    )  # fmt: skip
    result = flinkops.run("apply", "-f", str(spec))
    assert result.code == 2, result.stdout + result.stderr
    assert "spec.job.initialSavepointPath" in result.stderr
    assert flinkops.get("bad-restore") is None, "nothing was created"


# ------------------------------------------------------------------ scaling


def test_rescale_in_place_with_the_adaptive_scheduler(flinkops: Flinkops, testjobs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = {
        "taskmanager.numberOfTaskSlots": "1",
        "jobmanager.scheduler": "adaptive",
        "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling": "0 s",
        "jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout": "1 s",
    }

    def spec(parallelism: int) -> Path:
        return application(
            tmp_path, "rescale", testjobs, ENTRY_CLASS, job_args(out, rate=RATE, keys=KEYS), {**BASE, **config},
            parallelism=parallelism, upgradeMode="last-state",
        )  # fmt: skip

    flinkops.ok("apply", "-f", str(spec(1)), "--wait", "--timeout", "180")
    before = status(flinkops.get("rescale"))
    job_id = before["jobStatus"]["jobId"]
    wait_for_records(out, 400, timeout=120)
    flinkops.ok("apply", "-f", str(spec(2)))

    def counter_parallelism() -> int:
        url = status(flinkops.get("rescale"))["clusterInfo"]["rest-url"]
        vertices = httpx.get(f"{url}/jobs/{job_id}", timeout=5).json()["vertices"]
        return max(int(v["parallelism"]) for v in vertices)

    flinkops.wait_for("rescale", lambda r: counter_parallelism() == 2, 180, "the job at parallelism 2")
    after = status(flinkops.get("rescale"))
    assert after["jobStatus"]["jobId"] == job_id, "rescaled in place: same job, no redeploy"
    assert len([p for p in flinkops.processes("rescale", "taskmanager") if running(p)]) == 2
    events = flinkops.events("rescale")
    assert "ScaledInPlace" in events and events.count("Submit") == 1, events
    wait_for_records(out, len(read_committed(out)) + 400, timeout=120)
    flinkops.ok("suspend", "rescale")
    flinkops.wait_lifecycle("rescale", "SUSPENDED", 120)
    report = check(out, keys=KEYS)
    assert report.ok, report.summary()
    teardown(flinkops, "rescale")
