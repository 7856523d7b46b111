"""The examples' data generators and the fraud-scoring expectations, without Kafka, S3 or Flink.

The card-authorization producer and the conversions generator must be deterministic (tests recompute the
right answer from ids and seeds), ``expected_totals`` must agree with what ``generate`` writes, and
``expected_scores`` must implement the window and score exactly as FraudScoringJob documents them (checked
here on a tiny input worked out by hand).
"""

from __future__ import annotations

from collections import Counter
from types import ModuleType
from typing import Any

import pytest

from support import fraud
from support.examples import example_module


@pytest.fixture(scope="module")
def conversions() -> ModuleType:
    return example_module("conversions-batch/generate.py")


class FakeS3:
    """Records ``put_object`` calls like a boto3 client would receive them."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.buckets: set[str] = set()

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> None:
        self.buckets.add(Bucket)
        self.objects[Key] = Body


# -- card authorizations ---------------------------------------------------------------------------------------


def test_authorization_is_a_pure_function_of_the_id() -> None:
    producer = fraud.producer_module()
    first = [producer.authorization(i, 500, 1000) for i in range(2000)]
    again = [producer.authorization(i, 500, 1000) for i in range(2000)]
    assert first == again
    for i, auth in enumerate(first):
        assert set(auth) == {"auth_id", "card_id", "merchant_id", "amount_cents", "ts"}
        assert auth["auth_id"] == i
        assert auth["ts"] == producer.EPOCH_MS + i * 1000
        assert 0 <= auth["card_id"] < 500
        assert 0 <= auth["merchant_id"] < producer.MERCHANTS
        assert 100 <= auth["amount_cents"] < 500_000
    cards = Counter(auth["card_id"] for auth in first)
    assert len(cards) > 450  # spread over (nearly) all cards, not a few


def test_authorization_event_step_and_cards() -> None:
    producer = fraud.producer_module()
    auth = producer.authorization(10, 7, 250)
    assert auth["ts"] == 1767225600000 + 10 * 250
    assert 0 <= auth["card_id"] < 7
    with pytest.raises(ValueError):
        producer.authorization(-1)


# -- fraud scores ----------------------------------------------------------------------------------------------


def test_expected_scores_hand_checked() -> None:
    # One card, 10 minutes of event time between authorizations: the window (ts - 30 min, ts] holds at most 3.
    # Inputs (auth_id: merchant, amount): 0: 1, 15934; 1: 0, 8763; 2: 1, 9178; 3: 0, 17376.
    producer = fraud.producer_module()
    inputs = [(a["merchant_id"], a["amount_cents"]) for a in (producer.authorization(i, 1, 600_000) for i in range(4))]
    assert inputs == [(1, 15934), (0, 8763), (1, 9178), (0, 17376)]

    v1 = fraud.expected_scores(range(4), cards=1, event_step_ms=600_000, model="v1")
    features = [
        (v1[i]["auth_count_30m"], v1[i]["amount_sum_30m"], v1[i]["distinct_merchants_30m"], v1[i]["max_amount_30m"])
        for i in range(4)
    ]
    assert features == [
        (1, 15934, 1, 15934),
        (2, 24697, 2, 15934),
        (3, 33875, 2, 15934),
        # id 3 at t0 + 30 min: id 0 (at exactly ts - 30 min) has left the window
        (3, 35317, 2, 17376),
    ]
    # v1: z = 20(n-1) + 10(d-1) + s//10000 + 3(m//10000); score = (10000 z // (z + 100)) / 10000
    #   id 0: z = 0 + 0 + 1 + 3 = 4       -> 40000 // 104 = 384
    #   id 1: z = 20 + 10 + 2 + 3 = 35    -> 350000 // 135 = 2592
    #   id 2: z = 40 + 10 + 3 + 3 = 56    -> 560000 // 156 = 3589
    assert [v1[i]["score"] for i in range(4)] == [0.0384, 0.2592, 0.3589, 0.3589]
    # v2: z = 10(n-1) + 30(d-1) + 2(s//10000) + 2(m//10000); K = 60
    #   id 0: z = 0 + 0 + 2 + 2 = 4       -> 40000 // 64 = 625
    #   id 1: z = 10 + 30 + 4 + 2 = 46    -> 460000 // 106 = 4339
    #   id 2: z = 20 + 30 + 6 + 2 = 58    -> 580000 // 118 = 4915
    v2 = fraud.expected_scores(range(4), cards=1, event_step_ms=600_000, model="v2")
    assert [v2[i]["score"] for i in range(4)] == [0.0625, 0.4339, 0.4915, 0.4915]
    assert v2[1]["model"] == "v2" and v2[1]["card_id"] == 0 and v2[1]["ts"] == 1767225600000 + 600_000


def test_expected_scores_order_independent_and_unknown_model() -> None:
    forward = fraud.expected_scores(range(300), cards=20, event_step_ms=60_000)
    backward = fraud.expected_scores(reversed(range(300)), cards=20, event_step_ms=60_000)
    assert forward == backward
    with pytest.raises(ValueError):
        fraud.expected_scores(range(3), model="v9")


def _as_output(expected: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**record, "produced_at": 0} for record in expected.values()]


def test_check_scores_finds_loss_duplicates_and_lost_state() -> None:
    expected = fraud.expected_scores(range(100, 400), cards=10, event_step_ms=60_000)
    good = _as_output(expected)
    report = fraud.check_scores(good, 100, 399, cards=10, event_step_ms=60_000)
    assert report.ok, report.summary()
    assert report.models == {"v1": 300}

    # an upgrade to v2 half way: each record is checked against the model it names
    v2 = fraud.expected_scores(range(100, 400), cards=10, event_step_ms=60_000, model="v2")
    upgraded = good[:150] + _as_output({k: v for k, v in v2.items() if k >= 250})
    assert fraud.check_scores(upgraded, 100, 399, cards=10, event_step_ms=60_000).ok

    bad = [r for r in good if r["auth_id"] != 120] + [good[5]]
    bad[7] = {**bad[7], "auth_count_30m": 1}  # as if the card's state had been lost
    report = fraud.check_scores(bad, 100, 399, cards=10, event_step_ms=60_000)
    assert not report.ok
    assert report.missing == [120]
    assert report.duplicated == [105]
    assert len(report.wrong) == 1 and "auth_count_30m" in report.wrong[0]
    assert "missing" in report.summary()


# -- conversions -----------------------------------------------------------------------------------------------


def _parse(objects: dict[str, bytes]) -> list[tuple[str, int, str, str, int]]:
    rows = []
    for key, body in objects.items():
        for line in body.decode().splitlines():
            conversion_id, partner, hour, amount = line.split(",")
            rows.append((key, int(conversion_id), partner, hour, int(amount)))
    return rows


def test_generate_layout_and_totals(conversions: ModuleType) -> None:
    s3 = FakeS3()
    conversions.generate(s3, "lake", "conv/raw", 10_007, 5, 7, 42, parts_per_hour=3)
    assert s3.buckets == {"lake"}
    assert sorted(s3.objects)[:3] == [
        "conv/raw/hour=2026-01-01T00/part-0.csv",
        "conv/raw/hour=2026-01-01T00/part-1.csv",
        "conv/raw/hour=2026-01-01T00/part-2.csv",
    ]
    assert len(s3.objects) == 15
    rows = _parse(s3.objects)
    assert sorted(r[1] for r in rows) == list(range(10_007))
    totals: dict[tuple[str, str], list[int]] = {}
    for key, _, partner, hour, amount in rows:
        assert key.startswith(f"conv/raw/hour={hour}/")
        assert partner.startswith("partner-") and 100 <= amount < 50_000
        total = totals.setdefault((hour, partner), [0, 0])
        total[0] += 1
        total[1] += amount
    expected = conversions.expected_totals(10_007, 5, 7, 42)
    assert {k: tuple(v) for k, v in totals.items()} == expected
    assert sum(count for count, _ in expected.values()) == 10_007
    assert {hour for hour, _ in expected} == {f"2026-01-01T0{h}" for h in range(5)}


def test_generate_is_deterministic_by_seed(conversions: ModuleType) -> None:
    first, again, other = FakeS3(), FakeS3(), FakeS3()
    conversions.generate(first, "b", "p/", 2000, 3, 4, 1)
    conversions.generate(again, "b", "p/", 2000, 3, 4, 1)
    conversions.generate(other, "b", "p/", 2000, 3, 4, 2)
    assert first.objects == again.objects
    assert first.objects != other.objects
    assert conversions.expected_totals(2000, 3, 4, 1) != conversions.expected_totals(2000, 3, 4, 2)


def test_hour_labels_cross_midnight(conversions: ModuleType) -> None:
    assert conversions.hour_label(0) == "2026-01-01T00"
    assert conversions.hour_label(25) == "2026-01-02T01"
    totals = conversions.expected_totals(100, 30, 2, 0)
    assert ("2026-01-02T05", "partner-001") in totals or ("2026-01-02T05", "partner-000") in totals
