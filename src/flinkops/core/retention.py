"""Which savepoints in a deployment's history to keep, and which to dispose of.

Rules of ``plan_retention`` (history entries are ``api.models.Savepoint``; times are epoch milliseconds):

1. Entries are ordered by ``time_stamp``, oldest first (entries with equal times keep their order).
2. The newest entry is always kept, whatever its age: a job always has a savepoint to fall back to.
3. A protected entry is always kept. Protected paths are the newest restorable snapshot, the path a pending
   restore or upgrade depends on (``jobStatus.upgradeSavepointPath``) and ``lastSavepoint``; paths compare
   normalised (``file:///x``, ``file:/x`` and ``/x`` are one snapshot, as is ``x/_metadata``).
4. Any other entry is disposed of when it is older than ``max_age_ms`` (``now - time_stamp > max_age_ms``) or
   when it is not among the ``max_count`` newest entries. Protected entries count towards ``max_count``: a newer
   entry is never disposed of to make room for an older protected one, so while an old entry is protected the
   kept history may be longer than ``max_count``. A ``max_count`` below 1 acts as 1.
5. An entry naming the same snapshot as a kept entry (a duplicate) is kept too, so disposing of one entry's
   data never pulls the data from under another.

``keep`` and ``dispose`` together hold every entry exactly once, each oldest first.

``retention_limits`` reads the limits from a Flink configuration:

- ``kubernetes.operator.savepoint.history.max.count`` (default 10) and
  ``kubernetes.operator.savepoint.history.max.age`` (default 1 d), each capped by its ``<key>.threshold``;
- ``kubernetes.operator.savepoint.cleanup.enabled`` (default true): whether to trim at all;
- ``kubernetes.operator.savepoint.dispose-on-delete`` (default false: trimmed entries leave the history and
  their data stays in storage; true: their data is disposed of too).

Called by: the planner, each reconcile pass (also while the job is stopped, unlike the reference operator's
lazy clean-up). Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from flinkops.api.durations import parse_duration_ms
from flinkops.api.models import Savepoint
from flinkops.api.snapshot_paths import same_snapshot

__all__ = [
    "CLEANUP_ENABLED_KEY",
    "DEFAULT_MAX_AGE_MS",
    "DEFAULT_MAX_COUNT",
    "DISPOSE_ON_DELETE_KEY",
    "MAX_AGE_KEY",
    "MAX_AGE_THRESHOLD_KEY",
    "MAX_COUNT_KEY",
    "MAX_COUNT_THRESHOLD_KEY",
    "RetentionLimits",
    "RetentionPlan",
    "plan_retention",
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


class RetentionPlan(NamedTuple):
    """The history split in two; unpacks as ``keep, dispose``."""

    keep: tuple[Savepoint, ...]
    dispose: tuple[Savepoint, ...]


def plan_retention(
    history: Sequence[Savepoint],
    *,
    now_ms: int,
    max_count: int,
    max_age_ms: int,
    protected: Iterable[str | None] = (),
) -> RetentionPlan:
    """Split ``history`` into the entries to keep and those to dispose of, by the rules in the module doc."""
    ordered = sorted(history, key=lambda s: s.time_stamp)  # stable: equal times keep their order
    if not ordered:
        return RetentionPlan((), ())
    guarded = [p for p in protected if p]
    count = max(1, max_count)
    newest = len(ordered) - 1
    keep_index: set[int] = set()
    for index, entry in enumerate(ordered):
        too_many = newest - index >= count
        too_old = now_ms - entry.time_stamp > max_age_ms
        is_protected = any(same_snapshot(entry.location, path) for path in guarded)
        if index == newest or is_protected or not (too_many or too_old):
            keep_index.add(index)
    kept_locations = [ordered[i].location for i in keep_index]
    for index, entry in enumerate(ordered):
        if index not in keep_index and any(same_snapshot(entry.location, loc) for loc in kept_locations):
            keep_index.add(index)
    return RetentionPlan(
        keep=tuple(e for i, e in enumerate(ordered) if i in keep_index),
        dispose=tuple(e for i, e in enumerate(ordered) if i not in keep_index),
    )


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
