"""The autoscaler's decisions: from a window of a job's per-vertex metrics, the parallelism the job needs, and why.

Pure: :func:`evaluate` takes the settings (``api.autoscaler``), the record kept in status (``AutoscalerStatus``),
the samples the controller collected (one per pass, from Flink's REST metrics) and what the controller knows of
the running job, and returns the new record, with the event to emit when something was decided.

How a decision is made (the reference operator's FLIP-271 model, with its weak spots closed):

* a vertex's **true processing rate** is what it took in per second divided by the share of the second its
  busiest subtask was busy: what it could take in at this parallelism if it were busy all the time;
* the **input arriving** at the job is what its sources emitted plus the growth of their Kafka lag; every vertex
  must handle its own input rate scaled by arriving ÷ emitted (its **target rate**); with a backlog, the lag
  ÷ ``catch-up.duration`` more, and the input lost while restarting (``restart.time``) caught up in that time;
* a vertex needs ``ceil(parallelism * (target / utilization.target + catch-up) / true rate)`` subtasks, within
  ``vertex.min/max-parallelism``, its key groups, ``scale-down.max-factor`` and ``scale-up.max-factor``; a Kafka
  source never more subtasks than it has partitions (the rest would idle);
* the job's parallelism is the largest need of the vertices that follow it (with slot sharing a job takes as
  many slots as its largest vertex: a smaller vertex parallelism saves no slot), then **aligned**: the smallest
  parallelism from there whose busiest subtask reads at most 5 % more Kafka partitions and key groups than the
  average (3 subtasks on 4 partitions run no faster than 2: 4 it is).

The rules no decision breaks:

* **nothing on missing or stale figures**: a sample missing a vertex's busy time or rate, or a newest sample
  older than ``stale_after_ms``, holds the job and says what is missing; a zero never stands in for "unknown";
* **at most one rescale per stabilization window, by construction**: only samples taken at least
  ``stabilization.interval`` after the job (re)started or was rescaled count, and an evaluation needs a whole
  ``metrics.window`` of them, so two rescales are always more than ``stabilization + window`` apart;
* **scale up at once, scale down only after the load stayed low for the whole ``scale-down.interval``**: every
  evaluation in that time must have found every vertex under ``utilization.min`` with no backlog; the job then
  goes to the largest need seen in that time, once;
* **an ineffective rescale is not repeated**: after a scale-up, the first full window compares the deciding
  vertex's true rate with the one before; when it rose by less than ``scaling.effectiveness.threshold`` of what
  the added subtasks should give, the decision is marked ineffective and no scale-up above it is made again
  (until ``autoscalerResetNonce`` changes).

Called by: the controller (``controller.autoscaling``), once per pass of a running application job with the
autoscaler enabled. Invariant: no I/O, no clock; the same inputs give the same decision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from flinkops.api.autoscaler import AutoscalerSettings
from flinkops.api.models import AutoscalerStatus, AutoscalerVertex, ScalingRecord

__all__ = [
    "RECENT_MIN_MS",
    "SATURATED",
    "SKEW_LIMIT",
    "JobView",
    "Reading",
    "Sample",
    "Verdict",
    "aligned",
    "evaluate",
    "rate_text",
    "skew",
]

#: The busiest subtask may hold at most this much more than the average of partitions or key groups.
SKEW_LIMIT = 1.05
#: A vertex at least this busy is saturated: scaled up whatever its measured utilization says.
SATURATED = 0.95
#: The shortest span the newest part of a window is sized on (see ``evaluate``).
RECENT_MIN_MS = 20_000
#: Below this busy share a vertex's true rate is not measurable (it would be a division by almost nothing).
_MIN_BUSY = 0.005


@dataclass(frozen=True)
class Reading:
    """One vertex in one sample; every figure None when Flink did not report it."""

    vertex_id: str
    name: str
    parallelism: int | None
    is_source: bool
    busy: float | None
    backpressure: float | None
    #: records/s in (for a source vertex: records/s its sources emitted)
    rate: float | None
    lag: float | None = None
    partitions: int | None = None
    max_parallelism: int | None = None
    #: counters since the tasks started (None: not reported): records in (a source: emitted), and the busiest
    #: and most back-pressured subtask's milliseconds busy and back-pressured
    records_total: float | None = None
    busy_ms_total: float | None = None
    backpressure_ms_total: float | None = None


@dataclass(frozen=True)
class Sample:
    at_ms: int
    job_id: str
    vertices: tuple[Reading, ...]


@dataclass(frozen=True)
class JobView:
    """The running job as the controller knows it."""

    job_id: str
    #: the parallelism it runs at (vertices at this parallelism follow the autoscaler)
    parallelism: int
    #: epoch ms since when every task has been RUNNING (None: not all are)
    running_since_ms: int | None
    #: epoch ms the controller began collecting samples for this job (a restarted controller starts again)
    collecting_since_ms: int
    #: the rescale can be done in place (adaptive scheduler); else it is a savepoint upgrade
    in_place: bool
    reset_nonce: int | None = None


@dataclass(frozen=True)
class Verdict:
    status: AutoscalerStatus
    #: (type, reason, message) of the event to emit, None when nothing new was decided
    event: tuple[str, str, str] | None = None

    @property
    def parallelism(self) -> int | None:
        return self.status.parallelism


@dataclass
class _Vertex:
    reading: Reading
    follows: bool
    busy: float
    backpressure: float
    rate: float
    lag: float | None
    lag_growth: float
    tpr: float | None = None
    #: records/s to handle: over the window (whether to scale), and the larger of that and the newest quarter's
    #: (how far)
    target: float = 0.0
    sizing: float = 0.0
    needed: int = 1
    util: float | None = None
    why: str = ""


# ------------------------------------------------------------------------------------------------ alignment


def skew(units: int, parallelism: int) -> float:
    """How much more than the average the busiest of ``parallelism`` subtasks holds of ``units`` (partitions or
    key groups) spread over them: 1.0 when they divide evenly. Subtasks beyond the units idle but slow no one."""
    if parallelism <= 0 or units <= 0 or parallelism >= units:
        return 1.0
    return math.ceil(units / parallelism) / (units / parallelism)


def aligned(needed: int, upper: int, partitions: Sequence[int], key_groups: Sequence[int]) -> int:
    """The smallest parallelism from ``needed`` to ``upper`` that spreads every source's partitions and every
    vertex's key groups within ``SKEW_LIMIT``; ``needed`` when none does."""
    for candidate in range(needed, max(needed, upper) + 1):
        if all(skew(n, candidate) <= SKEW_LIMIT for n in (*partitions, *key_groups)):
            return candidate
    return needed


# ------------------------------------------------------------------------------------------------- evaluate


def _missing(sample: Sample) -> list[str]:
    """What the sample lacks to be used: vertices without a busy time or a rate (empty: nothing)."""
    missing = []
    for r in sample.vertices:
        lacks = [what for what, value in (("busy time", r.busy), ("records/s", r.rate)) if value is None]
        if lacks:
            missing.append(f"{r.name}: no {' or '.join(lacks)}")
    return missing


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def rate_text(rate: float | None, unknown: str = "-") -> str:
    """A rate (records/s) as the explanations show it: whole numbers from 100, else three figures."""
    if rate is None:
        return unknown
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.3g}"


def _round(value: float | None, digits: int = 3) -> float | None:
    if value is None:
        return None
    return float(f"{value:.{digits}g}")


def _hold(base: AutoscalerStatus, now_ms: int, state: str, reason: str) -> Verdict:
    return Verdict(base.model_copy(update={"state": state, "reason": reason, "evaluated_at": now_ms}))


def evaluate(
    settings: AutoscalerSettings,
    previous: AutoscalerStatus | None,
    samples: Sequence[Sample],
    job: JobView | None,
    now_ms: int,
    *,
    stale_after_ms: int,
) -> Verdict:
    """The autoscaler's verdict for one pass (see the module docstring for the rules)."""
    base = previous or AutoscalerStatus()
    if job is not None and base.reset_nonce != job.reset_nonce:
        base = AutoscalerStatus(reset_nonce=job.reset_nonce)  # autoscalerResetNonce changed: start afresh
    if job is None:
        return _hold(base, now_ms, "holding", "the job is not running: nothing to measure")
    base = base.model_copy(update={"job_id": job.job_id, "current_parallelism": job.parallelism})
    if job.running_since_ms is None:
        return _hold(base, now_ms, "holding", "not every task of the job runs yet: its figures would mislead")

    # Samples count from a stabilization interval after the job (re)started or was rescaled, and from when this
    # controller began collecting (a restarted controller starts a fresh window).
    settled = max(job.running_since_ms, base.last_rescale_at or 0) + settings.stabilization_ms
    counted_from = max(settled, job.collecting_since_ms)
    window_from = max(counted_from, now_ms - settings.metrics_window_ms)
    ours = [s for s in samples if s.job_id == job.job_id]
    if not ours or now_ms - ours[-1].at_ms > stale_after_ms:
        age = f"the newest is {(now_ms - ours[-1].at_ms) / 1000:.0f} s old" if ours else "none was read"
        return _hold(base, now_ms, "holding", f"no fresh metrics from Flink ({age}): not scaling on old or no figures")
    missing = _missing(ours[-1])
    if missing:
        return _hold(
            base,
            now_ms,
            "holding",
            "Flink did not report every figure (" + "; ".join(missing) + "): not scaling on guesses",
        )
    if now_ms < counted_from + settings.metrics_window_ms:
        since_start = max(0, now_ms - counted_from)
        if now_ms < counted_from:
            why = f"stabilizing: samples count from {(counted_from - now_ms) / 1000:.0f} s from now"
        else:
            window_s = settings.metrics_window_ms / 1000
            why = f"collecting metrics: {since_start / 1000:.0f} s of the {window_s:.0f} s window"
        return _hold(base, now_ms, "collecting", why)
    window = [s for s in ours if s.at_ms >= window_from and not _missing(s) and _same_parallelism(s, job)]
    if len(window) < 2:
        return _hold(
            base,
            now_ms,
            "collecting",
            f"{len(window)} usable sample(s) in the window: waiting for more",
        )

    vertices = _vertices(window, job)
    if not any(v.follows for v in vertices):
        return _hold(base, now_ms, "holding", "no vertex runs at the job's parallelism: nothing to scale")
    arriving, emitted = _arrival(vertices)
    load_factor = arriving / emitted if emitted > 0 else 1.0
    # Whether to scale is decided on the whole window (a spike shorter than it does not tip the average); how
    # far is sized on the larger of the window's rate and its newest third's, so one step of the load is met
    # by one rescale, not by a first one sized on the average of before and after the step and a second later.
    # Not on less than RECENT_MIN_MS: Flink refreshes the figures its REST API serves every few seconds, so
    # over a shorter span a difference of counters is mostly that rounding.
    recent_ms = settings.metrics_window_ms // 3
    recent_samples = [s for s in window if s.at_ms >= window[-1].at_ms - recent_ms]
    if recent_ms < RECENT_MIN_MS or len(recent_samples) < 2:
        recent_samples = window
    recent = {v.reading.vertex_id: v for v in _vertices(recent_samples, job)}
    recent_arriving, recent_emitted = _arrival(list(recent.values()))
    recent_factor = recent_arriving / recent_emitted if recent_emitted > 0 else 1.0
    lag = sum(v.lag or 0.0 for v in vertices if v.reading.is_source)
    catch_up_s = settings.catch_up_ms / 1000
    backlog = lag > 0 and lag > arriving * settings.backlog_lag_threshold_ms / 1000
    for v in vertices:
        v.target = v.rate * load_factor
        newest = recent.get(v.reading.vertex_id)
        v.sizing = max(v.target, newest.rate * recent_factor if newest is not None else 0.0)
        _needs(v, settings, job.parallelism, emitted, lag, catch_up_s, backlog)

    following = [v for v in vertices if v.follows]
    # A vertex busy nearly all the time is saturated: its measured utilization cannot show more than 1, and what
    # it cannot take waits upstream (back pressure) or in Kafka, where a paused reader's lag figure goes stale.
    up = [
        v
        for v in following
        if v.util is not None
        and (v.util > settings.upper_utilization or v.busy >= SATURATED or (backlog and v.needed > job.parallelism))
    ]
    low = all(v.util is None or v.util < settings.lower_utilization for v in following) and not backlog
    upper = min(
        [settings.vertex_max_parallelism, *(v.reading.max_parallelism for v in following if v.reading.max_parallelism)]
    )
    partitions = [v.reading.partitions for v in following if v.reading.is_source and v.reading.partitions]
    key_groups = [v.reading.max_parallelism for v in following if not v.reading.is_source and v.reading.max_parallelism]
    needed = max(v.needed for v in following)
    desired = min(upper, aligned(needed, upper, partitions, key_groups))
    bottleneck = max(following, key=lambda v: (v.needed, v.util or 0.0))

    rows = [_row(v) for v in vertices]
    base = _effectiveness(base, settings, bottleneck, job)
    update: dict[str, object] = {
        "evaluated_at": now_ms,
        "measured_at": window[-1].at_ms,
        "window_from": window[0].at_ms,
        "window_samples": len(window),
        "vertices": rows,
        "recommended_parallelism": desired,
    }
    align_note = f", {desired} to spread the partitions and key groups evenly" if desired != needed else ""
    p = job.parallelism

    low_bound, high_bound = settings.vertex_min_parallelism, min(settings.vertex_max_parallelism, upper)
    if not low_bound <= p <= high_bound and desired != p:
        # The job runs outside the bounds it was given (they changed, or it started there): into them, at once.
        reason = f"parallelism {p} is outside job.autoscaler.vertex.min/max-parallelism ({low_bound}..{high_bound})"
        update.update(low_since=None, low_peak=None)
        return _decide(base, settings, job, now_ms, desired, reason, bottleneck, update)
    if up and desired > p:
        cause = f"{bottleneck.util or 0:.0%} busy at the arriving rate, above {settings.upper_utilization:.0%}"
        if bottleneck.busy >= SATURATED and (bottleneck.util or 0) <= settings.upper_utilization:
            cause = f"saturated ({bottleneck.busy:.0%} busy): what it cannot take waits upstream"
        if backlog:
            cause = f"a backlog of {rate_text(lag)} records to catch up; {cause}"
        reason = f"{bottleneck.reading.name} needs {bottleneck.needed}{align_note}: {cause}"
        if base.blocked_above is not None and desired > base.blocked_above:
            blocked = (
                f"would scale up to {desired}, but a scale-up to {base.blocked_above} did not raise the job's "
                "throughput: not repeated (change autoscalerResetNonce to allow it)"
            )
            update.update(state="blocked", reason=blocked, low_since=None, low_peak=None)
            return Verdict(base.model_copy(update=update))
        update.update(low_since=None, low_peak=None)
        return _decide(base, settings, job, now_ms, desired, reason, bottleneck, update)
    if low and desired < p:
        low_since = base.low_since if base.low_since is not None else now_ms
        peak = max(desired, base.low_peak or 0)
        update.update(low_since=low_since, low_peak=peak)
        waited = now_ms - low_since
        if waited < settings.scale_down_interval_ms:
            update.update(
                state="holding",
                reason=f"load low for {waited / 1000:.0f} s of the {settings.scale_down_interval_ms / 1000:.0f} s "
                f"scale-down interval; would go to {peak}",
            )
            return Verdict(base.model_copy(update=update))
        reason = (
            f"every vertex stayed under {settings.lower_utilization:.0%} busy for "
            f"{settings.scale_down_interval_ms / 1000:.0f} s; the most any evaluation in that time needed is {peak}"
        )
        update.update(low_since=None, low_peak=None)
        return _decide(base, settings, job, now_ms, peak, reason, bottleneck, update)
    update.update(low_since=None, low_peak=None, state="balanced")
    if up:
        update["reason"] = f"{bottleneck.reading.name} is busy, but {desired} is the most it can have here"
    elif low and p <= settings.vertex_min_parallelism:
        update["reason"] = f"load is low; the job runs at the lowest parallelism allowed ({p})"
    elif low and desired >= p:
        update["reason"] = f"load is low, but fewer than {p} subtasks would spread partitions or key groups unevenly"
    else:
        update["reason"] = (
            f"every vertex within {settings.lower_utilization:.0%}..{settings.upper_utilization:.0%} busy at the "
            f"arriving rate ({rate_text(arriving)} records/s)"
        )
    return Verdict(base.model_copy(update=update))


def _same_parallelism(sample: Sample, job: JobView) -> bool:
    """Taken after the job reached its parallelism: the highest vertex parallelism is the job's."""
    known = [r.parallelism for r in sample.vertices if r.parallelism is not None]
    return not known or max(known) == job.parallelism


def _vertices(window: Sequence[Sample], job: JobView) -> list[_Vertex]:
    newest = window[-1]
    found = []
    for reading in newest.vertices:
        series = [r for s in window for r in s.vertices if r.vertex_id == reading.vertex_id]
        lags = [
            (s.at_ms, r.lag)
            for s in window
            for r in s.vertices
            if r.vertex_id == reading.vertex_id and r.lag is not None
        ]
        growth = 0.0
        if len(lags) >= 2 and lags[-1][0] > lags[0][0]:
            growth = (lags[-1][1] - lags[0][1]) / ((lags[-1][0] - lags[0][0]) / 1000)
        busy = _mean([r.busy for r in series if r.busy is not None])
        backpressure = _mean([r.backpressure for r in series if r.backpressure is not None])
        rate = _mean([r.rate for r in series if r.rate is not None])
        counted_rate, counted_busy, counted_backpressure = _from_counters(window, reading.vertex_id)
        rate = rate if counted_rate is None else counted_rate
        busy = busy if counted_busy is None else counted_busy
        backpressure = backpressure if counted_backpressure is None else counted_backpressure
        found.append(
            _Vertex(
                reading=reading,
                follows=reading.parallelism in (None, job.parallelism),
                busy=busy,
                backpressure=backpressure,
                rate=rate,
                lag=reading.lag,
                lag_growth=growth,
            )
        )
    return found


def _from_counters(window: Sequence[Sample], vertex_id: str) -> tuple[float | None, float | None, float | None]:
    """(records/s, busy share, back-pressured share) of the vertex over the window from its counters (exact over
    any interval, where Flink's per-second figures average its last minute), each between the first and the last
    sample that have that counter when those span at least half the window; None for one that is missing or
    went back (the tasks restarted; a source task's accumulated busy time was seen to go back too)."""
    span = window[-1].at_ms - window[0].at_ms
    found: list[float | None] = []
    for field_name, per in (("records_total", 1.0), ("busy_ms_total", 1000.0), ("backpressure_ms_total", 1000.0)):
        points = [
            (s.at_ms, value)
            for s in window
            for r in s.vertices
            if r.vertex_id == vertex_id and (value := getattr(r, field_name)) is not None
        ]
        if len(points) < 2 or points[-1][0] - points[0][0] < max(span / 2, 1):
            found.append(None)
            continue
        (t0, first), (t1, last) = points[0], points[-1]
        if last < first:
            found.append(None)
            continue
        found.append((last - first) / per / ((t1 - t0) / 1000))
    rate, busy, backpressure = found
    return rate, None if busy is None else min(1.0, busy), None if backpressure is None else min(1.0, backpressure)


def _arrival(vertices: Sequence[_Vertex]) -> tuple[float, float]:
    """(records/s arriving at the job's sources, records/s they emitted): the lag's growth is input not read."""
    emitted = sum(v.rate for v in vertices if v.reading.is_source)
    growth = sum(v.lag_growth for v in vertices if v.reading.is_source)
    return max(0.0, emitted + growth), emitted


def _needs(
    v: _Vertex,
    settings: AutoscalerSettings,
    p_job: int,
    emitted: float,
    lag: float,
    catch_up_s: float,
    backlog: bool,
) -> None:
    p = v.reading.parallelism or p_job
    if not v.follows:
        v.needed = p
        v.why = f"keeps its own parallelism {p}"
        return
    share = v.rate / emitted if emitted > 0 else 1.0
    catch_up = lag * share / catch_up_s if catch_up_s > 0 and backlog else 0.0
    restart = v.sizing * settings.restart_ms / settings.catch_up_ms if settings.catch_up_ms > 0 else 0.0
    required = v.sizing / settings.target_utilization + catch_up + restart
    lo = max(settings.vertex_min_parallelism, math.ceil(p * (1 - settings.scale_down_max_factor)))
    hi = min(settings.vertex_max_parallelism, math.floor(p * (1 + settings.scale_up_max_factor)))
    if v.reading.max_parallelism:
        hi = min(hi, v.reading.max_parallelism)
    if v.rate <= 0:
        v.tpr, v.util = None, 0.0
        v.needed = max(1, lo)
        v.why = "took in no records in the window"
        return
    v.tpr = v.rate / max(v.busy, _MIN_BUSY)
    v.util = v.target / v.tpr
    raw = math.ceil(p * required / v.tpr - 1e-9)
    v.needed = min(max(raw, lo, 1), max(hi, 1))
    reasons = [f"{rate_text(v.sizing)}/s to handle"]
    if catch_up:
        reasons.append(f"+{rate_text(catch_up)}/s to catch up a backlog of {rate_text(lag)}")
    reasons.append(f"{rate_text(v.tpr)}/s possible at {p} ({v.busy:.0%} busy)")
    if raw < lo:
        reasons.append(f"at least {lo} (scale-down max factor, vertex minimum)")
    elif raw > hi:
        reasons.append(f"at most {hi} (scale-up max factor, vertex maximum, key groups)")
    if v.reading.is_source and v.reading.partitions and v.needed > v.reading.partitions:
        v.needed = max(lo, v.reading.partitions)
        reasons.append(f"capped at its {v.reading.partitions} Kafka partitions")
    v.why = "; ".join(reasons) + f" → {v.needed}"


def _row(v: _Vertex) -> AutoscalerVertex:
    r = v.reading
    return AutoscalerVertex(
        vertex_id=r.vertex_id,
        name=r.name,
        parallelism=r.parallelism,
        busy=_round(v.busy),
        backpressure=_round(v.backpressure),
        input_rate=_round(v.rate),
        lag=_round(v.lag),
        partitions=r.partitions,
        max_parallelism=r.max_parallelism,
        true_processing_rate=_round(v.tpr),
        target_rate=_round(v.sizing) if v.follows else None,
        needed_parallelism=v.needed,
        why=v.why,
    )


def _effectiveness(
    base: AutoscalerStatus, settings: AutoscalerSettings, bottleneck: _Vertex, job: JobView
) -> AutoscalerStatus:
    """Judge the newest scale-up once a whole window after it was measured: did the deciding vertex's true rate
    rise by at least ``effectiveness_threshold`` of what the added subtasks should give?"""
    if not base.history:
        return base
    last = base.history[-1]
    if last.effective is not None or last.how == "recommendation" or last.to_parallelism <= last.from_parallelism:
        return base
    if last.to_parallelism != job.parallelism or last.rate_before is None or last.rate_before <= 0:
        return base
    same = bottleneck if bottleneck.reading.vertex_id == last.bottleneck else None
    if same is None or same.tpr is None:
        return base
    expected_gain = last.to_parallelism / last.from_parallelism - 1
    gain = same.tpr / last.rate_before - 1
    effective = not settings.effectiveness_detection or gain >= settings.effectiveness_threshold * expected_gain
    judged = last.model_copy(update={"rate_after": _round(same.tpr), "effective": effective})
    update: dict[str, object] = {"history": [*base.history[:-1], judged]}
    if not effective:
        update["blocked_above"] = last.to_parallelism
    return base.model_copy(update=update)


def _decide(
    base: AutoscalerStatus,
    settings: AutoscalerSettings,
    job: JobView,
    now_ms: int,
    to: int,
    reason: str,
    bottleneck: _Vertex,
    update: dict[str, object],
) -> Verdict:
    p = job.parallelism
    verb = "up" if to > p else "down"
    update["recommended_parallelism"] = to
    if not settings.scaling_enabled:
        changed = base.recommended_parallelism != to or base.state != "recommending"
        update.update(state="recommending", reason=f"recommends {to} (scaling.enabled is false): {reason}")
        event = ("Normal", "ScalingReport", f"Recommends parallelism {p} → {to}: {reason}") if changed else None
        return Verdict(base.model_copy(update=update), event)
    how = "in-place" if job.in_place else "savepoint-upgrade"
    record = ScalingRecord(
        at=now_ms,
        job_id=job.job_id,
        from_parallelism=p,
        to_parallelism=to,
        how=how,
        reason=reason,
        bottleneck=bottleneck.reading.vertex_id,
        rate_before=_round(bottleneck.tpr),
    )
    history = [*base.history, record][-max(settings.history_max_count, 1) :]
    update.update(
        state="scaling", reason=f"scaling {verb} {p} → {to} ({how}): {reason}", parallelism=to,
        last_rescale_at=now_ms, history=history,
    )  # fmt: skip
    message = f"Scaling {verb} from parallelism {p} to {to} ({how}): {reason}"
    return Verdict(base.model_copy(update=update), ("Normal", "ScalingReport", message))
