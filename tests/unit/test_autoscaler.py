"""The autoscaler's decisions on synthetic load (``core.autoscaler``), pure and on a virtual clock.

A small model job stands in for Flink: a Kafka source with ``partitions`` partitions chained into nothing, then a
keyed vertex that can take ``capacity`` records/s per subtask. Each second of the trace the load arrives, the
job processes what its parallelism allows (the rest waits in Kafka: lag), and every ``sample_every`` seconds a
sample is taken as the controller would (busy share, records/s, lag). A decision takes effect at once, as an
in-place rescale does, and the job counts as restarted then.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flinkops.api.autoscaler import AutoscalerSettings, autoscaler_problems, autoscaler_settings
from flinkops.api.models import AutoscalerStatus, ScalingRecord
from flinkops.core.autoscaler import JobView, Reading, Sample, aligned, evaluate, skew

S = 1000


@dataclass
class Decision:
    at_s: int
    from_p: int
    to_p: int
    reason: str


@dataclass
class ModelJob:
    capacity: float = 100.0  # records/s one keyed subtask processes when busy all the time
    parallelism: int = 1
    partitions: int = 4
    key_groups: int = 128
    lag: float = 0.0
    started_s: int = 0
    samples: list[Sample] = field(default_factory=list)
    status: AutoscalerStatus | None = None
    decisions: list[Decision] = field(default_factory=list)
    #: records/s each added subtask really adds (1.0: linear; 0.0: more subtasks do not help)
    scalability: float = 1.0
    #: report Flink's counters too (records, busy ms since the tasks started), as Flink 2 does
    counters: bool = True
    records: float = 0.0
    busy_ms: float = 0.0

    def can_process(self) -> float:
        first = self.decisions[0].from_p if self.decisions else self.parallelism
        return self.capacity * (first + (self.parallelism - first) * self.scalability)

    def run(
        self, config: AutoscalerSettings, load: Callable[[int], float], seconds: int, sample_every: int = 5
    ) -> list[Decision]:
        for t in range(seconds):
            offered = load(t) + self.lag
            done = min(offered, self.can_process())
            self.lag = offered - done
            busy = min(1.0, done / self.can_process())
            self.records += done
            self.busy_ms += busy * 1000
            if t % sample_every == 0:
                self._sample(t, done, busy)
                view = JobView(
                    job_id="j1",
                    parallelism=self.parallelism,
                    running_since_ms=self.started_s * S,
                    collecting_since_ms=0,
                    in_place=True,
                )
                verdict = evaluate(config, self.status, self.samples, view, t * S, stale_after_ms=30 * S)
                self.status = verdict.status
                if verdict.parallelism is not None and verdict.parallelism != self.parallelism:
                    self.decisions.append(Decision(t, self.parallelism, verdict.parallelism, verdict.status.reason))
                    self.parallelism = verdict.parallelism
                    self.started_s = t
                    self.records = self.busy_ms = 0.0  # the tasks restart: their counters too
        return self.decisions

    def _sample(self, t: int, done: float, busy: float) -> None:
        p = self.parallelism
        totals = (self.records, self.busy_ms / 5, 0.0) if self.counters else (None, None, None)
        source = Reading(
            "src", "Source: card-auth", p, True, busy * 0.2, 0.0, done, self.lag, self.partitions, 128, *totals
        )
        totals = (self.records, self.busy_ms, 0.0) if self.counters else (None, None, None)
        score = Reading("score", "score", p, False, busy, 0.0, done, None, None, self.key_groups, *totals)
        self.samples.append(Sample(t * S, "j1", (source, score)))


FAST = AutoscalerSettings(
    enabled=True,
    metrics_window_ms=60 * S,
    stabilization_ms=30 * S,
    scale_down_interval_ms=180 * S,
    catch_up_ms=120 * S,
    restart_ms=10 * S,
    backlog_lag_threshold_ms=30 * S,
)


@pytest.mark.parametrize("counters", [True, False], ids=["counters", "per-second figures only"])
def test_a_step_up_scales_up_once_in_place_aligned_to_the_partitions(counters: bool) -> None:
    job = ModelJob(parallelism=1, counters=counters)
    decisions = job.run(FAST, lambda t: 50.0 if t < 120 else 200.0, 600)
    assert [(d.from_p, d.to_p) for d in decisions] == [(1, 4)], decisions
    assert 120 < decisions[0].at_s <= 120 + 60 + 10
    assert job.lag < 1.0  # the backlog drained
    assert job.status is not None and job.status.history[-1].how == "in-place"
    assert job.status.history[-1].effective is True


@pytest.mark.parametrize("counters", [True, False], ids=["counters", "per-second figures only"])
def test_a_spike_shorter_than_the_window_changes_nothing(counters: bool) -> None:
    job = ModelJob(parallelism=2, counters=counters)
    decisions = job.run(FAST, lambda t: 400.0 if 200 <= t < 215 else 100.0, 600)
    assert decisions == []
    assert job.status is not None and job.status.state in ("balanced", "holding")


def test_a_slow_sine_never_rescales_twice_in_one_stabilization_window() -> None:
    job = ModelJob(parallelism=2)
    job.run(FAST, lambda t: 120 + 80 * math.sin(2 * math.pi * t / 900), 3600)
    times = [d.at_s for d in job.decisions]
    assert all(b - a >= (FAST.stabilization_ms + FAST.metrics_window_ms) / S for a, b in itertools.pairwise(times))
    assert len(job.decisions) <= 3600 // 180  # no oscillation: far fewer decisions than evaluations


def test_a_sustained_drop_scales_down_once_after_the_whole_interval() -> None:
    job = ModelJob(parallelism=4)
    decisions = job.run(FAST, lambda t: 300.0 if t < 300 else 120.0, 1500)
    assert [(d.from_p, d.to_p) for d in decisions] == [(4, 2)], decisions
    # low from t=300: counted from when a full window of low load was seen, plus the scale-down interval
    assert decisions[0].at_s >= 300 + FAST.scale_down_interval_ms / S
    assert "stayed under" in decisions[0].reason


def test_a_dip_shorter_than_the_scale_down_interval_keeps_the_parallelism() -> None:
    job = ModelJob(parallelism=4)
    decisions = job.run(FAST, lambda t: 40.0 if 300 <= t < 420 else 300.0, 900)
    assert decisions == []


def test_a_source_with_4_partitions_gets_a_parallelism_that_divides_them() -> None:
    # 170 records/s at 100/s per subtask: 85 % busy at 2, above 80 %; 0.7 target: 3 subtasks, but 3 would
    # leave one reading 2 of the 4 partitions (no faster than 2): 4
    job = ModelJob(parallelism=2, partitions=4)
    job.run(AutoscalerSettings(**{**FAST.__dict__, "max_utilization": 0.8}), lambda t: 170.0, 400)
    assert job.decisions and job.decisions[0].to_p == 4
    assert "needs 3, 4 to spread the partitions and key groups evenly" in job.decisions[0].reason
    # ... and never more source subtasks than partitions when the source itself is the bottleneck
    assert skew(4, 3) == 1.5 and skew(4, 4) == 1.0 and skew(4, 8) == 1.0
    assert aligned(3, 200, [4], [128]) == 4
    assert aligned(5, 200, [12], [128]) == 6
    assert aligned(50, 200, [], [128]) == 64
    assert aligned(3, 200, [], [128]) == 3  # 43/43/42 key groups: even enough


def test_an_ineffective_scale_up_is_recorded_and_not_repeated() -> None:
    job = ModelJob(parallelism=1, scalability=0.0)  # more subtasks do not raise the throughput
    job.run(FAST, lambda t: 200.0, 1200)
    assert [(d.from_p, d.to_p) for d in job.decisions] == [(1, 4)]
    assert job.status is not None
    assert job.status.history[-1].effective is False
    assert job.status.blocked_above == 4
    assert job.status.state == "blocked" and "not repeated" in job.status.reason


def test_recommend_only_never_sets_a_parallelism() -> None:
    job = ModelJob(parallelism=1)
    config = AutoscalerSettings(**{**FAST.__dict__, "scaling_enabled": False})
    job.run(config, lambda t: 200.0, 400)
    assert job.decisions == []
    assert job.status is not None and job.status.state == "recommending"
    assert (job.status.recommended_parallelism or 0) >= 4 and job.status.parallelism is None
    assert job.parallelism == 1


def _view(**kw: object) -> JobView:
    base: dict[str, object] = dict(job_id="j1", parallelism=2, running_since_ms=0, collecting_since_ms=0, in_place=True)
    return JobView(**{**base, **kw})  # type: ignore[arg-type]


def test_missing_or_stale_figures_hold_and_say_why() -> None:
    missing = Reading("score", "score", 2, False, None, None, None)
    samples = [Sample(t * S, "j1", (missing,)) for t in range(0, 200, 5)]
    verdict = evaluate(FAST, None, samples, _view(), 200 * S, stale_after_ms=30 * S)
    assert verdict.parallelism is None and verdict.status.state == "holding"
    assert "score: no busy time or records/s" in verdict.status.reason

    zero = Reading("score", "score", 2, False, 0.0, 0.0, 0.0)
    old = [Sample(t * S, "j1", (zero,)) for t in range(0, 100, 5)]
    verdict = evaluate(FAST, None, old, _view(), 400 * S, stale_after_ms=30 * S)
    assert verdict.status.state == "holding" and "no fresh metrics" in verdict.status.reason
    assert verdict.parallelism is None

    verdict = evaluate(FAST, None, old, _view(running_since_ms=None), 99 * S, stale_after_ms=30 * S)
    assert verdict.status.state == "holding" and "not every task" in verdict.status.reason
    verdict = evaluate(FAST, None, old, None, 99 * S, stale_after_ms=30 * S)
    assert verdict.status.state == "holding" and "not running" in verdict.status.reason


def test_a_reset_nonce_starts_afresh() -> None:
    record = ScalingRecord(at=1, from_parallelism=1, to_parallelism=4, how="in-place", reason="x", effective=False)
    previous = AutoscalerStatus(parallelism=4, blocked_above=4, history=[record], reset_nonce=None)
    verdict = evaluate(FAST, previous, [], _view(reset_nonce=7), 10 * S, stale_after_ms=30 * S)
    assert verdict.status.parallelism is None and verdict.status.blocked_above is None
    assert verdict.status.history == [] and verdict.status.reset_nonce == 7


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(30, 400), st.floats(0.0, 900.0)), min_size=1, max_size=12),
    capacity=st.floats(20.0, 300.0),
    start=st.integers(1, 8),
    stabilization=st.integers(0, 120),
    window=st.integers(10, 120),
)
def test_never_two_rescales_inside_one_stabilization_window(
    steps: list[tuple[int, float]], capacity: float, start: int, stabilization: int, window: int
) -> None:
    """Over random load traces (steps of random length and rate), rescales are always further apart than the
    stabilization interval plus the metrics window."""
    edges: list[tuple[int, float]] = []
    t = 0
    for length, rate in steps:
        edges.append((t, rate))
        t += length

    def load(now: int) -> float:
        return next(rate for begin, rate in reversed(edges) if begin <= now)

    config = AutoscalerSettings(
        **{**FAST.__dict__, "stabilization_ms": stabilization * S, "metrics_window_ms": window * S}
    )
    job = ModelJob(capacity=capacity, parallelism=start)
    job.run(config, load, t, sample_every=3)
    times = [d.at_s for d in job.decisions]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap * S > config.stabilization_ms for gap in gaps) or not gaps, (times, stabilization)
    assert all(gap * S >= config.stabilization_ms + config.metrics_window_ms for gap in gaps), (times, window)
    for d in job.decisions:
        assert config.vertex_min_parallelism <= d.to_p <= config.vertex_max_parallelism


# ---------------------------------------------------------------------------------------------- settings


def test_reference_keys_and_defaults() -> None:
    defaults = autoscaler_settings({})
    assert (defaults.enabled, defaults.metrics_window_ms, defaults.stabilization_ms) == (False, 900_000, 300_000)
    assert (defaults.target_utilization, defaults.upper_utilization, defaults.lower_utilization) == (0.7, 1.0, 0.4)
    assert defaults.scale_down_interval_ms == 3_600_000 and defaults.scale_down_max_factor == 0.6
    assert (defaults.vertex_min_parallelism, defaults.vertex_max_parallelism) == (1, 200)
    assert (defaults.catch_up_ms, defaults.restart_ms) == (1_800_000, 300_000)
    legacy = autoscaler_settings(
        {
            "kubernetes.operator.job.autoscaler.enabled": "true",
            "job.autoscaler.target.utilization": "0.5",
            "job.autoscaler.scale-up.grace-period": "10 min",
        }
    )
    assert legacy.enabled and legacy.target_utilization == 0.5 and legacy.scale_down_interval_ms == 600_000
    # the reference's own autoscaling example: the older boundary key, durations as "1m"
    boundary = autoscaler_settings(
        {"job.autoscaler.target.utilization.boundary": "0.1", "job.autoscaler.metrics.window": "3m"}
    )
    assert (boundary.upper_utilization, boundary.lower_utilization) == (0.8, 0.6)
    assert boundary.metrics_window_ms == 180_000


def test_bad_values_name_the_key() -> None:
    problems = {
        key: message
        for key, message, _ in autoscaler_problems(
            {
                "job.autoscaler.utilization.target": "1.5",
                "job.autoscaler.metrics.window": "-5 min",
                "job.autoscaler.vertex.min-parallelism": "0",
                "job.autoscaler.enabled": "yes",
            }
        )
    }
    assert "above 0 and at most 1" in problems["job.autoscaler.utilization.target"]
    assert "negative" in problems["job.autoscaler.metrics.window"]
    assert "at least 1" in problems["job.autoscaler.vertex.min-parallelism"]
    assert "true or false" in problems["job.autoscaler.enabled"]
    crossed = autoscaler_problems(
        {"job.autoscaler.vertex.min-parallelism": "8", "job.autoscaler.vertex.max-parallelism": "4"}
    )
    assert crossed[0][0] == "job.autoscaler.vertex.min-parallelism" and "above vertex.max-parallelism" in crossed[0][1]
    assert autoscaler_problems({"job.autoscaler.utilization.target": "0"})
    assert autoscaler_problems({"job.autoscaler.utilization.target": "0.9", "job.autoscaler.utilization.max": "0.8"})
    assert autoscaler_problems({"job.autoscaler.utilization.target": "1"}) == []


def test_rates_come_from_the_counters_even_when_a_busy_time_counter_goes_back() -> None:
    """Flink's per-second figures average its last minute (here they say 10/s just after a start); the counters
    say 300/s. A source task's accumulated busy time was seen to go back: that figure alone falls back to the
    per-second one, the rate still comes from the counters."""
    samples = []
    for i, t in enumerate(range(0, 61, 5)):
        busy_back = 1000.0 - i * 10  # goes back
        source = Reading("src", "Source", 1, True, 0.01, 0.0, 10.0, 0.0, 4, 128, 300.0 * t, busy_back, 0.0)
        score = Reading("score", "score", 1, False, 0.2, 0.0, 10.0, None, None, 128, 300.0 * t, 900.0 * t, 0.0)
        samples.append(Sample(t * S, "j1", (source, score)))
    config = AutoscalerSettings(enabled=True, metrics_window_ms=40 * S, stabilization_ms=0)
    verdict = evaluate(config, None, samples, _view(parallelism=1), 60 * S, stale_after_ms=30 * S)
    rows = {v.vertex_id: v for v in verdict.status.vertices}
    assert rows["src"].input_rate == 300 and rows["score"].input_rate == 300
    assert rows["src"].busy == 0.01  # the per-second figure: its counter went back
    assert rows["score"].busy == 0.9 and rows["score"].true_processing_rate == pytest.approx(333, abs=1)


def test_a_job_below_its_minimum_parallelism_is_brought_to_it() -> None:
    job = ModelJob(parallelism=1)
    config = AutoscalerSettings(**{**FAST.__dict__, "vertex_min_parallelism": 2})
    job.run(config, lambda t: 10.0, 200)
    assert [(d.from_p, d.to_p) for d in job.decisions] == [(1, 2)]
    assert "outside job.autoscaler.vertex.min/max-parallelism (2..128)" in job.decisions[0].reason  # key groups


def test_a_saturated_vertex_is_scaled_up_even_when_its_lag_figure_hides_the_demand() -> None:
    """Busy 99 % with no lag growth to show (a paused Kafka reader's lag figure goes stale): the utilization it
    can show tops out near 1, under the default upper bound of 1.0; saturation counts as above it."""
    job = ModelJob(parallelism=1, partitions=4)
    job.run(FAST, lambda t: 99.0, 200)
    assert [(d.from_p, d.to_p) for d in job.decisions] == [(1, 2)]
    assert "saturated (99% busy)" in job.decisions[0].reason
