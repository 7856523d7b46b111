"""Card-authorization producer for the fraud-scoring example (``flinkops.examples.FraudScoringJob``).

Writes JSON authorizations to a Kafka topic::

    key   = card_id as decimal text (so one card stays in one partition, in order)
    value = {"auth_id": 17, "card_id": 342, "merchant_id": 1029, "amount_cents": 4599,
             "ts": 1767225617000, "produced_at": 1767300000123}

Everything but ``produced_at`` is a pure function of ``auth_id`` (see :func:`authorization`), so a test can
recompute what the job must output for any range of ids without reading the input back. ``produced_at`` is
the wall-clock time of sending, in epoch milliseconds; the job copies it to its output so consumers can
measure end-to-end latency.

Event time is compressed: authorization ``n`` happens at ``EPOCH_MS + n * event_step_ms``, whatever the
wall clock says, so the job's 30-minute windows fill and slide within minutes of real time (at the defaults,
500 cards and one authorization per second of event time, a card sees about 3.6 authorizations per window).

The producer is idempotent with ``acks=all`` and flushes before returning, so ``produce`` returning N means the
broker has N records, each exactly once, in ``auth_id`` order per card.

Usage::

    python examples/fraud-scoring/producer.py --bootstrap-servers 127.0.0.1:9092 --topic card-auth \\
        --rate 200 --count 100000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["EPOCH_MS", "MERCHANTS", "authorization", "produce"]

# 2026-01-01T00:00:00Z: the event time of authorization 0.
EPOCH_MS = 1767225600000
# Merchant ids are in [0, MERCHANTS).
MERCHANTS = 2000
# Each card shops mostly at a few "home" merchants, so distinct merchants per window is often below the count.
_HOME_MERCHANTS = 3
_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64's finaliser: a well-spread 64-bit hash of ``x`` (multiply, xor-shift; no state)."""
    z = (x + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def authorization(auth_id: int, cards: int = 500, event_step_ms: int = 1000) -> dict[str, int]:
    """The authorization with id ``auth_id``: card, merchant, amount and event time (no ``produced_at``).

    * ``card_id``: uniform over ``[0, cards)``.
    * ``merchant_id``: three times in four one of the card's three home merchants, else any of ``MERCHANTS``.
    * ``amount_cents``: 1.00 to 199.99 usually; one in 50 is large, 500.00 to 4999.99.
    * ``ts``: ``EPOCH_MS + auth_id * event_step_ms``.
    """
    if auth_id < 0 or cards <= 0 or event_step_ms <= 0:
        raise ValueError("auth_id must be >= 0; cards and event_step_ms > 0")
    card_id = _mix(auth_id * 3) % cards
    pick = _mix(auth_id * 3 + 1)
    if pick % 4 != 0:
        merchant_id = (card_id * 7 + (pick >> 8) % _HOME_MERCHANTS) % MERCHANTS
    else:
        merchant_id = (pick >> 8) % MERCHANTS
    size = _mix(auth_id * 3 + 2)
    amount_cents = 50_000 + (size >> 8) % 450_000 if size % 50 == 0 else 100 + (size >> 8) % 19_900
    return {
        "auth_id": auth_id,
        "card_id": card_id,
        "merchant_id": merchant_id,
        "amount_cents": amount_cents,
        "ts": EPOCH_MS + auth_id * event_step_ms,
    }


def produce(
    bootstrap: str,
    topic: str,
    start_id: int,
    count: int | None,
    rate: float,
    *,
    cards: int = 500,
    event_step_ms: int = 1000,
    config: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
    flush_timeout: float = 60.0,
) -> int:
    """Send authorizations ``start_id .. start_id + count - 1`` and return how many the broker acknowledged.

    ``count`` None sends until interrupted (KeyboardInterrupt stops cleanly after a flush). ``rate`` is records
    per second, paced against a fixed schedule so the average holds; 0 sends as fast as possible. ``config``
    adds or overrides librdkafka settings. ``progress`` is called with the number sent so far about once a
    second. Raises RuntimeError when a delivery failed or the final flush timed out.
    """
    from confluent_kafka import Producer  # imported here: only sending needs the kafka extra

    settings: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "client.id": "flinkops-card-auth-producer",
    }
    settings.update(config or {})
    producer = Producer(settings)
    failures: list[str] = []
    delivered = 0

    def on_delivery(err: Any, _msg: Any) -> None:
        nonlocal delivered
        if err is not None:
            failures.append(str(err))
        else:
            delivered += 1

    started = time.monotonic()
    last_report = started
    sent = 0
    try:
        while count is None or sent < count:
            if rate > 0:
                due = started + sent / rate
                now = time.monotonic()
                if due > now:
                    producer.poll(0)
                    time.sleep(due - now)
            record = authorization(start_id + sent, cards, event_step_ms)
            record["produced_at"] = time.time_ns() // 1_000_000
            value = json.dumps(record, separators=(",", ":")).encode()
            key = str(record["card_id"]).encode()
            while True:
                try:
                    producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    producer.poll(0.1)
            sent += 1
            if sent % 1000 == 0:
                producer.poll(0)
            if failures:
                break
            if progress is not None and time.monotonic() - last_report >= 1.0:
                last_report = time.monotonic()
                progress(sent)
    except KeyboardInterrupt:
        pass
    remaining = producer.flush(flush_timeout)
    if failures:
        raise RuntimeError(f"{len(failures)} authorization(s) were not delivered to {topic}; first: {failures[0]}")
    if remaining:
        raise RuntimeError(f"{remaining} authorization(s) still unsent after {flush_timeout:.0f} s: is {bootstrap} up?")
    return delivered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    parser.add_argument("--topic", default="card-auth")
    parser.add_argument("--rate", type=float, default=100.0, help="records per second; 0 = as fast as possible")
    parser.add_argument("--count", type=int, default=0, help="how many to send; 0 = until interrupted")
    parser.add_argument("--start-id", type=int, default=0, help="auth_id of the first record")
    parser.add_argument("--cards", type=int, default=500)
    parser.add_argument("--event-step-ms", type=int, default=1000, help="event time between consecutive ids")
    args = parser.parse_args(argv)
    if args.count < 0 or args.rate < 0 or args.start_id < 0:
        parser.error("--count, --rate and --start-id must be >= 0")

    def report(sent: int) -> None:
        print(f"sent {sent}", file=sys.stderr, flush=True)

    delivered = produce(
        args.bootstrap_servers,
        args.topic,
        args.start_id,
        args.count or None,
        args.rate,
        cards=args.cards,
        event_step_ms=args.event_step_ms,
        progress=report,
    )
    last_id = args.start_id + delivered - 1
    print(f"delivered {delivered} authorizations to {args.topic} (auth_id {args.start_id}..{last_id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
