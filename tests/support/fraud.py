"""Checks for the fraud-scoring example: what ``FraudScoringJob`` must output, reading it back, comparing.

The producer (``examples/fraud-scoring/producer.py``) makes every authorization a pure function of its
``auth_id``, so :func:`expected_scores` recomputes, without Flink, the features and the score the job must emit
for each id: the same 30-minute window per card and the same integer score formula as the Java job (its
Javadoc is the specification; :data:`MODELS` mirrors its weights). :func:`check_scores` then proves, record by
record, that nothing was lost, nothing was duplicated and the per-card state survived restarts and upgrades
(a lost window shows up as a wrong ``auth_count_30m`` long after the failure).

Reading Kafka: :func:`read_topic` reads a whole topic from the beginning with a fresh consumer group.
``read_committed`` sees what the job committed (exactly once); ``read_uncommitted`` also sees the records of
transactions that were aborted because the job failed before its checkpoint completed. Those were processed
again after the restore, so :func:`replayed` (auth ids seen more than once under ``read_uncommitted``) is the
number of records replayed after failures.

Assumption: ids were produced in increasing order by one producer, so each card's authorizations reach the job
in ``auth_id`` order (the message key is the card, so a card stays in one partition).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from support.examples import example_module

__all__ = [
    "FEATURES",
    "MODELS",
    "WINDOW_MS",
    "ProducerThread",
    "ScoreReport",
    "check_scores",
    "expected_scores",
    "producer_module",
    "read_topic",
    "replayed",
    "score",
]

PRODUCER = Path(__file__).resolve().parents[2] / "examples" / "fraud-scoring" / "producer.py"
WINDOW_MS = 30 * 60 * 1000
# (WC, WD, WS, WM, K) per model, as in FraudScoringJob.Model.
MODELS: dict[str, tuple[int, int, int, int, int]] = {
    "v1": (20, 10, 1, 3, 100),
    "v2": (10, 30, 2, 2, 60),
}
# The output fields that depend only on the input and the window (not on the model).
FEATURES = (
    "card_id",
    "ts",
    "auth_count_30m",
    "amount_sum_30m",
    "distinct_merchants_30m",
    "max_amount_30m",
)


def producer_module() -> ModuleType:
    """``examples/fraud-scoring/producer.py`` loaded as a module (its directory name is not importable)."""
    return example_module("fraud-scoring/producer.py")


class ProducerThread:
    """Authorizations with consecutive ids (from 0) on ``topic``, sent from a thread at ``rate`` per second until
    :meth:`stop`; ``rate`` may be changed while it runs (it applies from the next half second)."""

    def __init__(self, bootstrap: str, topic: str, rate: int, *, cards: int = 500, event_step_ms: int = 1000) -> None:
        self.bootstrap, self.topic, self.rate = bootstrap, topic, rate
        self.cards, self.event_step_ms = cards, event_step_ms
        self.next_id = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        produce = producer_module().produce
        try:
            while not self._stop.is_set():
                rate = self.rate
                sent: int = produce(
                    self.bootstrap, self.topic, self.next_id, max(1, rate // 2), rate,
                    cards=self.cards, event_step_ms=self.event_step_ms,
                )  # fmt: skip
                self.next_id += sent
        except BaseException as exc:  # reported by stop(), not swallowed
            self.error = exc

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> int:
        """Stop after the half second being sent; how many were sent in all. Fails if sending failed."""
        self._stop.set()
        self._thread.join(timeout=600)
        assert self.error is None, f"the producer failed: {self.error!r}"
        return self.next_id


def score(model: str, count: int, amount_sum: int, distinct: int, largest: int) -> float:
    """The job's score: integer basis points ``10000 * z // (z + K)``, divided by 10000 (see FraudScoringJob)."""
    wc, wd, ws, wm, k = MODELS[model]
    z = wc * (count - 1) + wd * (distinct - 1) + ws * (amount_sum // 10_000) + wm * (largest // 10_000)
    return (10_000 * z // (z + k)) / 10_000


def expected_scores(
    auth_ids: Iterable[int], cards: int = 500, event_step_ms: int = 1000, model: str = "v1"
) -> dict[int, dict[str, Any]]:
    """``{auth_id: expected output record}`` (every field but ``produced_at``) for a job that read these ids.

    ``auth_ids`` must be everything the job read since its state was empty (normally the topic from its first
    id), in any order: they are processed in increasing order, like the job sees them per card.
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; known: {sorted(MODELS)}")
    authorization = producer_module().authorization
    windows: dict[int, list[tuple[int, int, int]]] = {}  # card -> kept (ts, merchant, amount), arrival order
    expected: dict[int, dict[str, Any]] = {}
    for auth_id in sorted(set(auth_ids)):
        auth = authorization(auth_id, cards, event_step_ms)
        horizon = auth["ts"] - WINDOW_MS
        kept = [entry for entry in windows.get(auth["card_id"], []) if entry[0] > horizon]
        kept.append((auth["ts"], auth["merchant_id"], auth["amount_cents"]))
        windows[auth["card_id"]] = kept
        count = len(kept)
        amount_sum = sum(entry[2] for entry in kept)
        distinct = len({entry[1] for entry in kept})
        largest = max(entry[2] for entry in kept)
        expected[auth_id] = {
            "auth_id": auth_id,
            "card_id": auth["card_id"],
            "ts": auth["ts"],
            "auth_count_30m": count,
            "amount_sum_30m": amount_sum,
            "distinct_merchants_30m": distinct,
            "max_amount_30m": largest,
            "score": score(model, count, amount_sum, distinct, largest),
            "model": model,
        }
    return expected


def read_topic(
    bootstrap: str,
    topic: str,
    *,
    isolation: Literal["read_committed", "read_uncommitted"] = "read_committed",
    expect: int | None = None,
    timeout: float = 60.0,
) -> list[dict[str, Any]]:
    """Every record value of ``topic`` (parsed JSON), from the beginning, in partition order.

    Reads all partitions with a fresh group (nothing committed). With ``expect``: waits up to ``timeout`` seconds
    until at least ``expect`` records are in, then reads on to the end of every partition (so duplicates already
    written are included) and returns. Without: returns once every partition is read up to the end it had when
    the read began (its high watermark then; a read_committed consumer also stops at the end of what is
    committed). A job that keeps writing never lets a topic go quiet, so waiting for quiet would always take
    the whole timeout. Either way it returns what it has when ``timeout`` passes.
    """
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"flinkops-test-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": isolation,
            "enable.partition.eof": True,
        }
    )
    records: list[dict[str, Any]] = []
    try:
        metadata = consumer.list_topics(topic, timeout=min(timeout, 30.0))
        topic_metadata = metadata.topics.get(topic)
        if topic_metadata is None or topic_metadata.error is not None:
            raise RuntimeError(f"topic {topic!r} not found on {bootstrap}")
        partitions = sorted(topic_metadata.partitions)
        # The end of each partition as the read begins: (low, high) watermarks; an empty partition is read.
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions}
        read_to_start_end = {p: low >= high for p, (low, high) in ends.items()}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        at_end = dict.fromkeys(partitions, False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if expect is None and all(read_to_start_end.values()):
                break
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    at_end[message.partition()] = True
                    read_to_start_end[message.partition()] = True  # the end now is at or past the one at start
                    if expect is not None and len(records) >= expect and all(at_end.values()):
                        break
                    continue
                raise RuntimeError(f"reading {topic}: {error}")
            at_end[message.partition()] = False
            offset = message.offset()
            if offset is not None and offset + 1 >= ends[message.partition()][1]:
                read_to_start_end[message.partition()] = True
            value = message.value()
            if value is not None:  # a tombstone carries no record
                records.append(json.loads(value))
    finally:
        consumer.close()
    return records


@dataclass
class ScoreReport:
    """What :func:`check_scores` found. ``ok`` when every id in range appears once with the right fields."""

    first_id: int
    last_id: int
    records: int
    missing: list[int] = field(default_factory=list)
    duplicated: list[int] = field(default_factory=list)
    unexpected: list[int] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    models: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicated or self.unexpected or self.wrong)

    def summary(self) -> str:
        """One line for an assertion message, with the first few ids of each problem."""
        if self.ok:
            return f"ok: ids {self.first_id}..{self.last_id}, {self.records} records, models {self.models}"
        parts = [f"ids {self.first_id}..{self.last_id}, {self.records} records, models {self.models}"]
        for name, items in (
            ("missing", self.missing),
            ("duplicated", self.duplicated),
            ("unexpected", self.unexpected),
            ("wrong", self.wrong),
        ):
            if items:
                parts.append(f"{len(items)} {name} (first: {', '.join(str(i) for i in items[:5])})")
        return "; ".join(parts)


def check_scores(
    scored: Iterable[dict[str, Any]], first_id: int, last_id: int, cards: int = 500, event_step_ms: int = 1000
) -> ScoreReport:
    """Compare the job's output with :func:`expected_scores` for ids ``first_id..last_id`` (inclusive).

    Each record is checked against the model it names (a v1 to v2 upgrade mid-stream is fine); features
    must match whatever the model. ``first_id`` must be the first id the job ever read (its state started
    empty there). Ids outside the range are reported as unexpected, ids seen twice as duplicated.
    """
    ids = range(first_id, last_id + 1)
    by_model = {name: expected_scores(ids, cards, event_step_ms, name) for name in MODELS}
    seen: Counter[int] = Counter()
    models: Counter[str] = Counter()
    report = ScoreReport(first_id=first_id, last_id=last_id, records=0)
    for record in scored:
        report.records += 1
        auth_id = int(record["auth_id"])
        seen[auth_id] += 1
        model = str(record.get("model"))
        models[model] += 1
        if auth_id not in ids:
            report.unexpected.append(auth_id)
            continue
        if model not in by_model:
            report.wrong.append(f"{auth_id}: unknown model {model!r}")
            continue
        expected = by_model[model][auth_id]
        for name in (*FEATURES, "score"):
            if record.get(name) != expected[name]:
                report.wrong.append(f"{auth_id}: {name} = {record.get(name)!r}, expected {expected[name]!r}")
                break
    report.missing = [auth_id for auth_id in ids if seen[auth_id] == 0]
    report.duplicated = sorted(auth_id for auth_id, n in seen.items() if n > 1 and auth_id in ids)
    report.models = dict(models)
    return report


def replayed(bootstrap: str, topic: str, timeout: float = 60.0) -> int:
    """How many auth ids appear more than once under ``read_uncommitted``: records replayed after failures.

    Call it when the job has caught up (its last transaction committed), otherwise open transactions are
    counted like aborted ones.
    """
    records = read_topic(bootstrap, topic, isolation="read_uncommitted", timeout=timeout)
    counts = Counter(record["auth_id"] for record in records)
    return sum(1 for n in counts.values() if n > 1)
