"""The fraud-scoring pipeline of ``examples/fraud-scoring/fraud-scoring-kafka.yaml`` on this machine: what it
sustains, how late its scores arrive, what a JobManager kill replays and what a checkpoint on S3 costs, each
next to a baseline measured in the same run.

The pipeline is the example as users get it (Kafka in, RocksDB with incremental checkpoints on S3, a
transactional exactly-once Kafka sink out, two JobManagers on ZooKeeper HA, its checkpoint interval and
parallelism), run by flinkops against real services started for the run: a KRaft Kafka broker and a MinIO S3
store (``tests/support/dataplane.py``, in the run's own ``FLINKOPS_HOME``, so the controller finds the S3
endpoint and credentials as after ``flinkops dev up``) and a ZooKeeper server. Only endpoints, topic names, the
consumer group and transactional-id prefix (unique per deployment) and ``web.refresh-interval: 500 ms`` differ.
Every scenario gets its own topics (2 partitions each) and the same backlog (the producer makes every
authorization a pure function of its id), so scenarios never see each other's records.

1. Sustained throughput, committed: a backlog of authorizations is produced into the input topic, then the
   pipeline is deployed; timed from the moment every task is RUNNING (the latest subtask RUNNING timestamp from
   ``/jobs/:id/vertices/:vid/subtasktimes``) to the moment a ``read_committed`` consumer has received the last
   backlog score. That includes waiting for the checkpoint that commits the last transaction (up to one
   interval): it is what a downstream reader sees. The same end under ``read_uncommitted`` (processed, not yet
   committed) is printed alongside. Baseline: the same backlog copied by a plain confluent_kafka
   consumer → producer loop in this Python process (producer settings as ``producer.py``: ``acks=all``,
   idempotent), timed from the first fetch to the producer's final flush. It is no like-for-like pipeline
   (no parsing, no state, no transactions): it is the broker's and a client's ceiling for moving these records
   on this machine, so the ratio says how much of that ceiling the pipeline reaches. The pipeline is also run
   with ``file://`` checkpoints (scenario 4) and its throughput printed, which isolates what S3 costs.
2. End-to-end latency at a steady rate: once the backlog is scored, authorizations are produced at ``--rate``
   for ``--steady`` seconds; latency = the time a consumer receives the score - ``produced_at`` (stamped by the
   producer just before sending, copied to the output by the job). Two consumers read the output topic at the
   same time: ``read_committed`` (exactly once: a score appears when the checkpoint commits its transaction,
   so about half an interval plus the checkpoint on average) and, as the baseline, ``read_uncommitted`` (the
   same scores as soon as the sink sends them: the pipeline without the cost of exactly once). Consumers wait
   at most 100 ms per fetch (``fetch.wait.max.ms``), both the same.
3. Records replayed after a JobManager SIGKILL: with the producer still at ``--rate``, the leading JobManager
   (the recorded pid whose ``rest_port`` is the one in ``status.clusterInfo["rest-url"]``) is SIGKILLed, the
   standby takes the same job over from the latest checkpoint on S3, and production goes on for a few seconds.
   Replayed = auth_ids that appear more than once under ``read_uncommitted`` (records of the transactions that
   were aborted: work done twice). Baseline: one checkpoint interval's worth (rate * interval), what a kill at a
   random moment replays on average is about half of it plus what runs until the tasks are cancelled. The
   committed output is then checked exactly (every id once, every feature as an independent computation
   expects: ``tests/support/fraud.py``), for the backlog-only run with file:// checkpoints as well.
4. Checkpoint duration, S3 against file://: once the backlog is committed and three more checkpoints
   completed, ``/jobs/:id/checkpoints`` is read: the ``summary`` (``end_to_end_duration`` p50 and max over
   every checkpoint so far, ``checkpointed_size`` p50, the latest checkpoint's full ``state_size``) and, from
   ``history``, the durations of the checkpoints taken after the backlog (same state, no input: what storing
   that state costs without backpressure in the way; the summary also holds the checkpoints taken while the
   backlog was processed, whose barriers wait behind buffered records). Baseline: the same job, input and
   configuration with ``execution.checkpointing.dir`` and ``savepoint-dir`` on ``file://`` (HA metadata stays
   on S3 in both, so the only difference is where checkpoint data goes).

The machine has 2 cores shared with the broker, the S3 store, ZooKeeper, three Flink JVMs, the controller,
this script's producer and consumers, and possibly other people's tests: the load average at the start and
the end is printed, and figures are only comparable within one run.

Run: ``make bench`` or ``.venv/bin/python benchmarks/fraud_pipeline.py [--rounds N | --quick] [--keep]
[--backlog N] [--rate R] [--steady S]``. Rounds alternate the scenarios; with N > 1 the medians are printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

# stateful_support comes first: it puts tests/ on sys.path for the support.* imports below.
from stateful_support import (
    SHARED_MACHINE,
    Flinkops,
    Rest,
    alive_as_recorded,
    interrupt_on_sigterm,
    median,
    print_verified,
    rest_of,
    run_rounds,
    wait_for,
    workspace,
)

from flinkops.dev.example_jobs import build_example_jobs
from flinkops.dev.s3 import ensure_bucket
from flinkops.dev.services import DevServices
from flinkops.dev.zookeeper import ZooKeeperServer
from support.dataplane import DataPlane, start_data_plane
from support.examples import EXAMPLES, example
from support.fraud import check_scores, producer_module

EXAMPLE = "fraud-scoring/fraud-scoring-kafka.yaml"
NAMESPACE = "payments"
PARTITIONS = 2
CARDS = 500  # the producer's defaults: check_scores recomputes the features with the same
EVENT_STEP_MS = 1000
BUCKET = "flink-state"
TAIL_SECONDS = 8.0  # production after the standby runs again, before the final count
IDLE_CHECKPOINTS = 3  # checkpoints waited for after the backlog is committed, before reading the statistics
# As examples/fraud-scoring/producer.py sends: idempotent, every replica acknowledges.
PRODUCER_SETTINGS: dict[str, Any] = {"acks": "all", "enable.idempotence": True, "linger.ms": 5}
FETCH_WAIT_MS = 100


@dataclass(frozen=True)
class Settings:
    backlog: int
    rate: int  # authorizations per second in the steady phase
    steady: float  # seconds of steady production measured for latency
    interval: float  # checkpoint interval, seconds (from the example)
    min_pause: str
    parallelism: int
    jobmanagers: int
    slots: str
    backend: str

    @property
    def interval_worth(self) -> int:
        return round(self.rate * self.interval)


def seconds_of(text: str) -> float:
    """A Flink duration (``5 s``, ``500 ms``, ``2 min``) in seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|min|m)?\s*", str(text))
    if not match:
        raise ValueError(f"not a duration: {text!r}")
    value, unit = float(match.group(1)), match.group(2) or "ms"
    return value * {"ms": 0.001, "s": 1.0, "min": 60.0, "m": 60.0}[unit]


def example_settings(backlog: int, rate: int, steady: float) -> Settings:
    doc = yaml.safe_load((EXAMPLES / EXAMPLE).read_text())
    spec = doc["spec"]
    conf = spec["flinkConfiguration"]
    backend = str(conf.get("state.backend.type", "hashmap"))
    if str(conf.get("execution.checkpointing.incremental", "false")).lower() == "true":
        backend += ", incremental checkpoints"
    return Settings(
        backlog=backlog,
        rate=rate,
        steady=steady,
        interval=seconds_of(conf["execution.checkpointing.interval"]),
        min_pause=str(conf.get("execution.checkpointing.min-pause", "0 ms")),
        parallelism=int(spec["job"]["parallelism"]),
        jobmanagers=int(spec.get("jobManager", {}).get("replicas", 1)),
        slots=str(conf.get("taskmanager.numberOfTaskSlots", "1")),
        backend=backend,
    )


# ---------------------------------------------------------------------------------------------- Kafka clients


def produce_backlog(plane: DataPlane, topic: str, count: int) -> None:
    sent = producer_module().produce(plane.bootstrap, topic, 0, count, 0, cards=CARDS, event_step_ms=EVENT_STEP_MS)
    if sent != count:
        raise RuntimeError(f"the backlog producer delivered {sent} of {count} authorizations to {topic}")


class Watcher:
    """A consumer thread reading every partition of a topic from the beginning at one isolation level; keeps
    when each auth_id was first received (epoch seconds), its ``produced_at`` and how often it came."""

    def __init__(self, bootstrap: str, topic: str, isolation: str, *, keep_records: bool = False) -> None:
        from confluent_kafka import Consumer

        self.topic = topic
        self.isolation = isolation
        self.first_seen: dict[int, float] = {}
        self.produced_at: dict[int, int] = {}
        self.counts: Counter[int] = Counter()
        self.records: list[dict[str, Any]] = []
        self.contiguous = 0  # every auth_id below this has been received
        self.error: BaseException | None = None
        self._keep = keep_records
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"flinkops-bench-{uuid.uuid4().hex[:12]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": isolation,
                "fetch.wait.max.ms": FETCH_WAIT_MS,
            }
        )
        self._thread = threading.Thread(target=self._run, name=f"watch-{topic}-{isolation}", daemon=True)

    def start(self) -> Watcher:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        metadata = self._consumer.list_topics(self.topic, timeout=30)
        partitions = sorted(metadata.topics[self.topic].partitions)
        self._consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                messages = self._consumer.consume(500, timeout=0.1)
                now = time.time()
                with self._lock:
                    for message in messages:
                        if message.error() is not None:
                            raise RuntimeError(f"reading {self.topic}: {message.error()}")
                        value = message.value()
                        if value is None:
                            continue
                        record = json.loads(value)
                        auth_id = int(record["auth_id"])
                        self.counts[auth_id] += 1
                        if auth_id not in self.first_seen:
                            self.first_seen[auth_id] = now
                            self.produced_at[auth_id] = int(record["produced_at"])
                        if self._keep:
                            self.records.append(record)
                    while self.contiguous in self.first_seen:
                        self.contiguous += 1
        except BaseException as exc:  # reported by wait() and close(), never swallowed
            self.error = exc
        finally:
            self._consumer.close()

    def wait(self, below: int, timeout: float) -> None:
        """Until every auth_id below ``below`` has been received."""

        def done() -> bool:
            if self.error is not None:
                raise RuntimeError(f"the {self.isolation} consumer of {self.topic} failed") from self.error
            return self.contiguous >= below

        wait_for(f"auth_ids 0..{below - 1} on {self.topic} ({self.isolation})", done, timeout, interval=0.05)

    def last_arrival(self, below: int) -> float:
        with self._lock:
            return max(self.first_seen[i] for i in range(below))

    def latencies_ms(self, first: int, end: int) -> list[float]:
        with self._lock:
            return [self.first_seen[i] * 1000 - self.produced_at[i] for i in range(first, end)]

    def repeated(self) -> int:
        with self._lock:
            return sum(1 for n in self.counts.values() if n > 1)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class PacedProducer:
    """Authorizations with consecutive ids at ``rate`` per second (a fixed schedule), on a thread until
    stopped; one idempotent producer for the whole run so no reconnect shows up in the latencies."""

    def __init__(self, bootstrap: str, topic: str, start_id: int, rate: int) -> None:
        self.bootstrap, self.topic, self.rate = bootstrap, topic, rate
        self.next_id = start_id
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"produce-{topic}", daemon=True)

    def _run(self) -> None:
        from confluent_kafka import Producer

        authorization = producer_module().authorization
        producer = Producer({"bootstrap.servers": self.bootstrap, **PRODUCER_SETTINGS})
        failures: list[str] = []

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                failures.append(str(err))

        try:
            first, started = self.next_id, time.monotonic()
            while not self._stop.is_set() and not failures:
                pause = started + (self.next_id - first) / self.rate - time.monotonic()
                if pause > 0:
                    producer.poll(0)
                    time.sleep(pause)
                record: dict[str, Any] = dict(authorization(self.next_id, CARDS, EVENT_STEP_MS))
                record["produced_at"] = time.time_ns() // 1_000_000
                value = json.dumps(record, separators=(",", ":")).encode()
                producer.produce(self.topic, value=value, key=str(record["card_id"]).encode(), on_delivery=on_delivery)
                self.next_id += 1
                producer.poll(0)
            if producer.flush(60) or failures:
                raise RuntimeError(f"authorizations not delivered to {self.topic}: {failures[:1] or 'flush timed out'}")
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def start(self) -> PacedProducer:
        self._thread.start()
        return self

    def stop(self) -> int:
        """Stop, flush, and return the id after the last one sent."""
        self._stop.set()
        self._thread.join(timeout=120)
        if self.error is not None:
            raise RuntimeError("the steady producer failed") from self.error
        return self.next_id


def copy_topic(plane: DataPlane, source: str, target: str, count: int) -> float:
    """Copy ``count`` records from ``source`` to ``target`` with a plain consumer → producer loop; returns the
    seconds from the first fetch to the final flush."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": plane.bootstrap,
            "group.id": f"flinkops-bench-copy-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    producer = Producer({"bootstrap.servers": plane.bootstrap, **PRODUCER_SETTINGS})
    try:
        partitions = sorted(consumer.list_topics(source, timeout=30).topics[source].partitions)
        consumer.assign([TopicPartition(source, p, OFFSET_BEGINNING) for p in partitions])
        start = time.monotonic()
        copied = 0
        while copied < count:
            if time.monotonic() - start > 300:
                raise TimeoutError(f"copied {copied} of {count} records in 300 s")
            for message in consumer.consume(1000, timeout=0.5):
                if message.error() is not None:
                    raise RuntimeError(f"reading {source}: {message.error()}")
                while True:
                    try:
                        producer.produce(target, value=message.value(), key=message.key())
                        break
                    except BufferError:
                        producer.poll(0.05)
                copied += 1
            producer.poll(0)
        if producer.flush(60):
            raise RuntimeError(f"the copy to {target} did not flush")
        return time.monotonic() - start
    finally:
        consumer.close()


# ---------------------------------------------------------------------------------------------- the pipeline


@dataclass
class Services:
    plane: DataPlane
    zookeeper: ZooKeeperServer
    jar: Path
    ops: Flinkops
    rest: Rest
    base: Path


@dataclass
class Checkpoints:
    count: int  # completed checkpoints in Flink's summary (every one since the job started)
    p50_ms: float  # summary end_to_end_duration
    max_ms: float
    state_size: int  # latest completed checkpoint, full size
    checkpointed_p50: float  # summary checkpointed_size: what each checkpoint wrote (incremental)
    idle_ms: list[float]  # end_to_end_duration of the checkpoints after the backlog was committed


@dataclass
class Run:
    seconds: float  # all tasks RUNNING (copy: first fetch) -> last backlog record received by read_committed
    records: int
    processed_seconds: float | None = None  # the same end under read_uncommitted
    checkpoints: Checkpoints | None = None
    latency: dict[str, tuple[float, float, int]] = field(default_factory=dict)  # isolation -> (p50, p99, n) ms
    replayed: int | None = None
    kill_to_restored: float | None = None
    produced: int = 0
    verified: bool = True
    summary: str = ""

    @property
    def throughput(self) -> float:
        return self.records / self.seconds


def deployment_spec(svc: Services, work: Path, name: str, source: str, target: str, local: bool) -> Path:
    """The example with this run's endpoints, topics and jar; ``local`` moves checkpoints and savepoints to
    ``file://`` under ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    config = {"web.refresh-interval": "500 ms"}
    if local:
        config["execution.checkpointing.dir"] = (work / "checkpoints").as_uri() + "/"
        config["execution.checkpointing.savepoint-dir"] = (work / "savepoints").as_uri() + "/"
    written = example(
        EXAMPLE,
        work,
        bootstrap=svc.plane.bootstrap,
        quorum=svc.zookeeper.connect_string,
        jar=svc.jar,
        config={"fraud-scoring": config},
    )
    doc: dict[str, Any] = json.loads(written.read_text())
    doc["metadata"]["name"] = name
    args: list[str] = doc["spec"]["job"]["args"]
    for flag, value in (
        ("--input-topic", source),
        ("--output-topic", target),
        ("--group-id", name),
        ("--transactional-id-prefix", name),
    ):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    path = work / f"{name}.yaml"
    path.write_text(json.dumps(doc, indent=1))  # JSON is YAML
    written.unlink()
    return path


def cluster_record(ops: Flinkops, name: str) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((ops.home / "clusters" / NAMESPACE / name / "cluster.json").read_text())
    except (OSError, ValueError):
        return None
    return data


def jobmanagers(ops: Flinkops, name: str) -> list[dict[str, Any]]:
    return [p for p in (cluster_record(ops, name) or {}).get("processes", []) if p["role"] == "jobmanager"]


def wait_running(svc: Services, name: str) -> tuple[str, str, float]:
    """(job id, leader REST URL, epoch seconds when its last subtask went RUNNING) once every task runs."""

    checked = [time.monotonic()]

    def running() -> tuple[str, str] | None:
        if time.monotonic() - checked[0] > 5:  # a job that failed to start fails the round at once
            checked[0] = time.monotonic()
            failed_start(svc, name)
        job_id = (cluster_record(svc.ops, name) or {}).get("job_id")
        if not isinstance(job_id, str):
            return None
        for jm in jobmanagers(svc.ops, name):
            view = svc.rest.view(rest_of(jm), job_id)
            if view is not None and view.all_running:
                return job_id, rest_of(jm)
        return None

    job_id, url = wait_for(f"{name} to run every task", running, timeout=300, interval=0.1)
    seen = time.time()
    return job_id, url, subtasks_running_since(url, job_id) or seen


def failed_start(svc: Services, name: str) -> None:
    """Raise with the deployment's error when flinkops reports it FAILED."""
    result = svc.ops.run("get", name, "-n", NAMESPACE, "-o", "json", timeout=60)
    if result.returncode != 0:
        return
    status = json.loads(result.stdout).get("status") or {}
    if status.get("lifecycleState") == "FAILED":
        error = str(status.get("error") or "no error recorded").splitlines()
        raise RuntimeError(f"{name} FAILED: {' | '.join(error[:3])}")


def subtasks_running_since(url: str, job_id: str) -> float | None:
    """The latest RUNNING timestamp over every subtask of the job (epoch seconds), from Flink's REST."""
    try:
        with httpx.Client(base_url=url, timeout=5) as client:
            latest = 0
            for vertex in client.get(f"/jobs/{job_id}").json()["vertices"]:
                times = client.get(f"/jobs/{job_id}/vertices/{vertex['id']}/subtasktimes").json()
                for subtask in times["subtasks"]:
                    running = int(subtask.get("timestamps", {}).get("RUNNING", 0))
                    if running <= 0:
                        return None
                    latest = max(latest, running)
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None
    return latest / 1000 if latest else None


def checkpoint_summary(svc: Services, url: str, job_id: str) -> Checkpoints:
    """Called when the backlog is committed: once IDLE_CHECKPOINTS more checkpoints have completed, Flink's
    checkpoint summary for the job, and the durations of those later checkpoints (same state, no input)."""
    time.sleep(1.0)  # past Flink's REST cache (web.refresh-interval 500 ms): the commit's checkpoint is listed
    done = wait_for("a completed checkpoint", lambda: _completed(svc, url, job_id), 120, interval=0.5)
    wait_for(
        f"{IDLE_CHECKPOINTS} more checkpoints",
        lambda: (_completed(svc, url, job_id) or 0) >= done + IDLE_CHECKPOINTS,
        30 + 3 * IDLE_CHECKPOINTS * 60,
        interval=0.5,
    )
    data = httpx.get(f"{url}/jobs/{job_id}/checkpoints", timeout=10).json()
    summary = data["summary"]
    latest = (data.get("latest") or {}).get("completed") or {}
    idle = [
        float(entry["end_to_end_duration"])
        for entry in data.get("history") or []
        if entry.get("status") == "COMPLETED" and int(entry["id"]) > done and not entry.get("is_savepoint")
    ]
    return Checkpoints(
        count=int(data["counts"]["completed"]),
        p50_ms=float(summary["end_to_end_duration"]["p50"]),
        max_ms=float(summary["end_to_end_duration"]["max"]),
        state_size=int(latest.get("state_size", summary["state_size"]["max"])),
        checkpointed_p50=float(summary["checkpointed_size"]["p50"]),
        idle_ms=idle,
    )


def _completed(svc: Services, url: str, job_id: str) -> int | None:
    view = svc.rest.view(url, job_id)
    return view.completed if view else None


def leader_and_survivor(svc: Services, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The leading JobManager (its rest_port is the one in ``status.clusterInfo["rest-url"]``) and the other."""

    def both() -> tuple[dict[str, Any], dict[str, Any]] | None:
        status = json.loads(svc.ops.ok("get", name, "-n", NAMESPACE, "-o", "json")).get("status") or {}
        url = str((status.get("clusterInfo") or {}).get("rest-url") or "")
        jms = [p for p in jobmanagers(svc.ops, name) if alive_as_recorded(p)]
        leader = [p for p in jms if url.endswith(f":{p['rest_port']}")]
        if len(jms) != 2 or len(leader) != 1:
            return None
        return leader[0], next(p for p in jms if p is not leader[0])

    return wait_for("the leading JobManager and a standby", both, timeout=120, interval=1.0)


def pipeline_round(svc: Services, settings: Settings, key: str, i: int) -> Run:
    """Deploy the pipeline on a backlog; for ``s3`` also the steady phase and the JobManager kill."""
    local = key == "file"
    name, work = f"fraud-{key}-{i}", svc.base / f"{key}-{i}"
    source, target = f"card-auth-{key}-{i}", f"fraud-scores-{key}-{i}"
    svc.plane.create_topic(source, PARTITIONS)
    svc.plane.create_topic(target, PARTITIONS)
    produce_backlog(svc.plane, source, settings.backlog)
    spec = deployment_spec(svc, work, name, source, target, local)
    committed = Watcher(svc.plane.bootstrap, target, "read_committed", keep_records=True).start()
    uncommitted = Watcher(svc.plane.bootstrap, target, "read_uncommitted").start()
    try:
        svc.ops.ok("apply", "-f", str(spec))
        job_id, url, running_at = wait_running(svc, name)
        committed.wait(settings.backlog, timeout=600)
        uncommitted.wait(settings.backlog, timeout=60)
        run = Run(
            committed.last_arrival(settings.backlog) - running_at,
            settings.backlog,
            processed_seconds=uncommitted.last_arrival(settings.backlog) - running_at,
        )
        run.checkpoints = checkpoint_summary(svc, url, job_id)
        total = settings.backlog
        if not local:
            total = steady_and_kill(svc, settings, name, job_id, source, committed, uncommitted, run)
        committed.wait(total, timeout=300)
        report = check_scores(committed.records, 0, total - 1, CARDS, EVENT_STEP_MS)
        run.produced, run.verified, run.summary = total, report.ok, f"{name}: {report.summary()}"
        return run
    finally:
        committed.close()
        uncommitted.close()
        svc.ops.run("delete", name, "-n", NAMESPACE, "--timeout", "180", timeout=240)


def steady_and_kill(
    svc: Services,
    settings: Settings,
    name: str,
    job_id: str,
    source: str,
    committed: Watcher,
    uncommitted: Watcher,
    run: Run,
) -> int:
    """Latency at a steady rate, then the leader's SIGKILL while the rate goes on; returns the ids produced."""
    first = settings.backlog
    producer = PacedProducer(svc.plane.bootstrap, source, first, settings.rate).start()
    try:
        time.sleep(settings.steady)
        end = producer.next_id
        committed.wait(end, timeout=120)
        uncommitted.wait(end, timeout=60)
        for watcher in (committed, uncommitted):
            values = sorted(watcher.latencies_ms(first, end))
            run.latency[watcher.isolation] = (percentile(values, 0.5), percentile(values, 0.99), len(values))

        leader, survivor = leader_and_survivor(svc, name)
        if not alive_as_recorded(leader):
            raise RuntimeError(f"JobManager pid {leader['pid']} is not the recorded process")
        killed = time.monotonic()
        os.kill(int(leader["pid"]), signal.SIGKILL)

        def restored() -> bool:
            view = svc.rest.view(rest_of(survivor), job_id)
            return bool(view and view.all_running and view.restored is not None)

        wait_for("the standby to run the job restored", restored, timeout=240, interval=0.2)
        run.kill_to_restored = time.monotonic() - killed
        time.sleep(TAIL_SECONDS)
    finally:
        total = producer.stop()
    committed.wait(total, timeout=300)
    uncommitted.wait(total, timeout=120)
    run.replayed = uncommitted.repeated()
    return total


def copy_round(svc: Services, settings: Settings, i: int) -> Run:
    source, target = f"card-auth-copy-{i}", f"copy-{i}"
    svc.plane.create_topic(source, PARTITIONS)
    svc.plane.create_topic(target, PARTITIONS)
    produce_backlog(svc.plane, source, settings.backlog)
    seconds = copy_topic(svc.plane, source, target, settings.backlog)
    return Run(seconds, settings.backlog, produced=settings.backlog, summary=f"copy: {settings.backlog} records")


# ---------------------------------------------------------------------------------------------- report


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


LABELS = {
    "copy": "baseline: Python consumer → producer copy",
    "s3": "pipeline, checkpoints on S3 (the example)",
    "file": "pipeline, checkpoints on file://",
}
WIDTH = 44


def ratio(value: float | None, base: float | None) -> str:
    return f"ratio {value / base:5.2f}" if value is not None and base else "ratio  n/a"


def rounds_of(values: list[float | None], digits: int = 2) -> str:
    return f"rounds: {[None if v is None else round(v, digits) for v in values]}" if len(values) > 1 else ""


def report(results: dict[str, list[Run]], settings: Settings, rounds: int, load: tuple[float, ...]) -> None:
    s = settings
    print(f"\nfraud-scoring pipeline (examples/{EXAMPLE}), median of {rounds} round(s)")
    print(SHARED_MACHINE)
    print(
        f"machine: {os.cpu_count()} cores; load average (1 min) {load[0]:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end: the broker, S3, ZooKeeper, 3 Flink JVMs and this script share them"
    )
    print(
        f"settings: backlog {s.backlog} authorizations ({CARDS} cards); steady rate {s.rate}/s for {s.steady:.0f} s; "
        f"checkpoint interval {s.interval:g} s (min pause {s.min_pause}); parallelism {s.parallelism} "
        f"({s.slots} slots, one TaskManager); {s.jobmanagers} JobManagers on ZooKeeper; {s.backend}; "
        f"exactly-once Kafka sink; topics with {PARTITIONS} partitions"
    )

    copy = median([r.throughput for r in results["copy"]])
    print(f"\n1. sustained throughput: {s.backlog} backlog authorizations, every task RUNNING → last score committed")
    for key in ("copy", "s3", "file"):
        runs = results[key]
        rate = median([r.throughput for r in runs])
        seconds = median([r.seconds for r in runs])
        line = f"  {LABELS[key]:<{WIDTH}} {rate or 0:8.0f} /s  ({seconds or 0:6.2f} s)"
        if key != "copy":
            line += f"   {ratio(rate, copy)}"
        print(f"{line}   {rounds_of([r.throughput for r in runs], 0)}".rstrip())
    processed = {
        k: median([r.records / r.processed_seconds for r in results[k] if r.processed_seconds]) for k in LABELS
    }
    print(
        f"  same end under read_uncommitted (processed, before the commit): S3 {processed['s3'] or 0:.0f} /s, "
        f"file:// {processed['file'] or 0:.0f} /s; committed waits for the checkpoint (interval {s.interval:g} s)"
    )

    s3 = results["s3"]
    print(f"\n2. end-to-end latency at {s.rate}/s for {s.steady:.0f} s: produced_at → a consumer receives the score")
    base50 = median([r.latency["read_uncommitted"][0] for r in s3])
    base99 = median([r.latency["read_uncommitted"][1] for r in s3])
    for isolation, label in (
        ("read_uncommitted", "baseline: read_uncommitted (as sent)"),
        ("read_committed", "read_committed (exactly once)"),
    ):
        p50 = median([r.latency[isolation][0] for r in s3])
        p99 = median([r.latency[isolation][1] for r in s3])
        count = s3[0].latency[isolation][2]
        line = f"  {label:<{WIDTH}} p50 {p50 or 0:7.0f} ms   p99 {p99 or 0:7.0f} ms   ({count} scores)"
        if isolation == "read_committed":
            line += f"   p50 {ratio(p50, base50)}, p99 {ratio(p99, base99)}"
        print(line)

    print("\n3. records replayed after a SIGKILL of the leading JobManager (auth_ids twice under read_uncommitted)")
    worth = s.interval_worth
    replayed = median([float(r.replayed) for r in s3 if r.replayed is not None])
    print(f"  {'baseline: one checkpoint interval (rate * interval)':<{WIDTH + 8}} {worth:8d}")
    print(
        f"  {'replayed':<{WIDTH + 8}} {replayed or 0:8.0f}   {ratio(replayed, worth)}   "
        f"{rounds_of([float(r.replayed or 0) for r in s3], 0)}".rstrip()
    )
    restored = median([r.kill_to_restored for r in s3])
    print(f"  the standby ran the job again, state restored from S3, {restored or 0:.1f} s after the kill")

    print(
        f"\n4. checkpoint end-to-end duration, same job and input: Flink's summary once the backlog is committed and "
        f"{IDLE_CHECKPOINTS} more checkpoints completed"
    )
    print(
        f"  {'':<{WIDTH}} {'p50':>7} {'max':>8} {'n':>3}   {'after backlog p50':>17} {'max':>7}   "
        f"{'state size':>10} {'written p50':>11}"
    )
    cps = {k: [r.checkpoints for r in results[k] if r.checkpoints] for k in ("file", "s3")}
    figures: dict[str, dict[str, float | None]] = {}
    for key in cps:
        idle = [statistics.median(c.idle_ms) if c.idle_ms else None for c in cps[key]]
        figures[key] = {
            "p50": median([c.p50_ms for c in cps[key]]),
            "max": median([c.max_ms for c in cps[key]]),
            "n": median([float(c.count) for c in cps[key]]),
            "idle p50": median(idle),
            "idle max": median([max(c.idle_ms) if c.idle_ms else None for c in cps[key]]),
            "size": median([float(c.state_size) for c in cps[key]]),
            "written": median([c.checkpointed_p50 for c in cps[key]]),
        }
    for key, label in (("file", "baseline: checkpoints on file://"), ("s3", "checkpoints on S3 (the example)")):
        f = figures[key]
        print(
            f"  {label:<{WIDTH}} {ms(f['p50']):>7} {ms(f['max']):>8} {f['n'] or 0:3.0f}   {ms(f['idle p50']):>17} "
            f"{ms(f['idle max']):>7}   {kib(f['size']):>10} {kib(f['written']):>11}"
        )
    s3f, base = figures["s3"], figures["file"]
    print(
        f"  S3 / file://: p50 {ratio(s3f['p50'], base['p50'])}, max {ratio(s3f['max'], base['max'])}; "
        f"after the backlog p50 {ratio(s3f['idle p50'], base['idle p50'])}"
    )
    print(
        "  (all checkpoints include those taken while the backlog was processed, under backpressure; after the "
        "backlog the state is the same and no input arrives)"
    )

    print_verified(
        "exactly once (read_committed: every id once, features as recomputed independently)",
        {k: LABELS[k] for k in ("s3", "file")},
        results,
        WIDTH,
    )


def ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def kib(size: float | None) -> str:
    return "n/a" if size is None else f"{size / 1024:.0f} KiB"


# ---------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="rounds (default 1; medians when more)")
    parser.add_argument("--quick", action="store_true", help="one round, a smaller backlog, a shorter steady phase")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, data plane)")
    parser.add_argument("--backlog", type=int, help="authorizations in the backlog (default 60000; quick 20000)")
    parser.add_argument("--rate", type=int, default=500, help="steady rate, authorizations per second (500)")
    parser.add_argument("--steady", type=float, help="seconds of steady production (default 30; quick 10)")
    args = parser.parse_args()
    interrupt_on_sigterm()
    rounds = 1 if args.quick else int(args.rounds)
    backlog = args.backlog or (20_000 if args.quick else 60_000)
    steady = args.steady or (10.0 if args.quick else 30.0)
    settings = example_settings(backlog, int(args.rate), steady)
    load = os.getloadavg()

    jar = build_example_jobs()
    stops: list[Callable[[], object]] = []  # run when the workspace closes, after the controller and clusters
    with workspace("flinkops-bench-fraud-", args.keep, also_stop=stops) as ws:
        home = ws.ops.home
        stops.append(lambda: DevServices(home).down(["kafka", "s3"]))
        zookeeper = ZooKeeperServer(ws.base / "zookeeper")
        stops.append(zookeeper.stop)
        zookeeper.start(timeout=60)
        plane = start_data_plane(home)
        ensure_bucket(plane.s3(), BUCKET, versioned=True)
        svc = Services(plane, zookeeper, jar, ws.ops, ws.rest, ws.base)
        scenarios: dict[str, Callable[[int], Run]] = {
            "copy": lambda i: copy_round(svc, settings, i),
            "file": lambda i: pipeline_round(svc, settings, "file", i),
            "s3": lambda i: pipeline_round(svc, settings, "s3", i),
        }
        results = run_rounds(scenarios, rounds, describe)
        report(results, settings, rounds, load)
        ws.failed = not all(r.verified for rs in results.values() for r in rs)
    if ws.failed:
        sys.exit(1)


def describe(key: str, run: Run) -> str:
    text = f"{key} {run.throughput:.0f}/s"
    if run.checkpoints:
        text += f", checkpoint p50 {run.checkpoints.p50_ms:.0f} ms"
    if run.replayed is not None:
        text += f", replayed {run.replayed}"
    return text + ("" if run.verified else " (NOT EXACTLY ONCE)")


if __name__ == "__main__":
    main()
