"""Rescaling a running job: the processing pause of an in-place rescale next to a stop-with-savepoint redeploy,
measured in the same run on the same job, and how fast the autoscaler absorbs a load step.

Part 1, in-place rescale against redeploy. The job is the VerifierJob (``tests/jobs``) as in
``upgrade_downtime.py``: an ordered, checkpointed sequence at 200 records/s from one source subtask, per-key
counts in keyed state (64 keys), an exactly-once FileSink, checkpoints every second, here unbounded. It starts
at parallelism 1 on one TaskManager with 2 slots; once it has processed 800 records and completed a checkpoint,
``flinkops apply`` changes ``job.parallelism`` to 2 and nothing else (the free slot takes the new subtask, so
neither side starts a TaskManager for it). Both sides use ``upgradeMode: savepoint`` and the Flink settings of
``stateful_support.FLINK_CONFIG``; they differ only in the scheduler:

* in place: ``jobmanager.scheduler: adaptive`` (with ``executing.cooldown-after-rescaling: 0 s`` and
  ``executing.resource-stabilization-timeout: 1 s``, as ``test_stateful_lifecycle`` sets them), so the
  controller raises the job's resource requirements over REST and Flink restarts the same job (same job id,
  same cluster) at the new parallelism from its own latest checkpoint;
* redeploy (the baseline): the default scheduler, so flinkops stops the job with a savepoint and starts it at
  the new parallelism on a new cluster from that savepoint. The controller pre-starts the new cluster while the
  old job runs (the default, ``flinkops.upgrade.prestart``), which is the redeploy at its fastest: its pause is
  the savepoint, the old cluster's stop and the submission to a cluster that is already up. A round in which
  the controller fell back to the usual order is reported as such.

Timed: the processing pause, from the job's ``--trace --trace-timestamps`` side channel, where the counter
writes every record it processes with the time and each task start opens a new file: pause = the last record
processed by the tasks that ran before the change → the first record processed *beyond the highest seq
processed before it* by the tasks started after it. The redeploy resumes exactly after its savepoint, so for
it that is the output gap of ``upgrade_downtime.py``; an in-place rescale restores the latest checkpoint and
processes the records after it a second time, and that replay is work that makes no progress, so it counts as
pause too. The plain gap (first record of any kind after the change) and the replayed records are shown beside
it. Also shown: the seconds from the apply until the job runs at parallelism 2 with every task RUNNING (Flink
REST, polled every 100 ms; ``web.refresh-interval: 200 ms``).

Checked in every round: the in-place rescale kept the job id (Flink REST and ``status.jobStatus.jobId``) and
recorded a ``ScaledInPlace`` event; the redeploy ran a new job restored from a savepoint. After 600 more records
the deployment is suspended (a stop-with-savepoint, which leaves every sink subtask fully committed) and the
committed output is checked exactly: every seq once, every count continuing from the state.

Goal: in-place pause / redeploy pause ≤ 0.3. Rounds alternate the two sides to spread machine noise.

Part 2 (on by default, ``--no-autoscaler`` skips it; ``--autoscaler-only`` runs it alone): the time from a load
step until the Kafka lag is back under one metrics window. The job is the fraud-scoring example (``examples/jobs``,
``flinkops.examples.FraudScoringJob``) with ``--record-cost-us 2000``, so one ``score`` subtask handles at most
about 500 authorizations/s while using next to no CPU, reading a 4-partition topic on a dev Kafka broker started
for the run, checkpoints every 2 s. It starts at parallelism 1 on TaskManagers with 2 slots, with
``job.autoscaler.enabled: "true"`` and the adaptive scheduler (settings in ``AUTOSCALER``); the producer sends
150/s for 45 s (more than the stabilization interval and a metrics window, so the autoscaler has judged that
load), then 600/s, four times as much, more than one subtask can take.

Sampled every 0.5 s: the job's consumer group lag (the sum over partitions of end offset - committed offset, as
Kafka keeps it; the job commits its offsets when a checkpoint completes) and the job's highest vertex
parallelism (Flink REST via ``flink.figures``). Reported, in seconds after the step: the autoscaler's decision
(the time of its record in ``status.autoscaler.history``), the first sample at a higher parallelism, and the
moment from which, on the rescaled job, the lag stays under one metrics window of input (600/s * window) and
under two seconds of input (caught up; the sampling ends 20 s after that). The consumer group lag is the source
lag with the coarseness of the checkpoint interval; it also goes on growing while checkpoints cannot complete
(during the restart, under back-pressure), so it overstates the backlog then. Two cross-checks are printed: the
backlog as the output shows it (authorizations produced - distinct scores seen by a ``read_uncommitted``
consumer, exact within a poll) and the lag that flinkops' own figures report (``JobFigures.kafka_lag``: the
sources' ``pendingRecords`` / ``records-lag-max``). The latter is not used for timing: on this job it stayed
near its value before the step while the backlog grew (likely because a back-pressured Kafka consumer does not
fetch, and its lag metrics are measured on fetch), and it kept a stale peak long after the backlog was gone.

Baseline, same run: the same job and step without the autoscaler, where ``job.parallelism`` is applied in
place at the moment of the step to what the new load needs at the utilization target (ceil(600 / (500 *
target)) = 2): a perfect, instant decision. The ratio autoscaler / baseline says what deciding from a metrics
window costs; its floor is about stabilization + window. Both runs then stop producing, drain, and check every
score exactly once under ``read_committed`` (``tests/support/fraud.py`` recomputes each) and that the job id
stayed the same. A run in which nothing rescales within ``RESCALE_TIMEOUT`` fails with a message that says so
and shows the autoscaler's status record.

Run: ``.venv/bin/python benchmarks/rescale.py [--rounds N | --quick] [--keep] [--flink-registration-delay]
[--no-autoscaler | --autoscaler-only]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

# Importing stateful_support (which fraud_pipeline does first thing) puts tests/ on sys.path for support.*.
from fraud_pipeline import CARDS, EVENT_STEP_MS, PacedProducer, Watcher
from stateful_support import (
    KEYS,
    RATE,
    SHARED_MACHINE,
    Flinkops,
    Rest,
    add_arguments,
    configure,
    deployment,
    first_logged,
    fmt,
    max_traced,
    median,
    print_steps,
    print_verified,
    rest_of,
    run_rounds,
    settings_line,
    since,
    trace_names,
    verdict,
    wait_for,
    wait_ready,
    wait_restored,
    workspace,
)

from flinkops.dev.example_jobs import FRAUD_SCORING_JOB, build_example_jobs
from flinkops.dev.services import DevServices
from flinkops.flink.figures import FiguresReader, JobAddress
from support.dataplane import free_port
from support.fraud import check_scores, read_topic
from support.testjobs import testjobs_jar
from support.verifier import check, job_args, trace_files

# ---------------------------------------------------------------------------------------------- part 1

FROM_PARALLELISM, TO_PARALLELISM = 1, 2
BEFORE_RESCALE = 800  # records processed (and a checkpoint completed) before the parallelism changes
AFTER_RESCALE = 600  # records processed past the old high-water mark before the deployment is suspended
GOAL = 0.3
ADAPTIVE = {
    "jobmanager.scheduler": "adaptive",
    "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling": "0 s",
    "jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout": "1 s",
}
# Flink's own log lines around a restart, in the JobManager log (first occurrence after the change).
JOB_MILESTONES = (
    ("job restarting", "switched from state RUNNING to RESTARTING"),
    ("job cancelling", "switched from state RUNNING to CANCELLING"),
    ("job running again", "switched from state CREATED to RUNNING"),
)


@dataclass
class Rescale:
    pause: float  # last record processed before the change -> first record past the old high-water mark
    gap: float  # last record processed before the change -> first record processed after it (replays included)
    replayed: int  # records the new tasks processed at or below the old high-water mark
    running: float | None  # apply -> the job at the new parallelism with every task RUNNING (REST)
    last_old: float | None  # apply -> last record processed before the change
    resumed: float | None  # apply -> first record past the old high-water mark
    generations: int  # task starts of subtask 0 after the change (1: the job restarted once)
    verified: bool
    summary: str
    steps: dict[str, float | None] = field(default_factory=dict)  # step -> seconds after the apply
    prestarted: bool = False  # redeploy: the new cluster was pre-started and promoted


@dataclass(frozen=True)
class Edges:
    last_old: float  # epoch seconds
    high: int  # highest seq processed before the change
    first_new: float
    resumed: float
    replayed: int
    generations: int


def edges(trace: Path, old: set[str]) -> Edges:
    """The processing pause around a change, from the trace files: ``old`` are those present before it."""
    before = [f for f in trace_files(trace) if f.name in old]
    after = [f for f in trace_files(trace) if f.name not in old]
    stamped_before = [(s, t / 1000) for f in before for s, t in zip(f.seqs, f.times, strict=True) if t is not None]
    stamped_after = [(s, t / 1000) for f in after for s, t in zip(f.seqs, f.times, strict=True) if t is not None]
    if not stamped_before or not stamped_after:
        raise RuntimeError(f"no trace timestamps on both sides of the change in {trace}")
    high = max(s for s, _ in stamped_before)
    beyond = [t for s, t in stamped_after if s > high]
    if not beyond:
        raise RuntimeError(f"the tasks started after the change processed nothing past seq {high} ({trace})")
    return Edges(
        last_old=max(t for _, t in stamped_before),
        high=high,
        first_new=min(t for _, t in stamped_after),
        resumed=min(beyond),
        replayed=sum(1 for s, _ in stamped_after if s <= high),
        generations=sum(1 for f in after if f.subtask == 0),
    )


def write_spec(work: Path, name: str, jar: Path, args: list[str], parallelism: int, extra: dict[str, str]) -> Path:
    """``stateful_support.deployment`` (upgradeMode savepoint) with ``job.parallelism`` set to ``parallelism``."""
    path = deployment(work, name, jar, args, upgrade_mode="savepoint", extra=extra)
    doc = json.loads(path.read_text())
    doc["spec"]["job"]["parallelism"] = parallelism
    path.write_text(json.dumps(doc, indent=1))
    return path


def parallelism_running(url: str, job_id: str) -> int | None:
    """The job's highest vertex parallelism once the job and every vertex are RUNNING, else None."""
    try:
        details = httpx.get(f"{url}/jobs/{job_id}", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return None
    vertices = details.get("vertices") or []
    if details.get("state") != "RUNNING" or not vertices or any(v.get("status") != "RUNNING" for v in vertices):
        return None
    return max(int(v["parallelism"]) for v in vertices)


def suspend(ops: Flinkops, name: str) -> None:
    ops.ok("suspend", name)

    def suspended() -> bool:
        return (ops.get(name).get("status") or {}).get("lifecycleState") == "SUSPENDED"

    wait_for(f"{name} to be SUSPENDED", suspended, timeout=180, interval=0.5)


def rescale_round(ops: Flinkops, rest: Rest, work: Path, jar: Path, name: str, *, in_place: bool) -> Rescale:
    trace, out = work / "trace", work / "out"
    args = job_args(out, rate=RATE, keys=KEYS, trace=trace, trace_timestamps=True)
    extra = ADAPTIVE if in_place else {}
    ops.apply(write_spec(work, name, jar, args, FROM_PARALLELISM, extra), name)
    record = ops.record(name)
    assert record is not None
    old_job: str = record["job_id"]
    [old_jm] = ops.jobmanagers(name)
    old_url = rest_of(old_jm)
    wait_ready(rest, lambda: old_url, old_job, trace, BEFORE_RESCALE)
    old = trace_names(trace)
    target = write_spec(work, name, jar, args, TO_PARALLELISM, extra)

    started_at, start = time.time(), time.monotonic()
    ops.apply(target, name, wait=False)
    applied = time.monotonic() - start
    problems: list[str] = []
    if in_place:
        wait_for(
            f"job {old_job} RUNNING at parallelism {TO_PARALLELISM}",
            lambda: parallelism_running(old_url, old_job) == TO_PARALLELISM,
            timeout=240,
        )
        new_job, new_url = old_job, old_url
    else:

        def current_url() -> str | None:
            jms = ops.jobmanagers(name)
            return rest_of(jms[0]) if jms and jms[0]["pid"] != old_jm["pid"] else None

        def current_job() -> str | None:
            found = (ops.record(name) or {}).get("job_id")
            return found if isinstance(found, str) and found != old_job else None

        wait_restored(rest, current_url, current_job)
        new_url, new_job = current_url() or "", current_job() or ""
        if parallelism_running(new_url, new_job) != TO_PARALLELISM:
            problems.append(f"the redeployed job {new_job} does not run at parallelism {TO_PARALLELISM}")
    running = time.monotonic() - start

    found = edges_after(trace, old)
    wait_for(
        f"{AFTER_RESCALE} records past seq {found.high}",
        lambda: max_traced(trace) >= found.high + AFTER_RESCALE,
        timeout=120,
        interval=0.25,
    )
    status = ops.get(name).get("status") or {}
    job_status = status.get("jobStatus") or {}
    events = ops.ok("describe", name)
    steps: dict[str, float | None] = {"apply returned": applied}
    if in_place:
        steps["rescale requested"] = since(started_at, ops.controller_logged(name, "rescale job", started_at))
        if job_status.get("jobId") != old_job:
            problems.append(f"status shows job {job_status.get('jobId')}, not the rescaled {old_job}")
        if "ScaledInPlace" not in events:
            problems.append("no ScaledInPlace event")
    else:
        for label, text in (
            ("new cluster pre-started", "pre-start the cluster"),
            ("savepoint triggered", "stop job"),
            ("old cluster deleted", "delete cluster"),
        ):
            steps[label] = since(started_at, ops.controller_logged(name, text, started_at))
        restored_from = job_status.get("upgradeSavepointPath") or ""
        if "/savepoint-" not in restored_from:
            problems.append(f"the new job restored from {restored_from!r}, not a savepoint")
        if job_status.get("jobId") != new_job:
            problems.append(f"status shows job {job_status.get('jobId')}, not {new_job}")
    logs = [f for d in ops.log_dirs(name) for f in sorted(d.glob("*.log*"))]
    for label, needle in JOB_MILESTONES:
        times = [t for f in logs if (t := first_logged(f, needle, started_at)) is not None]
        if times:
            steps[label] = min(times) - started_at

    suspend(ops, name)
    report = check(out, keys=KEYS)
    e = edges(trace, old)  # final: the files are complete now
    ops.delete(name)
    summary = "\n".join([report.summary(), *(f"  {p}" for p in problems)])
    return Rescale(
        pause=e.resumed - e.last_old,
        gap=e.first_new - e.last_old,
        replayed=e.replayed,
        running=running,
        last_old=since(started_at, e.last_old),
        resumed=since(started_at, e.resumed),
        generations=e.generations,
        verified=report.ok and not problems,
        summary=summary,
        steps=steps,
        prestarted=steps.get("new cluster pre-started") is not None,
    )


def edges_after(trace: Path, old: set[str]) -> Edges:
    """:func:`edges` once the new tasks have processed a record past the old high-water mark."""
    found: list[Edges] = []

    def probe() -> bool:
        try:
            found[:] = [edges(trace, old)]
        except RuntimeError:
            return False
        return True

    wait_for("the new tasks to process new records", probe, timeout=120, interval=0.25)
    return found[0]


LABELS = {
    "redeploy": "redeploy: stop-with-savepoint, new cluster",
    "inplace": "in place: adaptive scheduler rescale",
}
WIDTH = 44


def report_rescale(results: dict[str, list[Rescale]], rounds: int) -> None:
    base = median([r.pause for r in results["redeploy"]])
    ours = median([r.pause for r in results["inplace"]])
    assert base is not None and ours is not None
    print(
        f"\nparallelism {FROM_PARALLELISM} → {TO_PARALLELISM} of a running job: processing pause "
        f"(median of {rounds} round(s))"
    )
    print(
        "last record processed before the change → first record processed past the highest seq processed before "
        "it (trace timestamps)"
    )
    print(SHARED_MACHINE)
    print(settings_line() + "; upgradeMode savepoint on both; only the scheduler differs")
    for key in ("redeploy", "inplace"):
        runs = results[key]
        value = median([r.pause for r in runs])
        print(f"  {LABELS[key]:<{WIDTH}} {fmt(value)}   rounds: {[round(r.pause, 2) for r in runs]}")
    print(f"  ratio in place / redeploy: {ours / base:.2f}   {verdict(ours / base, GOAL)}")
    used = sum(r.prestarted for r in results["redeploy"])
    print(f"  redeploy rounds with the new cluster pre-started: {used} of {len(results['redeploy'])}")

    print("\nbeside the pause (median): plain gap (first record of any kind after the change), records processed a")
    print("second time, task starts of subtask 0 after the change")
    for key in ("redeploy", "inplace"):
        runs = results[key]
        gap = fmt(median([r.gap for r in runs]))
        replayed = median([float(r.replayed) for r in runs]) or 0.0
        starts = [r.generations for r in runs]
        print(f"  {LABELS[key]:<{WIDTH}} gap {gap}   replayed {replayed:5.0f}   task starts {starts}")

    print("\nseconds after the apply, median")
    print(f"  {'':<{WIDTH}} {'last old record':>15} {'first new seq':>14} {'all RUNNING at p2':>18}")
    for key in ("redeploy", "inplace"):
        runs = results[key]
        last = fmt(median([r.last_old for r in runs]), width=13)
        resumed = fmt(median([r.resumed for r in runs]), width=12)
        running = fmt(median([r.running for r in runs]), width=16)
        print(f"  {LABELS[key]:<{WIDTH}} {last} {resumed} {running}")

    print("\nsteps (median, seconds after the apply)")
    for key in ("redeploy", "inplace"):
        runs = results[key]
        print_steps(LABELS[key], [r.steps for r in runs], 0, ("first new seq", median([r.resumed for r in runs]) or 0))

    print_verified(
        "checks: job id kept in place / new job from a savepoint; exact committed output after a suspend",
        LABELS,
        results,
        WIDTH,
    )


def describe_rescale(key: str, r: Rescale) -> str:
    return f"{key} pause {r.pause:.2f}s ({'verified' if r.verified else 'CHECK FAILED'})"


# ---------------------------------------------------------------------------------------------- part 2

RECORD_COST_US = 2000  # one score subtask: at most ~500 authorizations/s
BASE_RATE = 150  # authorizations/s before the step
STEP = 4  # the step multiplies the rate
PARTITIONS = 4
CHECKPOINT_MS = 2000
WINDOW_S = 20.0
TARGET_UTILIZATION = 0.7
AUTOSCALER = {
    "job.autoscaler.enabled": "true",
    "job.autoscaler.metrics.window": f"{WINDOW_S:g} s",
    "job.autoscaler.stabilization.interval": "10 s",
    "job.autoscaler.scale-down.interval": "10 min",  # no scale-down within a run
    "job.autoscaler.utilization.target": f"{TARGET_UTILIZATION}",
    "job.autoscaler.catch-up.duration": "30 s",
    "job.autoscaler.restart.time": "5 s",
}
BASE_SECONDS = 45.0  # production at BASE_RATE before the step: > stabilization + 1 window, seen by the autoscaler
CAUGHT_UP_SECONDS = 2.0  # "caught up": lag under this many seconds of input (one checkpoint interval's worth)
SETTLED_SECONDS = 20.0  # the lag must stay caught up this long before the sampling ends
RESCALE_TIMEOUT = 180.0  # seconds after the step for a first rescale
RECOVER_TIMEOUT = 300.0  # seconds after the step for the lag to settle
SAMPLE_SECONDS = 0.5


@dataclass
class Sample:
    at: float  # seconds after the step
    group_lag: int | None  # the job's consumer group: end offsets - committed offsets (None: not read)
    backlog: int  # authorizations produced - distinct scores seen under read_uncommitted
    figure_lag: float | None  # JobFigures.kafka_lag (None: unknown, as during a restart)
    parallelism: int | None  # highest vertex parallelism (None: unknown)


@dataclass
class Step:
    rescaled: float | None  # step -> first sample at a higher parallelism
    decided: float | None  # step -> the autoscaler's scaling decision (its status record)
    under_window: float | None  # step -> from here on rescaled and group lag < high rate x window
    caught_up: float | None  # step -> from here on rescaled and group lag < high rate x CAUGHT_UP_SECONDS
    backlog_caught_up: float | None  # the same for the backlog (produced - scored)
    peak_group_lag: float
    peak_backlog: float
    figure_lag: tuple[float | None, float | None]  # JobFigures.kafka_lag: peak, last
    parallelism: int | None  # at the end
    reason: str  # the autoscaler's reason for its first rescale ("" for the oracle)
    verified: bool
    summary: str
    samples: list[Sample] = field(default_factory=list)


def oracle_parallelism() -> int:
    return math.ceil(BASE_RATE * STEP / (1_000_000 / RECORD_COST_US * TARGET_UTILIZATION))


def fraud_spec(work: Path, name: str, jar: Path, bootstrap: str, *, autoscaler: bool, parallelism: int = 1) -> Path:
    config = {
        **ADAPTIVE,
        "flinkops.connectors": "kafka",
        "web.refresh-interval": "500 ms",
        **(AUTOSCALER if autoscaler else {}),
    }
    args = [
        "--bootstrap-servers", bootstrap, "--input-topic", f"{name}-in", "--output-topic", f"{name}-out",
        "--group-id", name, "--transactional-id-prefix", name, "--model", "v1",
        "--checkpoint-interval", str(CHECKPOINT_MS), "--record-cost-us", str(RECORD_COST_US),
    ]  # fmt: skip
    return deployment(
        work, name, jar, args, upgrade_mode="savepoint", extra=config, entry_class=FRAUD_SCORING_JOB,
        parallelism=parallelism,
    )  # fmt: skip


@dataclass
class Plane:
    """The run's Kafka broker (in the workspace's flinkops home) and the fraud-scoring jar."""

    bootstrap: str
    services: DevServices
    jar: Path


def start_kafka(home: Path) -> Plane:
    services = DevServices(home)
    services.up(["kafka"], {"kafka": free_port()}, progress=lambda line: print(f"[kafka] {line}", flush=True))
    bootstrap = services.kafka_bootstrap()
    if bootstrap is None:
        raise RuntimeError(f"the dev Kafka broker in {home} did not come up")
    return Plane(bootstrap, services, build_example_jobs())


class GroupLag:
    """The lag of a consumer group on a topic as Kafka keeps it: the sum over partitions of end offset - committed
    offset. The client never joins the group (no subscribe, no commit): it only reads the group's offsets."""

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        from confluent_kafka import Consumer, TopicPartition

        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
        partitions = sorted(self._consumer.list_topics(topic, timeout=30).topics[topic].partitions)
        self._partitions = [TopicPartition(topic, p) for p in partitions]

    def read(self) -> int | None:
        from confluent_kafka import KafkaException, TopicPartition

        try:
            total = 0
            for committed in self._consumer.committed(self._partitions, timeout=5):
                low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(committed.topic, committed.partition), timeout=5, cached=False
                )
                total += high - (committed.offset if committed.offset >= 0 else low)
        except KafkaException:
            return None
        return total

    def close(self) -> None:
        self._consumer.close()


def settled(samples: list[Sample], since: float, value: Callable[[Sample], float | None], below: float) -> float | None:
    """The time of the first sample at or after ``since`` from which every sample's ``value`` is under ``below``
    (an unknown value is not under), or None when the last one is not."""
    found: float | None = None
    for sample in samples:
        if sample.at < since:
            continue
        current = value(sample)
        if current is None or current >= below:
            found = None
        elif found is None:
            found = sample.at
    return found


def step_round(ops: Flinkops, plane: Plane, work: Path, name: str, *, autoscaler: bool) -> Step:
    source, target = f"{name}-in", f"{name}-out"
    plane.services.create_topic(source, PARTITIONS)
    plane.services.create_topic(target, PARTITIONS)
    high_rate = BASE_RATE * STEP
    window_worth, caught_up_worth = high_rate * WINDOW_S, high_rate * CAUGHT_UP_SECONDS
    scored = Watcher(plane.bootstrap, target, "read_uncommitted").start()
    producer = PacedProducer(plane.bootstrap, source, 0, BASE_RATE).start()
    reader = FiguresReader(timeout=1.0, deadline=2.0, ttl=0.0)
    group = GroupLag(plane.bootstrap, source, name)
    samples: list[Sample] = []

    def sample(at: float) -> Sample:
        current = figures(reader, url, job_id)
        return Sample(
            at,
            group.read(),
            producer.next_id - len(scored.first_seen),
            current.kafka_lag if current else None,
            current.parallelism if current else None,
        )

    try:
        ops.apply(fraud_spec(work, name, plane.jar, plane.bootstrap, autoscaler=autoscaler), name)
        time.sleep(BASE_SECONDS)
        job_id, url = job_address(ops, name)
        before = sample(0.0)
        start_parallelism = before.parallelism or 1
        print(f"  {name}: at {BASE_RATE}/s before the step: {before}", flush=True)

        # The step: a second producer at the higher rate continues the ids where the first stopped.
        producer = PacedProducer(plane.bootstrap, source, producer.stop(), high_rate).start()
        step, step_epoch = time.monotonic(), time.time()
        if not autoscaler:
            ops.apply(fraud_spec(work, name, plane.jar, plane.bootstrap, autoscaler=False,
                                 parallelism=oracle_parallelism()), name, wait=False)  # fmt: skip

        rescaled: float | None = None
        while True:
            at = time.monotonic() - step
            samples.append(current := sample(at))
            if rescaled is None and (current.parallelism or 0) > start_parallelism:
                rescaled = at
            if rescaled is None and at > RESCALE_TIMEOUT:
                raise RuntimeError(no_rescale(ops, name, current, high_rate, autoscaler))
            caught = settled(samples, rescaled, lambda s: s.group_lag, caught_up_worth) if rescaled else None
            if caught is not None and at - caught >= SETTLED_SECONDS:
                break
            if at > RECOVER_TIMEOUT:
                raise RuntimeError(
                    f"{name}: rescaled {rescaled} s after the step, but the consumer group's lag "
                    f"({current.group_lag}) did not stay under {caught_up_worth:.0f} within {RECOVER_TIMEOUT:.0f} s"
                )
            time.sleep(max(0.0, SAMPLE_SECONDS - (time.monotonic() - step - at)))
        job_now, _ = job_address(ops, name)
        history = ((ops.get(name).get("status") or {}).get("autoscaler") or {}).get("history") or []
    finally:
        produced = producer.stop()
        scored.close()
        group.close()
        (work / "samples.json").write_text(json.dumps([vars(s) for s in samples], indent=0))
    committed = read_topic(plane.bootstrap, target, isolation="read_committed", expect=produced, timeout=300)
    report = check_scores(committed, 0, produced - 1, CARDS, EVENT_STEP_MS)
    problems = [] if job_now == job_id else [f"the job id changed: {job_id} → {job_now}"]
    decisions = [h for h in history if isinstance(h, dict) and int(h.get("at", 0)) >= step_epoch * 1000]
    if autoscaler and not decisions:
        problems.append(f"no scaling decision in status.autoscaler.history after the step: {history}")
    first = decisions[0] if decisions else {}
    ops.delete(name)
    figure_lags = [s.figure_lag for s in samples if s.figure_lag is not None]
    return Step(
        rescaled=rescaled,
        decided=int(first["at"]) / 1000 - step_epoch if first else None,
        under_window=settled(samples, rescaled or 0.0, lambda s: s.group_lag, window_worth),
        caught_up=settled(samples, rescaled or 0.0, lambda s: s.group_lag, caught_up_worth),
        backlog_caught_up=settled(samples, rescaled or 0.0, lambda s: s.backlog, caught_up_worth),
        peak_group_lag=max((s.group_lag or 0 for s in samples), default=0),
        peak_backlog=max((s.backlog for s in samples), default=0),
        figure_lag=(max(figure_lags, default=None), figure_lags[-1] if figure_lags else None),
        parallelism=samples[-1].parallelism if samples else None,
        reason=(
            f"{first.get('fromParallelism')} → {first.get('toParallelism')} {first.get('how')}: {first.get('reason')}"
            if first
            else ""
        ),
        verified=report.ok and not problems,
        summary="\n".join([f"{name}: {report.summary()}", *(f"  {p}" for p in problems)]),
        samples=samples,
    )


def no_rescale(ops: Flinkops, name: str, current: Sample, high_rate: int, autoscaler: bool) -> str:
    """Why a round failed: the job was not rescaled within RESCALE_TIMEOUT of the step."""
    text = (
        f"no rescale within {RESCALE_TIMEOUT:.0f} s of the load step ({BASE_RATE}/s → {high_rate}/s): {name} still "
        f"runs at parallelism {current.parallelism}, its consumer group {current.group_lag} records behind "
        f"({current.backlog} authorizations not scored)."
    )
    if not autoscaler:
        return text + f" The in-place apply of parallelism {oracle_parallelism()} did not take effect."
    record = (ops.get(name).get("status") or {}).get("autoscaler")
    return (
        text + " The autoscaler did not rescale the job: is it part of this controller (job.autoscaler.enabled "
        f'"true" with jobmanager.scheduler: adaptive)? Its status record: {json.dumps(record)}; '
        f"the controller's log: {ops.home / 'controller.log'}"
    )


def job_address(ops: Flinkops, name: str) -> tuple[str, str]:
    def found() -> tuple[str, str] | None:
        job_id = (ops.record(name) or {}).get("job_id")
        jms = ops.jobmanagers(name)
        return (job_id, rest_of(jms[0])) if isinstance(job_id, str) and jms else None

    return wait_for(f"{name}'s job and JobManager", found, timeout=60)


def figures(reader: FiguresReader, url: str, job_id: str) -> Any:
    address = JobAddress(url, job_id)
    return reader.read([address]).get(address)


STEP_LABELS = {
    "oracle": f"baseline: parallelism {oracle_parallelism()} applied at the step",
    "autoscaler": "autoscaler (job.autoscaler.enabled)",
}


def report_step(results: dict[str, list[Step]], rounds: int) -> None:
    high = BASE_RATE * STEP
    print(
        f"\nload step {BASE_RATE}/s → {high}/s on the fraud-scoring job (--record-cost-us {RECORD_COST_US}: "
        f"~{1_000_000 // RECORD_COST_US}/s per score subtask), {PARTITIONS} partitions, median of {rounds} round(s)"
    )
    print(
        f"seconds after the step until the job runs rescaled and, from then on, its consumer group's lag stays under "
        f"one metrics window of input ({WINDOW_S:g} s: {high * WINDOW_S:.0f}) and under {CAUGHT_UP_SECONDS:g} s of "
        f"input ({high * CAUGHT_UP_SECONDS:.0f}: caught up)"
    )
    print(SHARED_MACHINE)
    settings = ", ".join(f"{key.removeprefix('job.autoscaler.')}={value}" for key, value in AUTOSCALER.items())
    print(f"autoscaler settings: {settings}; checkpoints every {CHECKPOINT_MS / 1000:g} s (the group's commits)")
    print(f"  {'':<{WIDTH}} {'decided':>8} {'rescaled':>9} {'< window':>9} {'caught up':>10} {'peak lag':>9} {'p':>4}")
    for key in ("oracle", "autoscaler"):
        runs = results[key]
        decided = fmt(median([r.decided for r in runs]), width=6)
        rescaled = fmt(median([r.rescaled for r in runs]), width=7)
        under = fmt(median([r.under_window for r in runs]), width=7)
        caught = fmt(median([r.caught_up for r in runs]), width=8)
        peak = median([r.peak_group_lag for r in runs]) or 0.0
        reached = ",".join(str(r.parallelism) for r in runs)
        print(f"  {STEP_LABELS[key]:<{WIDTH}} {decided} {rescaled} {under} {caught} {peak:9.0f} {reached:>4}")
    for what, attr in (("lag under one window", "under_window"), ("caught up", "caught_up")):
        ours = median([getattr(r, attr) for r in results["autoscaler"]])
        base = median([getattr(r, attr) for r in results["oracle"]])
        if ours is not None and base:
            print(f"  ratio autoscaler / baseline ({what}): {ours / base:.2f}")

    print("\ncross-checks (median): the backlog (authorizations produced - distinct scores under read_uncommitted),")
    print("and the lag the job's Flink metrics report (JobFigures.kafka_lag: pendingRecords / records-lag-max)")
    for key in ("oracle", "autoscaler"):
        runs = results[key]
        caught = fmt(median([r.backlog_caught_up for r in runs]))
        peak = median([r.peak_backlog for r in runs]) or 0.0
        flink_peak = median([r.figure_lag[0] for r in runs])
        flink_last = median([r.figure_lag[1] for r in runs])
        print(
            f"  {STEP_LABELS[key]:<{WIDTH}} backlog caught up {caught}, peak {peak:6.0f}; "
            f"kafka_lag peak {flink_peak if flink_peak is not None else 'n/a'}, "
            f"last {flink_last if flink_last is not None else 'n/a'}"
        )
    for r in results["autoscaler"]:
        if r.reason:
            print(f"  autoscaler decision: {r.reason}")
    print_verified("exactly once (read_committed: every authorization scored once, as recomputed)", STEP_LABELS,
                   results, WIDTH)  # fmt: skip


def describe_step(key: str, r: Step) -> str:
    return (
        f"{key} rescaled {fmt(r.rescaled, width=1)}, lag under a window {fmt(r.under_window, width=1)}, "
        f"caught up {fmt(r.caught_up, width=1)}{'' if r.verified else ' (CHECK FAILED)'}"
    )


# ---------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_arguments(parser)
    parser.add_argument(
        "--autoscaler",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run part 2, the autoscaler's load step, after part 1 (default: on)",
    )
    parser.add_argument("--autoscaler-only", action="store_true", help="run part 2 only")
    args = parser.parse_args()
    rounds = configure(args)
    part1 = not args.autoscaler_only
    part2 = args.autoscaler or args.autoscaler_only

    jar = testjobs_jar() if part1 else None
    stops: list[Callable[[], object]] = []  # run when the workspace closes, after the controller and clusters
    with workspace("flinkops-bench-rescale-", args.keep, also_stop=stops) as ws:
        ops, rest, base = ws.ops, ws.rest, ws.base
        ok = True
        if part1:
            assert jar is not None
            scenarios: dict[str, Callable[[int], Rescale]] = {
                "redeploy": lambda i: rescale_round(ops, rest, base / f"redeploy-{i}", jar, f"redeploy-{i}",
                                                    in_place=False),
                "inplace": lambda i: rescale_round(ops, rest, base / f"inplace-{i}", jar, f"inplace-{i}",
                                                   in_place=True),
            }  # fmt: skip
            results = run_rounds(scenarios, rounds, describe_rescale)
            report_rescale(results, rounds)
            ok = all(r.verified for rs in results.values() for r in rs)
        if part2:
            home = ops.home
            stops.append(lambda: DevServices(home).down(["kafka"]))
            plane = start_kafka(home)
            steps: dict[str, Callable[[int], Step]] = {
                "oracle": lambda i: step_round(ops, plane, base / f"oracle-{i}", f"oracle-{i}", autoscaler=False),
                "autoscaler": lambda i: step_round(ops, plane, base / f"auto-{i}", f"auto-{i}", autoscaler=True),
            }
            try:
                stepped = run_rounds(steps, rounds, describe_step)
            except (RuntimeError, TimeoutError) as exc:
                print(f"\npart 2 (load step) failed: {exc}", flush=True)
                ok = False
            else:
                report_step(stepped, rounds)
                ok = ok and all(r.verified for rs in stepped.values() for r in rs)
        ws.failed = not ok
    if ws.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
