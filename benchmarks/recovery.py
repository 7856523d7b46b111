"""Recovery after a JobManager SIGKILL: flinkops (without and with ZooKeeper HA) next to the fastest manual
recovery with the raw Flink scripts, measured in the same run.

The job is the VerifierJob (``tests/jobs``): an ordered, checkpointed sequence at 200 records/s, per-key counts
in keyed state (64 keys), an exactly-once FileSink; checkpoints every second; parallelism 2 on one TaskManager
with 2 slots. It is bounded, so every round ends FINISHED and its committed output is checked exactly (every
record once, every count continuing from the restored state). Its ``--trace --trace-timestamps`` side channel
logs every record the counter processes with the time, which gives the records replayed by each recovery and
the moment records flow again.

Timed: SIGKILL of the (leading) JobManager → the job RUNNING again with every task RUNNING (``/jobs/:id``
vertex states) and its state restored (``/jobs/:id/checkpoints`` ``latest.restored`` set), polled every
100 ms. Both sides run with ``web.refresh-interval: 200 ms`` so that Flink's REST cache does not blur it, and
with ``cluster.registration.error-delay: 1 s`` so that Flink's 10 s TaskManager registration retry, a race
either side may lose in any round, does not decide the ratio (``--flink-registration-delay`` keeps Flink's
default; see ``stateful_support.py``).

* floor (raw scripts, by hand): the job on a RawCluster (``standalone-job.sh`` + ``taskmanager.sh``). The
  script kills the JobManager itself, so it needs no detection; it then finds the newest ``chk-N/_metadata``,
  SIGKILLs the leftover TaskManager and starts a fresh cluster with ``--fromSavepoint`` that checkpoint.
* flinkops, no HA: upgradeMode last-state; the controller notices the dead JobManager and redeploys from the
  newest checkpoint under a new job id (followed through the cluster record; checked against
  ``flinkops get -o json`` afterwards).
* flinkops, ZooKeeper HA: ``jobManager.replicas: 2`` against a local ZooKeeper (``flinkops.dev.zookeeper``);
  the leader is killed and the standby takes the same job id over.

Flink's own HA takeover with default ZooKeeper timeouts is not measured: a SIGKILLed leader keeps its leader
latch until its ZooKeeper session expires (``high-availability.zookeeper.client.session-timeout``, 60 s by
default), which makes one round take more than a minute.

Run: ``make bench`` or ``.venv/bin/python benchmarks/recovery.py [--rounds N | --quick] [--keep]
[--flink-registration-delay]``.
Goal: flinkops / floor ≤ 1.2. Rounds alternate the scenarios to spread machine noise over all of them.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# stateful_support comes first: it puts tests/ on sys.path for the support.* imports below.
from stateful_support import (
    INTERVAL_MS,
    KEYS,
    RATE,
    SHARED_MACHINE,
    Flinkops,
    Rest,
    add_arguments,
    alive_as_recorded,
    configure,
    deployment,
    first_logged,
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

from flinkops.dev.zookeeper import ZooKeeperServer
from flinkops.flink.config import ZooKeeperHA
from flinkops.runtimes.local.ha import leader_rest_url
from flinkops.runtimes.local.zookeeper import ZooKeeperClient
from support.rawflink import RawCluster
from support.testjobs import testjobs_jar
from support.verifier import ENTRY_CLASS, check, job_args, replayed

RECORDS = 2400  # 12 s of input: the kill comes after BEFORE_KILL, the rest runs after the recovery
BEFORE_KILL = 800  # records processed (and a checkpoint completed) before the JobManager is killed


@dataclass
class Recovery:
    seconds: float  # kill -> all tasks RUNNING with state restored
    first_record: float | None  # kill -> first record processed by the restored job (trace time)
    old_tail: float | None  # kill -> last record processed by the killed job's tasks (trace time)
    replayed: int
    restored_checkpoint: int | None
    verified: bool
    summary: str
    steps: dict[str, float | None] = field(default_factory=dict)  # step -> seconds after the kill
    tm_retry: bool = False  # the new TaskManager waited out a ResourceManager registration retry


def args_for(work: Path) -> list[str]:
    return job_args(work / "out", records=RECORDS, rate=RATE, keys=KEYS, trace=work / "trace", trace_timestamps=True)


def verify(out: Path) -> tuple[bool, str]:
    report = check(out, keys=KEYS, expect_records=RECORDS)
    return report.ok, report.summary()


# ---------------------------------------------------------------------------------------------- raw floor


def newest_checkpoint(job_dir: Path) -> tuple[int, Path]:
    best: tuple[int, Path] | None = None
    for entry in job_dir.iterdir():
        if entry.name.startswith("chk-") and entry.name[4:].isdigit() and (entry / "_metadata").is_file():
            number = int(entry.name[4:])
            if best is None or number > best[0]:
                best = (number, entry)
    if best is None:
        raise RuntimeError(f"no completed checkpoint in {job_dir}")
    return best


def floor_round(work: Path, jar: Path, rest: Rest, clusters: list[RawCluster]) -> Recovery:
    trace = work / "trace"
    first = RawCluster(work / "first", slots=2, extra_config=raw_config())
    second = RawCluster(work / "second", slots=2, extra_config=raw_config())
    clusters += [first, second]
    old_job, new_job = uuid.uuid4().hex, uuid.uuid4().hex
    first.start_application(ENTRY_CLASS, args_for(work), [jar], job_id=old_job)
    wait_ready(rest, lambda: first.rest_url, old_job, trace, BEFORE_KILL)
    old = trace_names(trace)

    killed_at, start = time.time(), time.monotonic()
    first.kill("jobmanager")
    number, checkpoint = newest_checkpoint(first.checkpoint_dir / old_job)
    found = time.monotonic() - start
    first.kill("taskmanager-0")
    taskmanager_gone = time.monotonic() - start
    second.start_application(ENTRY_CLASS, args_for(work), [jar], job_id=new_job, savepoint_path=checkpoint.as_uri())
    started = time.monotonic() - start
    view = wait_restored(rest, lambda: second.rest_url, lambda: new_job)
    seconds = time.monotonic() - start

    steps: dict[str, float | None] = {
        "checkpoint found": found,
        "TaskManager killed": taskmanager_gone,
        "new cluster started": started,
    }
    logged, tm_retry = flink_steps([second.log_dir], killed_at)
    steps.update(logged)
    wait_finished(rest, lambda: second.rest_url, new_job)
    second.stop()
    last_old, first_new = trace_edges(trace, old)
    ok, summary = verify(work / "out")
    if view.restored != number:
        summary += f"\n  note: restored checkpoint {view.restored}, the script picked {number}"
    return Recovery(
        seconds,
        since(killed_at, first_new),
        since(killed_at, last_old),
        replayed(trace),
        view.restored,
        ok,
        summary,
        steps,
        tm_retry,
    )


# ---------------------------------------------------------------------------------------------- flinkops


def ha_of(record: dict[str, Any]) -> ZooKeeperHA:
    ha = record["ha"]
    return ZooKeeperHA(
        quorum=ha["quorum"], cluster_id=ha["cluster_id"], path=ha["path"], storage_dir=ha.get("storage_dir")
    )


def leader_and_standby(ops: Flinkops, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both JobManagers alive and in the leader election; the leader is the one whose REST URL it published."""

    def both() -> tuple[dict[str, Any], dict[str, Any]] | None:
        record = ops.record(name)
        jms = ops.jobmanagers(name)
        if record is None or len(jms) != 2 or not all(alive_as_recorded(p) for p in jms):
            return None
        ha = ha_of(record)
        with ZooKeeperClient(ha.quorum) as zk:
            if len(zk.children(ha.latch_path)) != 2:
                return None
        published = leader_rest_url(ha)
        leader = [p for p in jms if published == rest_of(p)]
        return (leader[0], next(p for p in jms if p is not leader[0])) if leader else None

    return wait_for("two JobManagers in the leader election", both, timeout=180, interval=0.5)


def flinkops_round(
    ops: Flinkops, work: Path, jar: Path, rest: Rest, name: str, zookeeper: ZooKeeperServer | None
) -> Recovery:
    trace = work / "trace"
    extra: dict[str, str] = {}
    if zookeeper is not None:
        extra = {"high-availability.type": "zookeeper", "high-availability.zookeeper.quorum": zookeeper.connect_string}
    spec = deployment(
        work, name, jar, args_for(work), upgrade_mode="last-state", extra=extra, jobmanagers=2 if zookeeper else 1
    )
    ops.apply(spec, name)
    record = ops.record(name)
    assert record is not None
    old_job: str = record["job_id"]
    survivor: dict[str, Any] | None = None
    if zookeeper is not None:
        victim, survivor = leader_and_standby(ops, name)
    else:
        [victim] = ops.jobmanagers(name)
    wait_ready(rest, lambda: rest_of(victim), old_job, trace, BEFORE_KILL)
    if not alive_as_recorded(victim):
        raise RuntimeError(f"JobManager pid {victim['pid']} is not the recorded process")
    old = trace_names(trace)

    def current_url() -> str | None:
        if survivor is not None:
            return rest_of(survivor)
        jms = ops.jobmanagers(name)
        return rest_of(jms[0]) if jms and jms[0]["pid"] != victim["pid"] else None

    def current_job() -> str | None:
        if survivor is not None:
            return old_job
        found = (ops.record(name) or {}).get("job_id")
        return found if isinstance(found, str) and found != old_job else None

    killed_at, start = time.time(), time.monotonic()
    os.kill(int(victim["pid"]), signal.SIGKILL)
    view = wait_restored(rest, current_url, current_job)
    seconds = time.monotonic() - start
    new_job = current_job()
    assert new_job is not None

    steps: dict[str, float | None] = {}
    tm_retry = False
    if survivor is None:
        steps["controller acts"] = since(killed_at, ops.controller_logged(name, "delete cluster", killed_at))
        steps["new cluster started"] = since(killed_at, ops.controller_logged(name, "deploy cluster", killed_at))
        logged, tm_retry = flink_steps(ops.log_dirs(name), killed_at)
        steps.update(logged)
    else:
        released = first_logged(ops.home / "controller.log", "ZooKeeper node(s) of dead JobManager", killed_at)
        steps["latch release logged"] = since(killed_at, released)
        standby_logs = sorted(Path(survivor["log_dir"]).glob("*.log*"))
        for label, needle in (("standby leads", "was granted leadership"), ("job restoring", "Restoring job ")):
            found = [t for f in standby_logs if (t := first_logged(f, needle, killed_at)) is not None]
            steps[label] = since(killed_at, min(found) if found else None)

    wait_finished(rest, current_url, new_job)
    status = ops.get(name).get("status") or {}
    shown = status.get("jobStatus", {}).get("jobId")
    last_old, first_new = trace_edges(trace, old)
    ok, summary = verify(work / "out")
    if shown != new_job:
        ok, summary = False, summary + f"\n  flinkops get shows job {shown}, the recovered job is {new_job}"
    if survivor is not None and new_job != old_job:
        ok, summary = False, summary + f"\n  HA failover changed the job id {old_job} -> {new_job}"
    restored_from = status.get("jobStatus", {}).get("upgradeSavepointPath")
    if survivor is None and (not restored_from or f"/{old_job}/chk-" not in restored_from):
        ok, summary = False, summary + f"\n  redeployed from {restored_from}, not a checkpoint of job {old_job}"
    ops.delete(name)
    return Recovery(
        seconds,
        since(killed_at, first_new),
        since(killed_at, last_old),
        replayed(trace),
        view.restored,
        ok,
        summary,
        steps,
        tm_retry,
    )


# ---------------------------------------------------------------------------------------------- report

LABELS = {
    "floor": "floor: raw scripts by hand, no HA",
    "flinkops": "flinkops, no HA (controller redeploys)",
    "flinkops-ha": "flinkops, ZooKeeper HA (standby takes over)",
}


def report(results: dict[str, list[Recovery]], rounds: int) -> None:
    floor = median([r.seconds for r in results["floor"]])
    assert floor is not None
    print(f"\nJobManager SIGKILL → job RUNNING, every task, state restored (median of {rounds} rounds)")
    print(SHARED_MACHINE)
    print(settings_line())
    for key, label in LABELS.items():
        value = median([r.seconds for r in results[key]])
        line = f"  {label:<46} {fmt(value)}"
        if key != "floor" and value is not None:
            line += f"   ratio {value / floor:5.2f}   {verdict(value / floor)}"
        print(line)
    before = {key: median([r.steps.get("new cluster started") for r in results[key]]) for key in ("floor", "flinkops")}
    if before["floor"] is not None and before["flinkops"] is not None:
        print(
            f"  of which before the new cluster's processes start (the rest, JVM and Flink start, is the same work):"
            f" floor {before['floor']:.2f} s, flinkops {before['flinkops']:.2f} s"
            f" (+{before['flinkops'] - before['floor']:.2f} s)"
        )
    print("  Flink's own HA takeover with default ZooKeeper timeouts: not measured (the dead leader keeps its latch")
    print("    until its 60 s ZooKeeper session expires: over a minute per round)")

    worth = RATE * INTERVAL_MS // 1000
    print(f"\nrecords replayed per recovery (median; one checkpoint interval's worth = {worth})")
    for key, label in LABELS.items():
        counts = [r.replayed for r in results[key]]
        print(f"  {label:<46} {statistics.median(counts):6.0f}   rounds: {counts}")

    print("\nfrom the trace timestamps (median, seconds after the kill)")
    print(f"  {'':<46} {'old tasks stop':>14} {'records again':>14}")
    for key, label in LABELS.items():
        tail = median([r.old_tail for r in results[key]])
        again = median([r.first_record for r in results[key]])
        print(f"  {label:<46} {fmt(tail, width=12)} {fmt(again, width=12)}")

    print("\nsteps (median, seconds after the kill)")
    for key, label in LABELS.items():
        runs = results[key]
        final = ("RUNNING restored", statistics.median(r.seconds for r in runs))
        print_steps(label, [r.steps for r in runs], sum(r.tm_retry for r in runs), final)

    print_verified(
        f"verifier (exact check of the committed output, 0..{RECORDS - 1}, after the job FINISHED)", LABELS, results, 46
    )


# ---------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args()
    rounds = configure(args)

    jar = testjobs_jar()
    stops: list[Callable[[], object]] = []  # filled below, run when the workspace closes
    with workspace("flinkops-bench-recovery-", args.keep, also_stop=stops) as ws:
        zookeeper = ZooKeeperServer(ws.base / "zookeeper")
        stops.append(zookeeper.stop)
        zookeeper.start(timeout=60)
        base, ops, rest, clusters = ws.base, ws.ops, ws.rest, ws.clusters
        scenarios: dict[str, Callable[[int], Recovery]] = {
            "floor": lambda i: floor_round(base / f"floor-{i}", jar, rest, clusters),
            "flinkops": lambda i: flinkops_round(ops, base / f"ops-{i}", jar, rest, f"rec-{i}", None),
            "flinkops-ha": lambda i: flinkops_round(ops, base / f"ha-{i}", jar, rest, f"rec-ha-{i}", zookeeper),
        }
        results = run_rounds(
            scenarios,
            rounds,
            lambda key, r: f"{key} {r.seconds:.2f}s (replayed {r.replayed}{', TM retry' if r.tm_retry else ''})",
        )
        report(results, rounds)
        ws.failed = not all(r.verified for rs in results.values() for r in rs)
    if ws.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
