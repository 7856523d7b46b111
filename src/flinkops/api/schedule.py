"""When periodic snapshots are due: ``kubernetes.operator.periodic.savepoint.interval`` (and
``…periodic.checkpoint.interval``) as a duration or a Quartz cron expression.

Forms (as the reference operator reads them):

- a Flink duration (``6h``, ``30 s``, ``600000``; see ``flinkops.api.durations``): due once that long has passed
  since the last periodic snapshot (or, before the first one, since ``since_ms``). ``0`` or a blank value
  disables periodic snapshots.
- a Quartz cron expression with 6 or 7 whitespace-separated fields: ``seconds minutes hours day-of-month month
  day-of-week [year]``. Each field takes ``*``, a number, a list (``1,15``), a range (``MON-FRI``, ``22-2``
  wraps around), and a step (``*/15``, ``5/10``, ``10-40/5``); months may be ``JAN`` to ``DEC`` and days of the
  week ``SUN`` to ``SAT`` (Quartz numbering: 1 = Sunday … 7 = Saturday). As in Quartz, exactly one of
  day-of-month and day-of-week must be ``?``. Quartz's ``L``, ``W`` and ``#`` are not supported and are
  rejected with a message. Expressions are evaluated in UTC, so there are no daylight-saving gaps or repeats.
  A cron schedule is due when a fire time ``t`` exists with ``max(last, since) < t <= now``.

Called by: the planner/controller to decide whether to trigger a periodic snapshot and how long to requeue.

Invariant: pure (no clock: callers pass ``now_ms``). ``next_after`` walks calendar fields (year, month, day,
hour, minute, second) from sorted value lists, so it costs at most a few thousand steps however far away the
next fire time is; the search ends in ``MAX_YEAR``.
"""

from __future__ import annotations

import calendar
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flinkops.api.durations import parse_duration_ms

__all__ = [
    "MAX_YEAR",
    "MIN_YEAR",
    "CronSchedule",
    "IntervalSchedule",
    "Schedule",
    "parse_schedule",
]

MIN_YEAR = 1970
MAX_YEAR = 2199

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_START_S = (datetime(MIN_YEAR, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(seconds=1)
_END_MS = (datetime(MAX_YEAR + 1, 1, 1, tzinfo=UTC) - _EPOCH) // _MS


class Schedule(ABC):
    """A parsed periodic-snapshot setting. All times are epoch milliseconds."""

    text: str

    @property
    @abstractmethod
    def enabled(self) -> bool:
        """False when periodic snapshots are off (a zero or blank interval): never due."""

    @abstractmethod
    def next_after(self, ms: int) -> int | None:
        """The first time after ``ms`` at which the schedule fires, if it last fired at ``ms``.

        For an interval that is ``ms + interval``; for cron the first fire time strictly after ``ms``. None when
        disabled or when a cron expression never fires again (a year list in the past, or beyond ``MAX_YEAR``).
        """

    @abstractmethod
    def due_at(self, *, last_ms: int | None, since_ms: int) -> int | None:
        """When the next periodic snapshot becomes due (possibly in the past), or None if never.

        ``last_ms`` is the last periodic snapshot (None before the first), ``since_ms`` the earliest moment
        that counts (typically when the job started running).
        """

    def is_due(self, *, last_ms: int | None, since_ms: int, now_ms: int) -> bool:
        """Whether a periodic snapshot should be triggered at ``now_ms``."""
        due = self.due_at(last_ms=last_ms, since_ms=since_ms)
        return due is not None and due <= now_ms


@dataclass(frozen=True)
class IntervalSchedule(Schedule):
    """Every ``interval_ms`` after the last snapshot; disabled when ``interval_ms`` is 0."""

    interval_ms: int
    text: str = ""

    @property
    def enabled(self) -> bool:
        return self.interval_ms > 0

    def next_after(self, ms: int) -> int | None:
        return ms + self.interval_ms if self.enabled else None

    def due_at(self, *, last_ms: int | None, since_ms: int) -> int | None:
        return self.next_after(last_ms if last_ms is not None else since_ms)


@dataclass(frozen=True)
class CronSchedule(Schedule):
    """A Quartz cron expression, evaluated in UTC.

    Each field is the sorted tuple of values it allows. ``days_of_month`` or ``days_of_week`` is None where
    the expression says ``?``; ``years`` is None when the expression has no year field (any year).
    """

    text: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: tuple[int, ...] | None
    months: tuple[int, ...]
    days_of_week: tuple[int, ...] | None  # Quartz numbering: 1 = Sunday … 7 = Saturday
    years: tuple[int, ...] | None = None

    @property
    def enabled(self) -> bool:
        return True

    def due_at(self, *, last_ms: int | None, since_ms: int) -> int | None:
        return self.next_after(since_ms if last_ms is None else max(last_ms, since_ms))

    def next_after(self, ms: int) -> int | None:
        # Cron fires on whole seconds: start at the first whole second strictly after ms.
        if ms >= _END_MS:
            return None
        start = _EPOCH + timedelta(seconds=max(ms // 1000 + 1, _START_S))
        found = self._first_at_or_after(start)
        return None if found is None else (found - _EPOCH) // _MS

    def _days(self, year: int, month: int) -> list[int]:
        length = calendar.monthrange(year, month)[1]
        if self.days_of_month is not None:
            return [d for d in self.days_of_month if d <= length]
        allowed = self.days_of_week or ()
        first = calendar.weekday(year, month, 1)  # Monday = 0 … Sunday = 6
        return [d for d in range(1, length + 1) if (first + d) % 7 + 1 in allowed]

    def _first_at_or_after(self, start: datetime) -> datetime | None:
        if start.year > MAX_YEAR:
            return None
        years = range(start.year, MAX_YEAR + 1) if self.years is None else self.years
        for year in years:
            if year < start.year:
                continue
            exact_y = year == start.year
            for month in self.months:
                if exact_y and month < start.month:
                    continue
                exact_m = exact_y and month == start.month
                for day in self._days(year, month):
                    if exact_m and day < start.day:
                        continue
                    exact_d = exact_m and day == start.day
                    for hour in self.hours:
                        if exact_d and hour < start.hour:
                            continue
                        exact_h = exact_d and hour == start.hour
                        for minute in self.minutes:
                            if exact_h and minute < start.minute:
                                continue
                            exact_min = exact_h and minute == start.minute
                            for second in self.seconds:
                                if exact_min and second < start.second:
                                    continue
                                return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        return None


# --------------------------------------------------------------------------------------------- parsing


def parse_schedule(text: str) -> Schedule:
    """Read a periodic savepoint/checkpoint interval: a Flink duration or a Quartz cron expression.

    A blank value or a zero duration gives a disabled ``IntervalSchedule``. Raises ``ValueError`` naming the
    value and what was expected.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected a duration or a cron expression, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        return IntervalSchedule(0, text)
    fields = stripped.split()
    if len(fields) >= 5:  # reads as an attempt at cron (a duration has at most two parts)
        try:
            return _parse_cron(stripped, fields)
        except ValueError as exc:
            raise ValueError(f"'{text}' is not a valid Quartz cron expression: {exc}") from None
    try:
        return IntervalSchedule(parse_duration_ms(stripped), text)
    except ValueError as exc:
        raise ValueError(f"{exc}; or write a Quartz cron expression such as '0 0 */6 * * ?' (every 6 hours)") from None


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: Mapping[str, int]
    wraps: bool = True


_MONTH_NAMES = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAY_NAMES = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}

_FIELDS = (
    _Field("seconds", 0, 59, {}),
    _Field("minutes", 0, 59, {}),
    _Field("hours", 0, 23, {}),
    _Field("day-of-month", 1, 31, {}),
    _Field("month", 1, 12, _MONTH_NAMES),
    _Field("day-of-week", 1, 7, _DAY_NAMES),
    _Field("year", MIN_YEAR, MAX_YEAR, {}, wraps=False),
)

_ITEM = re.compile(r"^(?P<start>\*|[A-Z0-9]+)(?:-(?P<end>[A-Z0-9]+))?(?:/(?P<step>[0-9]+))?$")
_DAYS_IN_MONTH = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}


def _parse_cron(text: str, fields: list[str]) -> CronSchedule:
    if len(fields) not in (6, 7):
        hint = (
            "; Quartz expressions start with a seconds field (Unix cron '0 3 * * *' is '0 0 3 * * ?')"
            if len(fields) == 5
            else ""
        )
        raise ValueError(
            f"expected 6 or 7 fields (seconds minutes hours day-of-month month day-of-week [year]), "
            f"got {len(fields)}{hint}"
        )
    upper = [raw.upper() for raw in fields]
    sec_f, min_f, hour_f, dom_f, month_f, dow_f, year_f = _FIELDS
    seconds, minutes, hours = _values(upper[0], sec_f), _values(upper[1], min_f), _values(upper[2], hour_f)
    dom = None if upper[3] == "?" else _values(upper[3], dom_f)
    months = _values(upper[4], month_f)
    dow = None if upper[5] == "?" else _values(upper[5], dow_f)
    years = _values(upper[6], year_f) if len(upper) == 7 else None
    if dom is None and dow is None:
        raise ValueError("'?' may stand in day-of-month or day-of-week, not both")
    if dom is not None and dow is not None:
        raise ValueError(
            "give either a day-of-month or a day-of-week and write '?' in the other "
            "(e.g. '0 0 3 * * ?' daily, '0 0 3 ? * MON-FRI' on weekdays)"
        )
    if dom is not None and not any(d <= _DAYS_IN_MONTH[m] for d in dom for m in months):
        raise ValueError(f"it never fires: day-of-month {fields[3]} does not occur in month {fields[4]}")
    schedule = CronSchedule(text, seconds, minutes, hours, dom, months, dow, years)
    first_year = years[0] if years else MIN_YEAR
    if schedule.next_after((datetime(first_year, 1, 1, tzinfo=UTC) - _EPOCH) // _MS - 1000) is None:
        raise ValueError("it never fires (no such date in the years it allows)")
    return schedule


def _values(raw: str, spec: _Field) -> tuple[int, ...]:
    """The sorted values a field allows."""
    if "?" in raw:
        where = "on its own " if spec.name in ("day-of-month", "day-of-week") else ""
        raise ValueError(f"{spec.name} '{raw}': '?' is only allowed {where}in day-of-month or day-of-week")
    values: set[int] = set()
    for item in raw.split(","):
        values.update(_parse_item(item, spec))
    return tuple(sorted(values))


def _parse_item(item: str, spec: _Field) -> list[int]:
    if "#" in item or ("L" in item and not _has_name(item, spec)) or ("W" in item and not _has_name(item, spec)):
        raise ValueError(
            f"{spec.name} '{item}': flinkops does not support Quartz's 'L' (last), 'W' (nearest weekday) or "
            "'#' (n-th weekday of the month); list explicit values instead, e.g. '1,15' or 'MON-FRI'"
        )
    match = _ITEM.match(item)
    if match is None:
        raise ValueError(f"{spec.name} '{item or '(empty)'}' is not a value, range (a-b), list (a,b) or step (a/n)")
    start_raw, end_raw, step_raw = match["start"], match["end"], match["step"]
    if start_raw == "*":
        if end_raw is not None:
            raise ValueError(f"{spec.name} '{item}': '*' cannot start a range")
        start, end = spec.low, spec.high
    else:
        start = _value(start_raw, spec)
        if end_raw is not None:
            end = _value(end_raw, spec)
        elif step_raw is not None:
            end = spec.high  # Quartz: 'a/n' runs from a to the end of the field
        else:
            return [start]
    step = 1 if step_raw is None else int(step_raw)
    width = spec.high - spec.low + 1
    if not 1 <= step <= width:
        raise ValueError(f"{spec.name} '{item}': the step must be between 1 and {width}")
    if end >= start:
        return list(range(start, end + 1, step))
    if not spec.wraps:
        raise ValueError(f"{spec.name} '{item}': the range ends before it starts")
    span = end + width - start  # wrap-around range, e.g. hours 22-2
    return [spec.low + (start - spec.low + offset) % width for offset in range(0, span + 1, step)]


def _has_name(item: str, spec: _Field) -> bool:
    return any(token in spec.names for token in re.split(r"[-/]", item))


def _value(token: str, spec: _Field) -> int:
    if token.isdigit():
        value = int(token)
    elif token in spec.names:
        value = spec.names[token]
    else:
        known = f" (or {', '.join(spec.names)})" if spec.names else ""
        raise ValueError(f"{spec.name} '{token}' is not a number{known}")
    if not spec.low <= value <= spec.high:
        raise ValueError(f"{spec.name} {value} is out of range {spec.low}-{spec.high}")
    return value
