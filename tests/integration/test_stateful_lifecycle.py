"""Stateful lifecycle on real Flink, proven record by record with the verifier job.

Each scenario runs the verifier (an ordered, checkpointed sequence keyed by 64 keys, per-key counts in state,
an exactly-once file sink) through flinkops, does something that used to lose state (an upgrade, a broken
version, a SIGKILL, a controller crash mid-upgrade, a point-in-time restore), lets the bounded job finish and
checks the committed output: every record exactly once, every count continuing where the state left it.
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
from support.verifier import ENTRY_CLASS, check, job_args, read_committed, replayed, wait_for_records

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
#: Upgrades in the usual order (stop, then start the new cluster). The savepoint upgrade test proves pre-started
#: upgrades on real Flink; the other upgrade tests keep their short bounded jobs, which a pre-started cluster's
#: start could outlast (its every path is proven on fakes in tests/behaviour/test_prestart.py).
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


def test_savepoint_upgrade_v1_to_v2_loses_and_duplicates_nothing(
    flinkops: Flinkops, testjobs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    # v1 must outlive the upgrade's first step: the new cluster's JVMs start next to it before it stops (on a
    # busy 2-core machine that took from 13 s to 45 s), so it runs at the usual rate and would need 80 s. v2
    # changes the rate along with the logic and runs the rest five times as fast: the test does not wait for a
    # slow v2 to finish.
    records = 16000
    v1 = write(tmp_path, "sp-upgrade", testjobs, job_args(out, records=records, rate=RATE, keys=KEYS), "savepoint")
    flinkops.ok("apply", "-f", str(v1), "--wait", "--timeout", "180")
    wait_for_records(out, 1000, timeout=120)

    v2_args = job_args(out, records=records, rate=5 * RATE, keys=KEYS, logic="v2")
    v2 = write(tmp_path, "sp-upgrade", testjobs, v2_args, "savepoint")
    old_job = status(flinkops.get("sp-upgrade"))["jobStatus"]["jobId"]
    generation = flinkops.get("sp-upgrade")["metadata"]["generation"]  # type: ignore[index]
    preview = flinkops.ok("plan", "-f", str(v2))
    assert "UPGRADE (spec.job.args" in preview, preview
    assert f"stop job {old_job} with a savepoint" in preview, preview
    assert "expected downtime" in preview and "Lint:" in preview, preview
    assert flinkops.get("sp-upgrade")["metadata"]["generation"] == generation, "plan changes nothing"  # type: ignore[index]
    flinkops.ok("apply", "-f", str(v2), "--wait", "--timeout", "180")
    upgraded = status(flinkops.get("sp-upgrade"))
    events = flinkops.events("sp-upgrade")
    assert "PrestartReady" in events, f"the v2 cluster was pre-started and promoted: {events}"
    restored = upgraded["jobStatus"]["upgradeSavepointPath"]
    assert "/savepoint-" in restored, f"a savepoint upgrade restores from a savepoint, not {restored}"
    last = upgraded["jobStatus"]["savepointInfo"]["lastSavepoint"]
    assert last["triggerType"] == "UPGRADE" and last["location"] == restored
    assert "SavepointCompleted" in flinkops.events("sp-upgrade")
    again = flinkops.ok("plan", "-f", str(v1))
    assert "expected downtime: ~" in again, f"the measured downtime of the upgrade feeds the next plan:\n{again}"

    finished(flinkops, "sp-upgrade")
    report = check(out, keys=KEYS, expect_records=records)
    assert report.ok, report.summary()
    assert [run.logic for run in report.logic_runs] == ["v1", "v2"], report.summary()
    teardown(flinkops, "sp-upgrade")


def test_last_state_upgrade_restores_the_newest_checkpoint(flinkops: Flinkops, testjobs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    records = 5000
    v1 = write(
        tmp_path,
        "ls-upgrade",
        testjobs,
        job_args(out, records=records, rate=RATE, keys=KEYS),
        "last-state",
        **OLD_ORDER,
    )
    flinkops.ok("apply", "-f", str(v1), "--wait", "--timeout", "180")
    wait_for_records(out, 800, timeout=120)
    v2 = write(
        tmp_path,
        "ls-upgrade",
        testjobs,
        job_args(out, records=records, rate=RATE, keys=KEYS, logic="v2"),
        "last-state",
        **OLD_ORDER,
    )
    flinkops.ok("apply", "-f", str(v2), "--wait", "--timeout", "180")
    restored = status(flinkops.get("ls-upgrade"))["jobStatus"]["upgradeSavepointPath"]
    assert "/chk-" in restored, f"last-state restores the newest checkpoint, not {restored}"
    finished(flinkops, "ls-upgrade")
    report = check(out, keys=KEYS, expect_records=records)
    assert report.ok, report.summary()
    assert [run.logic for run in report.logic_runs] == ["v1", "v2"], report.summary()
    teardown(flinkops, "ls-upgrade")


def test_broken_v3_rolls_back_to_v2_with_its_state(flinkops: Flinkops, testjobs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    records = 7000
    rollback = {
        **OLD_ORDER,
        "kubernetes.operator.deployment.rollback.enabled": "true",
        "kubernetes.operator.deployment.readiness.timeout": "60 s",
    }

    def version(logic: str, **extra: Any) -> Path:
        args = job_args(out, records=records, rate=RATE, keys=KEYS, logic=logic, **extra)
        return write(tmp_path, "rollback", testjobs, args, "savepoint", **rollback)

    flinkops.ok("apply", "-f", str(version("v2")), "--wait", "--timeout", "180")
    wait_for_records(out, 800, timeout=120)
    flinkops.ok("apply", "-f", str(version("v3", fail_after=300)))
    rolled = flinkops.wait_for("rollback", at_generation(2, "ROLLED_BACK"), 240, "ROLLED_BACK")
    s = status(rolled)
    assert (
        json.loads(s["reconciliationStatus"]["lastReconciledSpec"])["spec"]["job"]["args"]
        == json.loads(s["reconciliationStatus"]["lastStableSpec"])["spec"]["job"]["args"]
    ), "the stable (v2) spec runs again"
    events = flinkops.events("rollback")
    assert "Rollback" in events and "deliberate v3 failure" in events

    finished(flinkops, "rollback")
    report = check(out, keys=KEYS, expect_records=records)
    assert report.ok, report.summary()
    assert report.logic_runs[0].logic == "v2" and report.logic_runs[-1].logic == "v2", report.summary()
    teardown(flinkops, "rollback")


def test_manual_rollback_and_savepoints_on_demand(flinkops: Flinkops, testjobs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = job_args(out, rate=RATE, keys=KEYS)
    flinkops.ok(
        "apply", "-f", str(write(tmp_path, "manual", testjobs, args, "savepoint")), "--wait", "--timeout", "180"
    )
    printed = flinkops.ok("savepoint", "manual", "--timeout", "120")
    location = printed.strip().splitlines()[-1].split(": ", 1)[1]
    info = status(flinkops.get("manual"))["jobStatus"]["savepointInfo"]
    assert info["lastSavepoint"]["location"] == location and info["lastSavepoint"]["triggerType"] == "MANUAL"
    assert (Path(location.removeprefix("file:")) / "_metadata").is_file()
    listing = json.loads(flinkops.ok("snapshots", "manual", "-o", "json"))["snapshots"]
    assert any(s["path"] == location and s["trigger"] == "MANUAL" and s["generation"] == 1 for s in listing)

    # A new spec that is up but not trusted yet (not stable: it must run 10 minutes first): roll back by hand.
    v2_args = job_args(out, rate=RATE, keys=KEYS, logic="v2")
    v2 = write(tmp_path, "manual", testjobs, v2_args, "savepoint", **{"flinkops.stability.min-running-time": "10 min"})
    flinkops.ok("apply", "-f", str(v2))
    flinkops.wait_for("manual", lambda r: at_generation(2, "DEPLOYED")(r) and job_state(r) == "RUNNING", 180, "v2 up")
    wait_for_records(out, len(read_committed(out)) + 200, timeout=120)
    flinkops.ok("rollback", "manual", "--wait", "--timeout", "180")
    rolled = status(flinkops.get("manual"))
    assert rolled["lifecycleState"] == "ROLLED_BACK" and rolled["jobStatus"]["state"] == "RUNNING"
    wait_for_records(out, len(read_committed(out)) + 200, timeout=120)
    flinkops.ok("suspend", "manual")
    flinkops.wait_lifecycle("manual", "SUSPENDED", 120)
    report = check(out, keys=KEYS)
    assert report.ok, report.summary()
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

    # A savepoint comes every 3 s and retention follows it: compare storage with a history that stayed the same
    # while storage was listed (on a busy machine the listing can outlast a savepoint or two).
    for _ in range(20):
        kept = history()
        on_disk = [
            s["path"]
            for s in json.loads(flinkops.ok("snapshots", "periodic", "-o", "json"))["snapshots"]
            if s["kind"] == "savepoint"
        ]
        if history() == kept:
            break
    else:
        raise AssertionError("the savepoint history changed while storage was listed, 20 times in a row")
    assert 1 <= len(kept) <= 2, kept
    assert set(kept) <= set(on_disk), "kept savepoints are still in storage"
    assert len(on_disk) <= 3, f"trimmed savepoints are disposed (one may be in flight): {on_disk}"

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


def test_jobmanager_sigkill_without_ha_redeploys_from_the_latest_checkpoint(
    flinkops: Flinkops, testjobs: Path, tmp_path: Path
) -> None:
    out, trace = tmp_path / "out", tmp_path / "trace"
    records = 6000
    args = job_args(out, records=records, rate=RATE, keys=KEYS, trace=trace)
    flinkops.ok(
        "apply", "-f", str(write(tmp_path, "jm-kill", testjobs, args, "last-state")), "--wait", "--timeout", "180"
    )
    wait_for_records(out, 1000, timeout=120)
    before = status(flinkops.get("jm-kill"))["jobStatus"]["jobId"]
    [jm] = flinkops.processes("jm-kill", "jobmanager")
    os.kill(jm, signal.SIGKILL)
    killed = time.monotonic()

    def recovered(resource: dict[str, Any] | None) -> bool:
        s = status(resource)
        return s.get("jobStatus", {}).get("jobId") != before and job_state(resource) in ("RUNNING", "FINISHED")

    after = status(flinkops.wait_for("jm-kill", recovered, 180, "a new job from the latest checkpoint"))
    took = time.monotonic() - killed
    restored = after["jobStatus"]["upgradeSavepointPath"]
    assert f"/{before}/chk-" in restored, f"restored from the killed job's checkpoint, not {restored}"
    finished(flinkops, "jm-kill")
    report = check(out, keys=KEYS, expect_records=records)
    assert report.ok, report.summary()
    again = replayed(trace)
    print(f"\nJobManager SIGKILL (no HA): job running again after {took:.1f}s, {again} records replayed")
    # Replay is bounded by what ran since the last checkpoint: one interval plus detection and restart.
    assert again <= RATE * (INTERVAL_MS / 1000) * 3, f"replayed {again} records"
    teardown(flinkops, "jm-kill")


def test_taskmanager_sigkill_is_replaced_and_nothing_is_lost(
    flinkops: Flinkops, testjobs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    records = 5000
    args = job_args(out, records=records, rate=RATE, keys=KEYS)
    # The JobManager learns of a dead TaskManager when two heartbeat RPCs to it fail in a row: with Flink's 10 s
    # heartbeat interval that took 15-20 s; at 1 s the job restarts on the replacement as soon as it registers.
    spec = write(tmp_path, "tm-kill", testjobs, args, "last-state", **{"heartbeat.interval": "1 s"})
    flinkops.ok("apply", "-f", str(spec), "--wait", "--timeout", "180")
    wait_for_records(out, 800, timeout=120)
    [tm] = flinkops.processes("tm-kill", "taskmanager")
    jm_before = flinkops.processes("tm-kill", "jobmanager")
    os.kill(tm, signal.SIGKILL)
    flinkops.wait_for(
        "tm-kill",
        lambda r: any(running(p) and p != tm for p in flinkops.processes("tm-kill", "taskmanager")),
        120,
        "a replacement TaskManager",
    )
    assert flinkops.processes("tm-kill", "jobmanager") == jm_before, "the JobManager is not touched"
    finished(flinkops, "tm-kill")
    report = check(out, keys=KEYS, expect_records=records)
    assert report.ok, report.summary()
    assert "RecoverTaskManager" in flinkops.events("tm-kill")
    teardown(flinkops, "tm-kill")


# One crash point on real Flink: the savepoint completed but the controller died before recording it, so the
# restarted controller must find it although Flink's application cluster shut down with the job (storage is the
# truth). Every other step of every action, for every upgrade mode, is crashed at in tests/behaviour on fakes
# (test_crash_safety.py), in seconds.
@pytest.mark.parametrize("failpoint", ["before:DeleteCluster"], ids=["savepoint-done-not-recorded"])
def test_controller_killed_at_each_upgrade_step_finishes_the_upgrade(
    flinkops: Flinkops, testjobs: Path, tmp_path: Path, failpoint: str
) -> None:
    name = "crash-" + failpoint.replace(":", "-").lower()
    out = tmp_path / "out"
    records = 5000
    v1 = write(tmp_path, name, testjobs, job_args(out, records=records, rate=RATE, keys=KEYS), "savepoint", **OLD_ORDER)
    flinkops.ok("apply", "-f", str(v1), "--wait", "--timeout", "180")
    wait_for_records(out, 800, timeout=120)
    old = set(flinkops.cluster_pids(name))

    flinkops.ok("controller", "stop")
    flinkops.extra_env = {"FLINKOPS_FAILPOINT": failpoint}
    try:
        flinkops.ok("controller", "start")
        pid = flinkops.controller_pid()
        v2 = write(
            tmp_path,
            name,
            testjobs,
            job_args(out, records=records, rate=RATE, keys=KEYS, logic="v2"),
            "savepoint",
            **OLD_ORDER,
        )
        flinkops.ok("apply", "-f", str(v2), "--no-start-controller")
        deadline = time.monotonic() + 120
        while running(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not running(pid), f"the controller should have died at {failpoint}"
    finally:
        flinkops.extra_env = {}
    crashed = status(flinkops.get(name))
    assert crashed["reconciliationStatus"]["state"] == "UPGRADING", "the write-ahead intent is on record"

    flinkops.ok("controller", "start")
    flinkops.wait_for(name, at_generation(2, "STABLE", "DEPLOYED"), 180, "the upgrade finished")
    new = set(flinkops.cluster_pids(name))
    assert not (old & new) and not any(running(p) for p in old), "the old cluster is gone"
    assert all(running(p) for p in new) and len(new) == 2, f"exactly one new cluster: {new}"
    finished(flinkops, name)
    report = check(out, keys=KEYS, expect_records=records)
    assert report.ok, report.summary()
    assert [run.logic for run in report.logic_runs] == ["v1", "v2"], report.summary()
    teardown(flinkops, name)


# ------------------------------------------------------------------ point-in-time restore


def test_restore_to_a_point_in_time(flinkops: Flinkops, testjobs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = job_args(out, rate=RATE, keys=KEYS)
    flinkops.ok("apply", "-f", str(write(tmp_path, "pitr", testjobs, args, "last-state")), "--wait", "--timeout", "180")
    wait_for_records(out, 600, timeout=120)
    printed = flinkops.ok("savepoint", "pitr", "--timeout", "120")
    target = printed.strip().splitlines()[-1].split(": ", 1)[1]
    snapshots = json.loads(flinkops.ok("snapshots", "pitr", "-o", "json"))["snapshots"]
    moment = next(s for s in snapshots if s["path"] == target)["timeMs"]
    wait_for_records(out, len(read_committed(out)) + 600, timeout=120)

    # Bad input first: nothing changes.
    generation = flinkops.get("pitr")["metadata"]["generation"]  # type: ignore[index]
    early = flinkops.run("restore", "pitr", "--to", "2001-01-01T00:00:00Z")
    assert early.code == 2 and "no snapshot at or before" in early.stderr
    missing = flinkops.run("restore", "pitr", "--to", str(tmp_path / "nope"))
    assert missing.code == 2 and "not a completed checkpoint or savepoint" in missing.stderr
    assert flinkops.get("pitr")["metadata"]["generation"] == generation  # type: ignore[index]

    # Any time after the savepoint and before the next snapshot selects it (checkpoints are more frequent, so
    # ask for the savepoint's own completion time).
    moment_iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment / 1000)) + f".{moment % 1000:03d}Z"
    flinkops.ok("restore", "pitr", "--to", moment_iso, "--wait", "--timeout", "180")
    restored = status(flinkops.get("pitr"))["jobStatus"]["upgradeSavepointPath"]
    assert restored == target
    committed = len(read_committed(out))
    wait_for_records(out, committed + 400, timeout=120)
    flinkops.ok("suspend", "pitr")
    flinkops.wait_lifecycle("pitr", "SUSPENDED", 120)

    # Restoring replays from the savepoint: the records after it come again, with the state of that moment.
    report = check(out, keys=KEYS)
    assert not report.state_breaks and not report.missing, report.summary()
    dupes = sorted(report.duplicates)
    assert dupes and dupes == list(range(dupes[0], dupes[-1] + 1)), "one contiguous replayed range"
    assert all(n == 2 for n in report.duplicates.values())
    teardown(flinkops, "pitr")


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
