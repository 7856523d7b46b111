"""Periodic snapshot schedules: durations and Quartz cron expressions, due/not-due edges, next fire times."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from flinkops.api.schedule import CronSchedule, IntervalSchedule, parse_schedule

HOUR = 3_600_000
MINUTE = 60_000


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp() * 1000)


def at(value: int | None) -> str | None:
    return None if value is None else datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%d %a %H:%M:%S")


def next_fire(expression: str, *start: int) -> str | None:
    return at(parse_schedule(expression).next_after(ms(*start)))


# --------------------------------------------------------------------------------------------- intervals


@pytest.mark.parametrize(
    ("text", "interval_ms"),
    [("6h", 6 * HOUR), ("30 s", 30_000), ("10M", 10 * MINUTE), ("1 d", 24 * HOUR), ("600000", 600_000)],
)
def test_durations_become_intervals(text: str, interval_ms: int) -> None:
    schedule = parse_schedule(text)
    assert isinstance(schedule, IntervalSchedule)
    assert schedule.interval_ms == interval_ms and schedule.enabled


def test_interval_is_due_once_the_interval_has_passed_since_the_last_snapshot() -> None:
    six_hours = parse_schedule("6h")
    last = ms(2024, 5, 1, 0)
    assert not six_hours.is_due(last_ms=last, since_ms=0, now_ms=last + 6 * HOUR - 1)
    assert six_hours.is_due(last_ms=last, since_ms=0, now_ms=last + 6 * HOUR)
    assert six_hours.due_at(last_ms=last, since_ms=0) == last + 6 * HOUR
    assert six_hours.next_after(last) == last + 6 * HOUR


def test_interval_counts_from_since_before_the_first_snapshot() -> None:
    hourly = parse_schedule("1 h")
    started = ms(2024, 5, 1, 12)
    assert not hourly.is_due(last_ms=None, since_ms=started, now_ms=started + HOUR - 1)
    assert hourly.is_due(last_ms=None, since_ms=started, now_ms=started + HOUR)


def test_interval_uses_the_last_snapshot_even_before_since() -> None:
    # A job resumed long after its last periodic savepoint is due at once.
    hourly = parse_schedule("1 h")
    assert hourly.is_due(last_ms=ms(2024, 1, 1), since_ms=ms(2024, 2, 1), now_ms=ms(2024, 2, 1) + 1)


@pytest.mark.parametrize("text", ["0", "0 s", "", "   "])
def test_zero_or_blank_disables(text: str) -> None:
    off = parse_schedule(text)
    assert not off.enabled
    assert off.next_after(123) is None
    assert off.due_at(last_ms=None, since_ms=0) is None
    assert not off.is_due(last_ms=None, since_ms=0, now_ms=10**15)


def test_bad_durations_explain_both_forms() -> None:
    with pytest.raises(ValueError, match=r"'every hour' is not a duration.*cron expression"):
        parse_schedule("every hour")
    with pytest.raises(ValueError, match="unknown time unit 'weeks'"):
        parse_schedule("2 weeks")
    with pytest.raises(ValueError, match="not a duration"):
        parse_schedule("-5 min")


# --------------------------------------------------------------------------------------------- cron parsing


def test_cron_fields_parse_to_value_lists() -> None:
    schedule = parse_schedule("0 0/15 9-17 ? JAN,mar-May MON-FRI 2025-2027")
    assert isinstance(schedule, CronSchedule)
    assert schedule.seconds == (0,)
    assert schedule.minutes == (0, 15, 30, 45)
    assert schedule.hours == tuple(range(9, 18))
    assert schedule.days_of_month is None
    assert schedule.months == (1, 3, 4, 5)
    assert schedule.days_of_week == (2, 3, 4, 5, 6)  # Quartz: 1 = SUN, so MON-FRI = 2..6
    assert schedule.years == (2025, 2026, 2027)


@pytest.mark.parametrize(
    ("expression", "field", "values"),
    [
        ("*/20 * * * * ?", "seconds", (0, 20, 40)),
        ("5/20 * * * * ?", "seconds", (5, 25, 45)),
        ("0 10-40/10 * * * ?", "minutes", (10, 20, 30, 40)),
        ("0 0 22-2 * * ?", "hours", (0, 1, 2, 22, 23)),  # wraps past midnight
        ("0 0 0 ? * SAT-MON", "days_of_week", (1, 2, 7)),  # wraps past Saturday
        ("0 0 0 ? * 1,7", "days_of_week", (1, 7)),
        ("0 0 0 1 NOV-FEB ?", "months", (1, 2, 11, 12)),
        ("0 0 0 1,15,31 * ?", "days_of_month", (1, 15, 31)),
        ("0 0 0 */10 * ?", "days_of_month", (1, 11, 21, 31)),
        ("0 0 0 1 */5 ?", "months", (1, 6, 11)),
        ("0 0 0 1 jul ?", "months", (7,)),
        ("0 0 0 ? * wed", "days_of_week", (4,)),
        ("0 0 0 ? * 2-6/2", "days_of_week", (2, 4, 6)),
    ],
)
def test_cron_field_forms(expression: str, field: str, values: tuple[int, ...]) -> None:
    assert getattr(parse_schedule(expression), field) == values


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 3 * * *", r"got 5; Quartz expressions start with a seconds field"),
        ("0 0 3 * * * * *", "expected 6 or 7 fields"),
        ("0 0 * * * *", "write '\\?' in the other"),
        ("0 0 0 ? * ?", "not both"),
        ("? 0 0 * * ?", r"seconds '\?'"),
        ("0 0 0 * ? ?", r"month '\?'"),
        ("0 60 * * * ?", "minutes 60 is out of range 0-59"),
        ("0 0 24 * * ?", "hours 24 is out of range"),
        ("0 0 0 0 * ?", "day-of-month 0 is out of range 1-31"),
        ("0 0 0 ? * 0", "day-of-week 0 is out of range 1-7"),
        ("0 0 0 ? * 8", "day-of-week 8"),
        ("0 0 0 1 13 ?", "month 13"),
        ("0 0 0 1 * ? 1969", "year 1969"),
        ("0 0 0 ? * FUN", r"'FUN' is not a number \(or SUN, MON"),
        ("0 0 0 1 SUN ?", "month 'SUN' is not a number"),
        ("0 0 0 L * ?", "does not support Quartz's 'L'"),
        ("0 0 0 LW * ?", "'L'"),
        ("0 0 0 15W * ?", "'W'"),
        ("0 0 0 ? * 6L", "'L'"),
        ("0 0 0 ? * 6#3", "'#'"),
        ("0 0 0 L-3 * ?", "'L'"),
        ("*/0 * * * * ?", "the step must be between 1 and 60"),
        ("0 0 0 * * ? 2030-2025", "the range ends before it starts"),
        ("0 0 0 */2 * ?/2", r"'\?' is only allowed on its own"),
        ("0 0 0 1,,2 * ?", "is not a value, range"),
        ("0 0 0 *-3 * ?", "'\\*' cannot start a range"),
        ("0 0 0 30 2 ?", "never fires: day-of-month 30 does not occur in month 2"),
        ("0 0 0 31 APR,JUN,SEP,NOV ?", "never fires"),
        ("0 0 0 29 2 ? 2025-2027", "never fires"),
    ],
)
def test_bad_cron_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        parse_schedule(expression)
    assert "is not a valid Quartz cron expression" in str(raised.value)


def test_names_containing_l_and_w_are_not_mistaken_for_quartz_specials() -> None:
    assert parse_schedule("0 0 0 1 JUL,APR ?").months == (4, 7)  # type: ignore[attr-defined]
    assert parse_schedule("0 0 0 ? * WED-SAT").days_of_week == (4, 5, 6, 7)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------- next fire times


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        # daily at 03:00, across a month end and a year end
        ("0 0 3 * * ?", (2024, 1, 31, 3, 0, 0), "2024-02-01 Thu 03:00:00"),
        ("0 0 3 * * ?", (2024, 12, 31, 4), "2025-01-01 Wed 03:00:00"),
        # strictly after: a start exactly on a fire time gives the next one
        ("0 0 3 * * ?", (2024, 6, 1, 3, 0, 0), "2024-06-02 Sun 03:00:00"),
        ("0 0 3 * * ?", (2024, 6, 1, 2, 59, 59), "2024-06-01 Sat 03:00:00"),
        # every 10 minutes (the reference operator's own example)
        ("0 */10 * * * ?", (2022, 6, 5, 11, 5), "2022-06-05 Sun 11:10:00"),
        ("0 */10 * * * ?", (2022, 6, 5, 23, 55), "2022-06-06 Mon 00:00:00"),
        # leap days
        ("0 0 0 29 2 ?", (2024, 3, 1), "2028-02-29 Tue 00:00:00"),
        ("0 0 0 29 2 ?", (2096, 3, 1), "2104-02-29 Fri 00:00:00"),  # 2100 is not a leap year
        ("0 0 12 28-29 FEB ?", (2023, 2, 28, 13), "2024-02-28 Wed 12:00:00"),
        # the 31st skips shorter months
        ("0 0 0 31 * ?", (2024, 3, 31, 1), "2024-05-31 Fri 00:00:00"),
        ("0 30 6 30 * ?", (2023, 1, 30, 7), "2023-03-30 Thu 06:30:00"),
        # days of the week, with names and Quartz numbers
        ("0 0 12 ? * MON-FRI", (2024, 3, 1, 13), "2024-03-04 Mon 12:00:00"),
        ("0 0 12 ? * 1", (2024, 3, 1), "2024-03-03 Sun 12:00:00"),
        ("0 0 12 ? * 7", (2024, 3, 1), "2024-03-02 Sat 12:00:00"),
        ("0 0 0 ? * SAT-MON", (2024, 1, 1), "2024-01-06 Sat 00:00:00"),
        # wrapping hour range
        ("0 0 22-2 * * ?", (2024, 1, 1, 2, 30), "2024-01-01 Mon 22:00:00"),
        # year field
        ("0 0 0 1 * ? 2030", (2024, 7, 1), "2030-01-01 Tue 00:00:00"),
        ("0 15 10 ? * 6 2026,2028", (2026, 12, 31), "2028-01-07 Fri 10:15:00"),
        ("0 0 0 1 1 ? 2020", (2024, 1, 1), None),  # only in the past
        # seconds
        ("*/15 * * * * ?", (2024, 1, 1, 0, 0, 50), "2024-01-01 Mon 00:01:00"),
        ("30 59 23 31 12 ?", (2024, 6, 1), "2024-12-31 Tue 23:59:30"),
    ],
)
def test_next_fire_times(expression: str, start: tuple[int, ...], expected: str | None) -> None:
    assert next_fire(expression, *start) == expected


def test_next_after_uses_whole_seconds_and_is_strict() -> None:
    every_second = parse_schedule("* * * * * ?")
    t = ms(2024, 1, 1, 0, 0, 0)
    assert every_second.next_after(t) == t + 1000
    assert every_second.next_after(t + 1) == t + 1000
    assert every_second.next_after(t + 999) == t + 1000
    assert every_second.next_after(t - 1) == t


def test_next_after_gives_up_past_the_supported_years() -> None:
    yearly = parse_schedule("0 0 0 1 1 ?")
    assert yearly.next_after(ms(2199, 1, 1)) is None
    assert yearly.next_after(ms(2198, 6, 1)) == ms(2199, 1, 1)
    assert yearly.next_after(10**17) is None


def _allowed(spec: str, value: int, low: int) -> bool:
    """An independent, slow reading of one (simple) cron field, used to check the fast search."""
    if spec in ("*", "?"):
        return True
    for item in spec.split(","):
        base, _, step = item.partition("/")
        if base == "*":
            first, last = low, 10**6
        elif "-" in base:
            first, last = (int(x) for x in base.split("-"))
        else:
            first = int(base)
            last = first if not step else 10**6
        if first <= value <= last and (value - first) % int(step or 1) == 0:
            return True
    return False


def _scan(expression: str, start: datetime) -> datetime:
    """The first whole minute after ``start`` that matches, found by stepping days, hours, then minutes."""
    _, minute, hour, dom, month, dow = expression.split()
    moment = start.replace(second=0) + timedelta(minutes=1)
    while True:
        quartz_dow = moment.isoweekday() % 7 + 1  # Sunday -> 1 ... Saturday -> 7
        if not (_allowed(dom, moment.day, 1) and _allowed(month, moment.month, 1) and _allowed(dow, quartz_dow, 1)):
            moment = moment.replace(hour=0, minute=0) + timedelta(days=1)
        elif not _allowed(hour, moment.hour, 0):
            moment = moment.replace(minute=0) + timedelta(hours=1)
        elif not _allowed(minute, moment.minute, 0):
            moment += timedelta(minutes=1)
        else:
            return moment


def test_next_after_agrees_with_a_plain_scan() -> None:
    rng = random.Random(7)
    for _ in range(200):
        minute = rng.choice(["*", "0", "*/7", "5-20/5", "13,47", "59"])
        hour = rng.choice(["*", "0", "*/5", "9-17", "3,15"])
        if rng.random() < 0.5:
            dom, dow = rng.choice(["*", "1", "15-17", "*/9", "28,29,30,31", "29", "31"]), "?"
        else:
            dom, dow = "?", rng.choice(["*", "1", "2-6", "7", "1,4"])
        month = rng.choice(["*", "2", "*/4", "3-5", "2,4"])
        expression = f"0 {minute} {hour} {dom} {month} {dow}"
        if dom == "31" and month in ("2", "2,4"):
            continue  # never fires; parse_schedule rejects it (tested above)
        start = datetime(2023, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(0, 3 * 365 * 86400))
        found = parse_schedule(expression).next_after(int(start.timestamp() * 1000))
        assert at(found) == at(int(_scan(expression, start).timestamp() * 1000)), (expression, start)


def test_next_after_is_fast_even_for_rare_schedules() -> None:
    # The next leap day is eight years away across 2100: the search walks months and days, not seconds.
    rare = parse_schedule("59 59 23 29 2 ?")
    t = ms(2096, 3, 1)
    for _ in range(200):
        assert rare.next_after(t) == ms(2104, 2, 29, 23, 59, 59)


# --------------------------------------------------------------------------------------------- cron due


def test_cron_is_due_when_a_fire_time_lies_after_the_last_snapshot_and_not_after_now() -> None:
    nightly = parse_schedule("0 0 2 * * ?")
    last = ms(2024, 4, 30, 2, 0, 5)  # the last periodic savepoint, just after last night's fire time
    assert not nightly.is_due(last_ms=last, since_ms=0, now_ms=ms(2024, 5, 1, 1, 59, 59))
    assert nightly.is_due(last_ms=last, since_ms=0, now_ms=ms(2024, 5, 1, 2, 0, 0))
    assert nightly.due_at(last_ms=last, since_ms=0) == ms(2024, 5, 1, 2)


def test_cron_counts_from_the_later_of_last_and_since() -> None:
    nightly = parse_schedule("0 0 2 * * ?")
    # the job started at 03:00 after a savepoint two days ago: the fire times it missed while down do not count
    since = ms(2024, 5, 3, 3)
    assert not nightly.is_due(last_ms=ms(2024, 5, 1, 2), since_ms=since, now_ms=ms(2024, 5, 4, 1))
    assert nightly.is_due(last_ms=ms(2024, 5, 1, 2), since_ms=since, now_ms=ms(2024, 5, 4, 2))
    # no periodic snapshot yet: since alone
    assert not nightly.is_due(last_ms=None, since_ms=since, now_ms=ms(2024, 5, 4, 1, 59, 59))
    assert nightly.is_due(last_ms=None, since_ms=since, now_ms=ms(2024, 5, 4, 2))


def test_cron_fire_time_equal_to_last_is_not_due_again() -> None:
    hourly = parse_schedule("0 0 * * * ?")
    fired = ms(2024, 5, 1, 10)
    assert not hourly.is_due(last_ms=fired, since_ms=0, now_ms=fired)
    assert not hourly.is_due(last_ms=fired, since_ms=0, now_ms=fired + HOUR - 1)
    assert hourly.is_due(last_ms=fired, since_ms=0, now_ms=fired + HOUR)


def test_cron_is_evaluated_in_utc_without_daylight_saving_gaps() -> None:
    # 02:30 every day exists on 31 March 2024 in UTC, although it does not in Central European local time.
    assert next_fire("0 30 2 * * ?", 2024, 3, 31, 0) == "2024-03-31 Sun 02:30:00"
    # and it happens once on the autumn change day
    fires = parse_schedule("0 30 2 * * ?")
    first = fires.next_after(ms(2024, 10, 27, 0))
    assert first == ms(2024, 10, 27, 2, 30)
    assert fires.next_after(first) == ms(2024, 10, 28, 2, 30)
