"""Read Flink duration strings (``30 s``, ``10 min``, ``500ms``, ``1h``, ``60000``) as milliseconds.

Called by validation and lint rules (checkpoint interval/timeout/min-pause, periodic savepoint interval) and
by anything else that must interpret a duration-typed Flink option exactly as Flink would.

Invariant: accepts what Flink's own duration parser accepts (a non-negative whole number, optional whitespace,
an optional case-insensitive unit label; no unit means milliseconds) and nothing more, so a value flinkops
accepts never makes a JobManager fail at startup. Pure; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["UNIT_LABELS", "duration_ms_or", "parse_duration_ms"]

_NS_PER_MS = 1_000_000

# Unit label -> nanoseconds. Flink accepts each unit's short labels, its singular and its plural name.
_UNIT_GROUPS: tuple[tuple[tuple[str, ...], int], ...] = (
    (("d", "day", "days"), 86_400 * 1_000_000_000),
    (("h", "hour", "hours"), 3_600 * 1_000_000_000),
    (("min", "m", "minute", "minutes"), 60 * 1_000_000_000),
    (("s", "sec", "secs", "second", "seconds"), 1_000_000_000),
    (("ms", "milli", "millis", "millisecond", "milliseconds"), _NS_PER_MS),
    (("µs", "micro", "micros", "microsecond", "microseconds"), 1_000),
    (("ns", "nano", "nanos", "nanosecond", "nanoseconds"), 1),
)
_UNITS_NS: dict[str, int] = {label: ns for labels, ns in _UNIT_GROUPS for label in labels}

UNIT_LABELS: tuple[str, ...] = tuple(_UNITS_NS)

_DURATION = re.compile(r"^(?P<number>[0-9]+)\s*(?P<unit>[^\s0-9]*)$")


def parse_duration_ms(text: str) -> int:
    """Milliseconds in a Flink duration string; sub-millisecond units round down.

    Raises ``ValueError`` with a message naming the value and the accepted form when it is not a duration.
    """
    if not isinstance(text, str):  # callers hand over raw config values; be explicit rather than crash oddly
        raise ValueError(f"expected a duration string such as '30 s', got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise ValueError("empty duration; write a number with a unit, e.g. '30 s' or '10 min'")
    match = _DURATION.match(stripped)
    if match is None:
        raise ValueError(
            f"'{text}' is not a duration; write a whole number with an optional unit "
            "(ms, s, min, h, d), e.g. '30 s', '10 min', '500ms'; a plain number means milliseconds"
        )
    number = int(match["number"])
    unit = match["unit"].lower()
    if not unit:
        return number
    if unit not in _UNITS_NS:
        raise ValueError(
            f"'{text}' has an unknown time unit '{match['unit']}'; use one of ms, s, min, h, d "
            "(or their long forms such as 'seconds')"
        )
    return number * _UNITS_NS[unit] // _NS_PER_MS


def duration_ms_or(config: Mapping[str, str], key: str, default_ms: int) -> int:
    """The duration under ``key`` of a configuration, in milliseconds; ``default_ms`` when the key is unset or its
    value is not a duration (decisions go on with the default; reporting the bad value is validation's job)."""
    raw = config.get(key)
    if raw is None:
        return default_ms
    try:
        return parse_duration_ms(raw)
    except ValueError:
        return default_ms
