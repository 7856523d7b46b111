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

The limits come from ``api.retention_settings.retention_limits`` (a Flink configuration's keys).

Called by: the planner, each reconcile pass (also while the job is stopped, unlike the reference operator's
lazy clean-up). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from flinkops.api.models import Savepoint
from flinkops.api.snapshot_paths import same_snapshot

__all__ = ["RetentionPlan", "plan_retention"]


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
