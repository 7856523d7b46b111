"""Savepoint upgrade downtime: flinkops next to the fastest manual upgrade with the raw Flink scripts and REST
calls, measured in the same run.

The job is the VerifierJob (``tests/jobs``): an ordered, checkpointed sequence at 200 records/s, per-key counts
in keyed state (64 keys), an exactly-once FileSink; checkpoints every second; parallelism 2 on one TaskManager
with 2 slots. It is bounded, so every round ends FINISHED and its committed output is checked exactly: every
record once, the v1 → v2 switch visible line by line, every count continuing from the savepoint's state.

Timed: the output gap. The sink commits only on checkpoints, so output time is taken from the job's
``--trace --trace-timestamps`` side channel, where the counter writes every record it processes with the time:
downtime = first record processed by the v2 job - last record processed by the v1 job. Also shown: when v2
runs with every task RUNNING and its state restored (Flink REST, polled every 100 ms; ``web.refresh-interval:
200 ms`` on both sides). Both sides also run with ``cluster.registration.error-delay: 1 s`` so that Flink's 10 s
TaskManager registration retry, a race either side may lose in any round, does not decide the ratio
(``--flink-registration-delay`` keeps Flink's default; see ``stateful_support.py``).

* floor (raw scripts and REST, by hand): v1 on a RawCluster (``standalone-job.sh`` + ``taskmanager.sh``);
  ``POST /jobs/:id/stop`` (stop-with-savepoint), poll the trigger every 50 ms until the savepoint completed,
  stop the cluster, start a new RawCluster with v2 (``--logic v2``) ``--fromSavepoint`` that savepoint.
* flinkops: ``flinkops apply`` v1 (upgradeMode savepoint) and wait until STABLE, then ``flinkops apply`` v2;
  the controller pre-starts v2's cluster (JobManager and TaskManager JVMs, no job) while v1 runs, then stops
  v1 with a savepoint, deletes v1's cluster and submits v2 to the waiting cluster from the savepoint. A round
  in which the controller did not pre-start (it fell back to the usual order) is reported as such.
  ``--no-prestart`` runs flinkops in the usual order instead (``flinkops.upgrade.prestart: "false"``).

Run: ``make bench`` or ``.venv/bin/python benchmarks/upgrade_downtime.py [--rounds N | --quick] [--keep]
[--flink-registration-delay] [--no-prestart]``.
Goal: flinkops / floor ≤ 0.4 with the pre-started cluster (≤ 1.2 without). Rounds alternate the two sides to
spread machine noise over both.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# stateful_support comes first: it puts tests/ on sys.path for the support.* imports below.
from stateful_support import (
    GOAL,
    KEYS,
    RATE,
    SHARED_MACHINE,
    Flinkops,
    Rest,
    add_arguments,
    configure,
    deployment,
    flink_steps,
    fmt,
    median,
    print_steps,
    print_verified,
    raw_config,
    rest_of,
    run_rounds,
    settings_line,
    since,
    trace_edges,
    trace_names,
    verdict,
    wait_finished,
    wait_for,
    wait_ready,
    wait_restored,
    workspace,
)

from support.rawflink import RawCluster
from support.testjobs import testjobs_jar
from support.verifier import ENTRY_CLASS, check, job_args

# 94 s of input: the upgrade starts after BEFORE_UPGRADE, the rest runs as v2. v1 must still run when a
# pre-started v2 cluster is ready: its JVMs start next to the running job, which took from 13 s to 45 s on a
# shared 2-core machine (a v1 that ends first leaves no state to upgrade from).
RECORDS = 18800
BEFORE_UPGRADE = 800  # records processed (and a checkpoint completed) before the upgrade starts
SAVEPOINT_POLL_SECONDS = 0.05


@dataclass
class Upgrade:
    downtime: float  # last record processed by v1 -> first record processed by v2 (trace times)
    running: float  # upgrade start -> v2 RUNNING with every task and its state restored (REST)
    last_v1: float | None  # upgrade start -> last record processed by v1
    first_v2: float | None  # upgrade start -> first record processed by v2
    verified: bool
    summary: str
    steps: dict[str, float | None] = field(default_factory=dict)  # step -> seconds after the upgrade started
    tm_retry: bool = False  # the new TaskManager waited out a ResourceManager registration retry
    prestarted: bool = False  # flinkops: the v2 cluster was pre-started and promoted


def args_for(work: Path, logic: str) -> list[str]:
    return job_args(
        work / "out", records=RECORDS, rate=RATE, keys=KEYS, logic=logic, trace=work / "trace", trace_timestamps=True
    )


def finish(
    work: Path, old: set[str], started_at: float, running: float, steps: dict[str, float | None], tm_retry: bool
) -> Upgrade:
    last_v1, first_v2 = trace_edges(work / "trace", old)
    if last_v1 is None or first_v2 is None:
        raise RuntimeError(f"no trace timestamps around the upgrade in {work / 'trace'}")
    report = check(work / "out", keys=KEYS, expect_records=RECORDS)
    ok, summary = report.ok, report.summary()
    if [run.logic for run in report.logic_runs] != ["v1", "v2"]:
        ok, summary = False, summary + "\n  expected v1 then v2 in seq order"
    return Upgrade(
        first_v2 - last_v1,
        running,
        since(started_at, last_v1),
        since(started_at, first_v2),
        ok,
        summary,
        steps,
        tm_retry,
    )


# ---------------------------------------------------------------------------------------------- raw floor


def floor_round(work: Path, jar: Path, rest: Rest, clusters: list[RawCluster]) -> Upgrade:
    trace = work / "trace"
    v1 = RawCluster(work / "v1", slots=2, extra_config=raw_config())
    v2 = RawCluster(work / "v2", slots=2, extra_config=raw_config())
    clusters += [v1, v2]
    old_job, new_job = uuid.uuid4().hex, uuid.uuid4().hex
    v1.start_application(ENTRY_CLASS, args_for(work, "v1"), [jar], job_id=old_job)
    wait_ready(rest, lambda: v1.rest_url, old_job, trace, BEFORE_UPGRADE)
    old = trace_names(trace)

    started_at, start = time.time(), time.monotonic()
    client = rest.client(v1.rest_url)
    trigger = client.stop_with_savepoint(old_job)

    def completed() -> str | None:
        status = client.savepoint_status(old_job, trigger)
        if status.failed:
            raise RuntimeError(f"stop-with-savepoint failed: {status.failure}")
        return status.location if status.succeeded else None

    savepoint = wait_for("the savepoint", completed, timeout=120, interval=SAVEPOINT_POLL_SECONDS)
    savepoint_done = time.monotonic() - start
    v1.stop()
    stopped = time.monotonic() - start
    v2.start_application(ENTRY_CLASS, args_for(work, "v2"), [jar], job_id=new_job, savepoint_path=savepoint)
    deployed = time.monotonic() - start
    wait_restored(rest, lambda: v2.rest_url, lambda: new_job)
    running = time.monotonic() - start

    steps: dict[str, float | None] = {
        "savepoint completed": savepoint_done,
        "v1 cluster stopped": stopped,
        "v2 cluster started": deployed,
    }
    logged, tm_retry = flink_steps([v2.log_dir], started_at)
    steps.update(logged)
    wait_finished(rest, lambda: v2.rest_url, new_job)
    v2.stop()
    return finish(work, old, started_at, running, steps, tm_retry)


# ---------------------------------------------------------------------------------------------- flinkops


PRESTART_OFF = {"flinkops.upgrade.prestart": "false"}


def flinkops_round(ops: Flinkops, work: Path, jar: Path, rest: Rest, name: str, *, prestart: bool = True) -> Upgrade:
    trace = work / "trace"
    extra = None if prestart else PRESTART_OFF
    ops.apply(deployment(work, name, jar, args_for(work, "v1"), upgrade_mode="savepoint", extra=extra), name)
    record = ops.record(name)
    assert record is not None
    old_job: str = record["job_id"]
    [old_jm] = ops.jobmanagers(name)
    wait_ready(rest, lambda: rest_of(old_jm), old_job, trace, BEFORE_UPGRADE)
    old = trace_names(trace)
    v2 = deployment(work, name, jar, args_for(work, "v2"), upgrade_mode="savepoint", extra=extra)

    def current_url() -> str | None:
        jms = ops.jobmanagers(name)
        return rest_of(jms[0]) if jms and jms[0]["pid"] != old_jm["pid"] else None

    def current_job() -> str | None:
        found = (ops.record(name) or {}).get("job_id")
        return found if isinstance(found, str) and found != old_job else None

    started_at, start = time.time(), time.monotonic()
    ops.apply(v2, name, wait=False)
    applied = time.monotonic() - start
    wait_restored(rest, current_url, current_job)
    running = time.monotonic() - start
    new_job = current_job()
    assert new_job is not None

    steps: dict[str, float | None] = {"apply returned": applied}
    for label, text in (
        ("v2 cluster pre-started", "pre-start the cluster"),
        ("savepoint triggered", "stop job"),
        ("old cluster deleted", "delete cluster"),
        ("v2 cluster started", "deploy cluster"),
    ):
        steps[label] = since(started_at, ops.controller_logged(name, text, started_at))
    logged, tm_retry = flink_steps(ops.log_dirs(name), started_at)
    steps.update(logged)

    wait_finished(rest, current_url, new_job)
    status = ops.get(name).get("status") or {}
    result = finish(work, old, started_at, running, steps, tm_retry)
    result.prestarted = steps.get("v2 cluster pre-started") is not None
    restored_from = status.get("jobStatus", {}).get("upgradeSavepointPath") or ""
    if "/savepoint-" not in restored_from:
        result.verified = False
        result.summary += f"\n  v2 restored from {restored_from!r}, not a savepoint"
    if status.get("jobStatus", {}).get("jobId") != new_job:
        result.verified = False
        result.summary += f"\n  flinkops get shows job {status.get('jobStatus', {}).get('jobId')}, not {new_job}"
    ops.delete(name)
    return result


# ---------------------------------------------------------------------------------------------- report

LABELS = {
    "floor": "floor: raw scripts + REST by hand",
    "flinkops": "flinkops apply v2",
}
GOAL_PRESTART = 0.4


def report(results: dict[str, list[Upgrade]], rounds: int, prestart: bool) -> None:
    floor = median([r.downtime for r in results["floor"]])
    ops = median([r.downtime for r in results["flinkops"]])
    assert floor is not None and ops is not None
    print(f"\nsavepoint upgrade v1 → v2: output downtime (median of {rounds} rounds)")
    print("last record processed by v1 → first record processed by v2, from the job's trace timestamps")
    print(SHARED_MACHINE)
    print(settings_line())
    print(f"  {LABELS['floor']:<40} {fmt(floor)}   rounds: {[round(r.downtime, 2) for r in results['floor']]}")
    print(f"  {LABELS['flinkops']:<40} {fmt(ops)}   rounds: {[round(r.downtime, 2) for r in results['flinkops']]}")
    goal = GOAL_PRESTART if prestart else GOAL
    print(f"  ratio flinkops / floor: {ops / floor:.2f}   {verdict(ops / floor, goal)}")
    if prestart:
        used = sum(r.prestarted for r in results["flinkops"])
        print(f"  flinkops rounds with the v2 cluster pre-started: {used} of {len(results['flinkops'])}")
    before = {key: median([r.steps.get("v2 cluster started") for r in results[key]]) for key in LABELS}
    if before["floor"] is not None and before["flinkops"] is not None and not prestart:
        print(
            "  upgrade start → v2 cluster's processes started (after that, JVM and Flink start are the same work):"
            f" floor {before['floor']:.2f} s, flinkops {before['flinkops']:.2f} s"
            f" (+{before['flinkops'] - before['floor']:.2f} s)"
        )

    print("\nseconds after the upgrade started (stop-with-savepoint request / flinkops apply), median")
    print(f"  {'':<40} {'last v1 record':>14} {'first v2 record':>15} {'v2 RUNNING restored':>20}")
    for key, label in LABELS.items():
        runs = results[key]
        last = fmt(median([r.last_v1 for r in runs]), width=12)
        first = fmt(median([r.first_v2 for r in runs]), width=13)
        running = fmt(median([r.running for r in runs]), width=18)
        print(f"  {label:<40} {last} {first} {running}")

    print("\nsteps (median, seconds after the upgrade started)")
    for key, label in LABELS.items():
        runs = results[key]
        final = ("first v2 record", statistics.median(r.first_v2 or 0.0 for r in runs))
        print_steps(label, [r.steps for r in runs], sum(r.tm_retry for r in runs), final)

    print_verified(
        f"verifier (exact check of the committed output, 0..{RECORDS - 1}, after v2 FINISHED)", LABELS, results, 40
    )


# ---------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--no-prestart", action="store_true", help="flinkops upgrades in the usual order")
    args = parser.parse_args()
    prestart = not args.no_prestart
    rounds = configure(args)

    jar = testjobs_jar()
    with workspace("flinkops-bench-upgrade-", args.keep) as ws:
        base, ops, rest, clusters = ws.base, ws.ops, ws.rest, ws.clusters
        scenarios: dict[str, Callable[[int], Upgrade]] = {
            "floor": lambda i: floor_round(base / f"floor-{i}", jar, rest, clusters),
            "flinkops": lambda i: flinkops_round(ops, base / f"ops-{i}", jar, rest, f"upgrade-{i}", prestart=prestart),
        }
        results = run_rounds(
            scenarios,
            rounds,
            lambda key, r: (
                f"{key} downtime {r.downtime:.2f}s ({'verified' if r.verified else 'VERIFIER FAILED'}"
                f"{', TM retry' if r.tm_retry else ''})"
            ),
        )
        report(results, rounds, prestart)
        ws.failed = not all(r.verified for rs in results.values() for r in rs)
    if ws.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
