"""The autoscaler's settings: the reference operator's ``job.autoscaler.*`` keys, their defaults, their checks.

A FlinkDeployment turns the autoscaler on with ``job.autoscaler.enabled: "true"`` in ``flinkConfiguration``; the
other keys tune it, under the same names and with the same defaults as the reference operator's autoscaler (the
older ``kubernetes.operator.job.autoscaler.*`` prefix and the older names ``target.utilization`` and
``scale-up.grace-period`` are read too, and ``target.utilization.boundary`` where ``utilization.max``/``.min``
are not set). :func:`autoscaler_settings` reads them into :class:`AutoscalerSettings`
(what ``core.autoscaler`` decides with); :func:`autoscaler_problems` says, per key, what is wrong with a value,
so that ``flinkops apply`` refuses it (exit 2, the key's path) before anything runs.

Where flinkops differs from the reference on purpose: ``scaling.effectiveness.detection.enabled`` is on by
default (a rescale that did not raise the job's throughput is never repeated). Keys of the reference that
flinkops does not act on (memory tuning, quotas, excluded periods) are accepted and ignored, as Flink ignores
keys it does not know; the README lists the ones honoured.

Callers: ``api.validation`` (the checks), ``core.autoscaler`` and the controller (the settings), the CLI.
Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

from flinkops.api.durations import parse_duration_ms

__all__ = [
    "AUTOSCALER_PREFIX",
    "AutoscalerSettings",
    "autoscaler_enabled",
    "autoscaler_key",
    "autoscaler_problems",
    "autoscaler_settings",
]

AUTOSCALER_PREFIX = "job.autoscaler."
_LEGACY_PREFIX = "kubernetes.operator.job.autoscaler."
#: Older names of keys, as the reference still reads them.
_OLD_NAMES = {"utilization.target": "target.utilization", "scale-down.interval": "scale-up.grace-period"}
_MIN, _S = 60_000, 1_000


@dataclass(frozen=True)
class AutoscalerSettings:
    """The autoscaler's settings for one job (durations in milliseconds)."""

    enabled: bool = False
    #: False: recommend only (the decision is shown, the job is not rescaled)
    scaling_enabled: bool = True
    metrics_window_ms: int = 15 * _MIN
    stabilization_ms: int = 5 * _MIN
    target_utilization: float = 0.7
    #: None: ``target_utilization`` + 0.3 (at most 1); ``min_utilization`` None: target - 0.3 (at least 0)
    max_utilization: float | None = None
    min_utilization: float | None = None
    scale_down_interval_ms: int = 60 * _MIN
    scale_down_max_factor: float = 0.6
    scale_up_max_factor: float = 100_000.0
    vertex_min_parallelism: int = 1
    vertex_max_parallelism: int = 200
    catch_up_ms: int = 30 * _MIN
    restart_ms: int = 5 * _MIN
    backlog_lag_threshold_ms: int = 5 * _MIN
    history_max_count: int = 3
    effectiveness_detection: bool = True
    effectiveness_threshold: float = 0.1
    #: the older ``target.utilization.boundary``: max/min = target +/- it, where they are not set themselves
    utilization_boundary: float = 0.3

    @property
    def upper_utilization(self) -> float:
        if self.max_utilization is not None:
            return self.max_utilization
        return round(min(1.0, self.target_utilization + self.utilization_boundary), 6)

    @property
    def lower_utilization(self) -> float:
        if self.min_utilization is not None:
            return self.min_utilization
        return round(max(0.0, self.target_utilization - self.utilization_boundary), 6)


# -------------------------------------------------------------------------------------------------- parsing


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise ValueError(f"must be true or false, got '{text[:40]}'")
    return value == "true"


def _duration(text: str) -> int:
    if text.strip().startswith("-"):
        raise ValueError(f"must not be negative, got '{text[:40]}'")
    return parse_duration_ms(text)


def _positive_duration(text: str) -> int:
    ms = _duration(text)
    if ms <= 0:
        raise ValueError(f"must be longer than zero, got '{text[:40]}'")
    return ms


def _number(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"must be a number, got '{text[:40]}'") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"must be a finite number, got '{text[:40]}'")
    return value


def _number_in(
    low: float, high: float | None = None, *, low_open: bool = False, high_open: bool = False, what: str = ""
) -> Callable[[str], float]:
    """A parser of a number within ``low``..``high`` (either end open when asked; no upper end when None)."""
    bounds = [f"above {low:g}" if low_open else f"at least {low:g}"]
    if high is not None:
        bounds.append(f"below {high:g}" if high_open else f"at most {high:g}")
    meaning = f" ({what})" if what else ""

    def parse(text: str) -> float:
        value = _number(text)
        too_low = value <= low if low_open else value < low
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            raise ValueError(f"must be {' and '.join(bounds)}{meaning}, got {value:g}")
        return value

    return parse


_SHARE_BUSY = "a share of the time busy"
_utilization = _number_in(0.0, 1.0, low_open=True, what=_SHARE_BUSY)
_lower_utilization = _number_in(0.0, 1.0, high_open=True, what=_SHARE_BUSY)
_factor = _number_in(0.0, 1.0, low_open=True, what="the share of parallelism one step may remove")
_positive_number = _number_in(0.0, low_open=True)
_share = _number_in(0.0, 1.0)


def _count(text: str) -> int:
    value = text.strip()
    if value.startswith("-"):
        raise ValueError(f"must not be negative, got '{value[:40]}'")
    if not value.isdigit() or int(value) < 1 or int(value) > 2**31 - 1:
        raise ValueError(f"must be a whole number of at least 1, got '{value[:40]}'")
    return int(value)


#: key (after ``job.autoscaler.``) → (settings field, parser, the hint shown with a problem)
_KEYS: dict[str, tuple[str, Callable[[str], object], str]] = {
    "enabled": ("enabled", _bool, 'write "true" or "false"'),
    "scaling.enabled": ("scaling_enabled", _bool, 'write "true" (rescale) or "false" (recommend only)'),
    "metrics.window": ("metrics_window_ms", _positive_duration, "write a duration such as '15 min'"),
    "stabilization.interval": ("stabilization_ms", _duration, "write a duration such as '5 min'"),
    "utilization.target": ("target_utilization", _utilization, "e.g. 0.7: aim for 70 % busy"),
    "utilization.max": ("max_utilization", _utilization, "e.g. 1.0; it must be at least utilization.target"),
    "utilization.min": ("min_utilization", _lower_utilization, "e.g. 0.4; at most utilization.target"),
    "scale-down.interval": ("scale_down_interval_ms", _duration, "write a duration such as '1 h'"),
    "scale-down.max-factor": ("scale_down_max_factor", _factor, "e.g. 0.6"),
    "scale-up.max-factor": ("scale_up_max_factor", _positive_number, "e.g. 100000 (no limit) or 1 (at most double)"),
    "vertex.min-parallelism": ("vertex_min_parallelism", _count, "e.g. 1; at most vertex.max-parallelism"),
    "vertex.max-parallelism": ("vertex_max_parallelism", _count, "e.g. 200; at least vertex.min-parallelism"),
    "catch-up.duration": ("catch_up_ms", _duration, "write a duration such as '30 min' (0: no catch-up capacity)"),
    "restart.time": ("restart_ms", _duration, "write a duration such as '5 min'"),
    "backlog-processing.lag-threshold": ("backlog_lag_threshold_ms", _duration, "write a duration such as '5 min'"),
    "history.max.count": ("history_max_count", _count, "e.g. 3"),
    "scaling.effectiveness.detection.enabled": ("effectiveness_detection", _bool, 'write "true" or "false"'),
    "scaling.effectiveness.threshold": ("effectiveness_threshold", _share, "e.g. 0.1"),
    "target.utilization.boundary": ("utilization_boundary", _share, "e.g. 0.3 (or set utilization.max and .min)"),
}


def _lookup(config: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """The key under which ``name`` is set (the current prefix first, then the legacy one; the current name
    first, then an older one) and its value; None when unset."""
    names = (name, _OLD_NAMES[name]) if name in _OLD_NAMES else (name,)
    for prefix in (AUTOSCALER_PREFIX, _LEGACY_PREFIX):
        for each in names:
            key = prefix + each
            if key in config and str(config[key]).strip():
                return key, str(config[key])
    return None


def autoscaler_key(name: str) -> str:
    """The full key of setting ``name`` (``metrics.window`` → ``job.autoscaler.metrics.window``)."""
    return AUTOSCALER_PREFIX + name


def autoscaler_enabled(config: Mapping[str, str]) -> bool:
    found = _lookup(config, "enabled")
    return found is not None and found[1].strip().lower() == "true"


def _read(config: Mapping[str, str]) -> tuple[dict[str, object], list[tuple[str, str, str]]]:
    values: dict[str, object] = {}
    problems: list[tuple[str, str, str]] = []
    for name, (field, parse, hint) in _KEYS.items():
        found = _lookup(config, name)
        if found is None:
            continue
        key, text = found
        try:
            values[field] = parse(text)
        except ValueError as exc:
            problems.append((key, str(exc), hint))
    return values, problems


def autoscaler_settings(config: Mapping[str, str]) -> AutoscalerSettings:
    """The settings ``config`` gives (a value that does not parse keeps its default: validation refuses it)."""
    values, _ = _read(config)
    known = {f.name for f in fields(AutoscalerSettings)}
    return AutoscalerSettings(**{k: v for k, v in values.items() if k in known})  # type: ignore[arg-type]


def autoscaler_problems(config: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(key, message, hint) for every autoscaler value that is wrong alone or against another (a pair is
    checked when neither of its values is wrong alone)."""
    _, problems = _read(config)
    wrong = {key for key, _, _ in problems}
    settings = autoscaler_settings(config)

    def key_of(name: str) -> str:
        found = _lookup(config, name)
        return found[0] if found is not None else autoscaler_key(name)

    # (the lower one's name and value, the higher one's name and value, the key the problem is put on, hint)
    pairs = (
        ("vertex.min-parallelism", settings.vertex_min_parallelism, "vertex.max-parallelism",
         settings.vertex_max_parallelism, "vertex.min-parallelism", "lower the minimum or raise the maximum"),
        ("utilization.target", settings.target_utilization, "utilization.max", settings.upper_utilization,
         "utilization.max", "the upper bound must be at least the target"),
        ("utilization.min", settings.lower_utilization, "utilization.target", settings.target_utilization,
         "utilization.min", "the lower bound must be at most the target"),
    )  # fmt: skip
    for low_name, low, high_name, high, at, hint in pairs:
        if low <= high or key_of(low_name) in wrong or key_of(high_name) in wrong:
            continue
        value, other, other_value = (low, high_name, high) if at == low_name else (high, low_name, low)
        side = "above" if at == low_name else "below"
        problems.append((key_of(at), f"is {value:g}, {side} {other} ({other_value:g})", hint))
    return problems
