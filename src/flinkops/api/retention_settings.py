"""The savepoint retention settings in a Flink configuration, read and checked in one place.

- ``kubernetes.operator.savepoint.history.max.count`` (default 10) and
  ``kubernetes.operator.savepoint.history.max.age`` (default 1 d), each capped by its ``<key>.threshold``;
- ``kubernetes.operator.savepoint.cleanup.enabled`` (default true): whether to trim at all;
- ``kubernetes.operator.savepoint.dispose-on-delete`` (default false: trimmed entries leave the history and
  their data stays in storage; true: their data is disposed of too).

Called by: validation (a bad value is reported on the resource) and the planner (``core.retention`` applies
the limits). Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from flinkops.api.durations import parse_duration_ms

__all__ = [
    "CLEANUP_ENABLED_KEY",
    "DEFAULT_MAX_AGE_MS",
    "DEFAULT_MAX_COUNT",
    "DISPOSE_ON_DELETE_KEY",
    "MAX_AGE_KEY",
    "MAX_AGE_THRESHOLD_KEY",
    "MAX_COUNT_KEY",
    "MAX_COUNT_THRESHOLD_KEY",
    "RETENTION_KEYS",
    "RetentionLimits",
    "retention_limits",
]

MAX_COUNT_KEY = "kubernetes.operator.savepoint.history.max.count"
MAX_COUNT_THRESHOLD_KEY = MAX_COUNT_KEY + ".threshold"
MAX_AGE_KEY = "kubernetes.operator.savepoint.history.max.age"
MAX_AGE_THRESHOLD_KEY = MAX_AGE_KEY + ".threshold"
CLEANUP_ENABLED_KEY = "kubernetes.operator.savepoint.cleanup.enabled"
DISPOSE_ON_DELETE_KEY = "kubernetes.operator.savepoint.dispose-on-delete"

DEFAULT_MAX_COUNT = 10
DEFAULT_MAX_AGE_MS = 24 * 3_600_000
RETENTION_KEYS = (MAX_COUNT_KEY, MAX_COUNT_THRESHOLD_KEY, MAX_AGE_KEY, MAX_AGE_THRESHOLD_KEY, CLEANUP_ENABLED_KEY,
                  DISPOSE_ON_DELETE_KEY)  # fmt: skip


@dataclass(frozen=True)
class RetentionLimits:
    """How much savepoint history to keep, and what trimming does."""

    max_count: int = DEFAULT_MAX_COUNT
    max_age_ms: int = DEFAULT_MAX_AGE_MS
    cleanup_enabled: bool = True
    dispose_on_delete: bool = False


_WHOLE_NUMBER = re.compile(r"^\+?[0-9]+$")


def retention_limits(conf: Mapping[str, str]) -> RetentionLimits:
    """The savepoint retention settings in ``conf``; unset or blank keys take their defaults.

    Raises ``ValueError`` naming the key when a value is not a whole number, a duration or a boolean.
    """
    max_count = _count(conf, MAX_COUNT_KEY)
    count_cap = _count(conf, MAX_COUNT_THRESHOLD_KEY)
    max_age_ms = _duration(conf, MAX_AGE_KEY)
    age_cap = _duration(conf, MAX_AGE_THRESHOLD_KEY)
    return RetentionLimits(
        max_count=_capped(DEFAULT_MAX_COUNT if max_count is None else max_count, count_cap),
        max_age_ms=_capped(DEFAULT_MAX_AGE_MS if max_age_ms is None else max_age_ms, age_cap),
        cleanup_enabled=_boolean(conf, CLEANUP_ENABLED_KEY, True),
        dispose_on_delete=_boolean(conf, DISPOSE_ON_DELETE_KEY, False),
    )


def _raw(conf: Mapping[str, str], key: str) -> str | None:
    value = conf.get(key)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _capped(value: int, cap: int | None) -> int:
    return value if cap is None else min(value, cap)


def _count(conf: Mapping[str, str], key: str) -> int | None:
    raw = _raw(conf, key)
    if raw is None:
        return None
    if not _WHOLE_NUMBER.match(raw):
        raise ValueError(f"{key}: '{raw}' is not a whole number of savepoints; write e.g. '10'")
    return int(raw)


def _duration(conf: Mapping[str, str], key: str) -> int | None:
    raw = _raw(conf, key)
    if raw is None:
        return None
    try:
        return parse_duration_ms(raw)
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def _boolean(conf: Mapping[str, str], key: str, default: bool) -> bool:
    raw = _raw(conf, key)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered not in ("true", "false"):
        raise ValueError(f"{key}: '{raw}' is not a boolean; write 'true' or 'false'")
    return lowered == "true"
