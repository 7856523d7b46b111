"""Savepoint history retention: count, age, protected paths, the newest entry, and the config helper."""

from __future__ import annotations

import pytest

from flinkops.api.models import Savepoint
from flinkops.api.retention_settings import RetentionLimits, retention_limits
from flinkops.core.retention import plan_retention

HOUR = 3_600_000
DAY = 24 * HOUR
NOW = 1_700_000_000_000


def sp(n: int, age_ms: int) -> Savepoint:
    return Savepoint(time_stamp=NOW - age_ms, location=f"file:/sp/savepoint-a1b2c3-{n:012x}")


def names(entries: tuple[Savepoint, ...]) -> list[int]:
    return [int(e.location.rsplit("-", 1)[1], 16) for e in entries]


def history(count: int, spacing_ms: int = HOUR) -> list[Savepoint]:
    """``count`` savepoints, numbered 1 (oldest) to ``count`` (newest, ``spacing_ms`` old)."""
    return [sp(n, (count - n + 1) * spacing_ms) for n in range(1, count + 1)]


def test_nothing_to_do_within_limits() -> None:
    keep, dispose = plan_retention(history(3), now_ms=NOW, max_count=10, max_age_ms=DAY)
    assert names(keep) == [1, 2, 3] and dispose == ()


def test_empty_history() -> None:
    assert plan_retention([], now_ms=NOW, max_count=1, max_age_ms=0) == ((), ())


def test_beyond_max_count_the_oldest_go_first() -> None:
    keep, dispose = plan_retention(history(12, spacing_ms=60_000), now_ms=NOW, max_count=10, max_age_ms=DAY)
    assert names(dispose) == [1, 2]
    assert names(keep) == list(range(3, 13))


def test_entries_older_than_max_age_go() -> None:
    entries = [sp(1, 3 * DAY), sp(2, DAY + 1), sp(3, DAY), sp(4, HOUR)]
    keep, dispose = plan_retention(entries, now_ms=NOW, max_count=10, max_age_ms=DAY)
    assert names(dispose) == [1, 2]  # exactly max age old is still kept
    assert names(keep) == [3, 4]


def test_the_newest_entry_is_kept_however_old_and_whatever_the_count() -> None:
    entries = [sp(1, 30 * DAY), sp(2, 20 * DAY), sp(3, 10 * DAY)]
    keep, dispose = plan_retention(entries, now_ms=NOW, max_count=1, max_age_ms=DAY)
    assert names(keep) == [3] and names(dispose) == [1, 2]
    keep, _ = plan_retention(entries, now_ms=NOW, max_count=0, max_age_ms=0)
    assert names(keep) == [3]  # a count below 1 acts as 1


def test_protected_paths_are_kept_in_any_spelling() -> None:
    entries = history(6)
    protected = [
        "file:///sp/savepoint-a1b2c3-000000000001",  # e.g. jobStatus.upgradeSavepointPath
        "/sp/savepoint-a1b2c3-000000000003/_metadata",  # e.g. the newest restorable snapshot
        None,  # an unset lastSavepoint
    ]
    keep, dispose = plan_retention(entries, now_ms=NOW, max_count=2, max_age_ms=DAY, protected=protected)
    assert names(keep) == [1, 3, 5, 6]
    assert names(dispose) == [2, 4]


def test_protected_entries_count_towards_max_count() -> None:
    # An old protected entry does not push out a newer one, and does not make a newer one disposable either.
    entries = history(4)
    keep, dispose = plan_retention(
        entries, now_ms=NOW, max_count=3, max_age_ms=DAY, protected=["file:/sp/savepoint-a1b2c3-000000000001"]
    )
    assert names(keep) == [1, 2, 3, 4] and dispose == ()


def test_age_and_count_combine() -> None:
    entries = [sp(1, 5 * DAY), sp(2, 3 * HOUR), sp(3, 2 * HOUR), sp(4, HOUR)]
    keep, dispose = plan_retention(entries, now_ms=NOW, max_count=2, max_age_ms=DAY)
    assert names(keep) == [3, 4] and names(dispose) == [1, 2]


def test_unsorted_history_is_ordered_by_time_and_equal_times_keep_their_order() -> None:
    entries = [sp(3, HOUR), sp(1, 3 * HOUR), sp(2, 2 * HOUR)]
    keep, dispose = plan_retention(entries, now_ms=NOW, max_count=2, max_age_ms=DAY)
    assert names(keep) == [2, 3] and names(dispose) == [1]
    tied = [sp(7, HOUR), sp(8, HOUR)]
    keep, dispose = plan_retention(tied, now_ms=NOW, max_count=1, max_age_ms=DAY)
    assert names(keep) == [8] and names(dispose) == [7]


def test_a_duplicate_of_a_kept_entry_is_never_disposed() -> None:
    older_copy = Savepoint(time_stamp=NOW - 5 * DAY, location="file:///sp/savepoint-a1b2c3-000000000009/")
    newest = sp(9, HOUR)
    keep, dispose = plan_retention([older_copy, sp(1, 2 * DAY), newest], now_ms=NOW, max_count=1, max_age_ms=DAY)
    assert keep == (older_copy, newest)
    assert names(dispose) == [1]


def test_every_entry_lands_in_exactly_one_list() -> None:
    entries = history(15, spacing_ms=3 * HOUR)
    keep, dispose = plan_retention(entries, now_ms=NOW, max_count=4, max_age_ms=DAY, protected=[entries[2].location])
    assert sorted(names(keep) + names(dispose)) == list(range(1, 16))
    assert not set(names(keep)) & set(names(dispose))


# --------------------------------------------------------------------------------------------- limits


def test_limits_default_like_the_reference_operator() -> None:
    assert retention_limits({}) == RetentionLimits(
        max_count=10, max_age_ms=DAY, cleanup_enabled=True, dispose_on_delete=False
    )
    assert retention_limits({"kubernetes.operator.savepoint.history.max.count": "  "}).max_count == 10


def test_limits_read_from_the_configuration() -> None:
    limits = retention_limits(
        {
            "kubernetes.operator.savepoint.history.max.count": "3",
            "kubernetes.operator.savepoint.history.max.age": "6 h",
            "kubernetes.operator.savepoint.cleanup.enabled": "FALSE",
            "kubernetes.operator.savepoint.dispose-on-delete": " true ",
        }
    )
    assert limits == RetentionLimits(max_count=3, max_age_ms=6 * HOUR, cleanup_enabled=False, dispose_on_delete=True)


def test_thresholds_cap_the_limits() -> None:
    limits = retention_limits(
        {
            "kubernetes.operator.savepoint.history.max.count": "50",
            "kubernetes.operator.savepoint.history.max.count.threshold": "20",
            "kubernetes.operator.savepoint.history.max.age.threshold": "2 d",
        }
    )
    assert (limits.max_count, limits.max_age_ms) == (20, DAY)  # the 1 d default is under the 2 d cap
    limits = retention_limits(
        {
            "kubernetes.operator.savepoint.history.max.age": "7d",
            "kubernetes.operator.savepoint.history.max.age.threshold": "2d",
        }
    )
    assert limits.max_age_ms == 2 * DAY


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("kubernetes.operator.savepoint.history.max.count", "ten", "not a whole number"),
        ("kubernetes.operator.savepoint.history.max.count", "-1", "not a whole number"),
        ("kubernetes.operator.savepoint.history.max.count.threshold", "2.5", "not a whole number"),
        ("kubernetes.operator.savepoint.history.max.age", "1 week", "unknown time unit"),
        ("kubernetes.operator.savepoint.history.max.age.threshold", "soon", "not a duration"),
        ("kubernetes.operator.savepoint.cleanup.enabled", "yes", "not a boolean"),
        ("kubernetes.operator.savepoint.dispose-on-delete", "1", "not a boolean"),
    ],
)
def test_bad_limits_name_the_key(key: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        retention_limits({key: value})
    assert str(raised.value).startswith(key + ":")
