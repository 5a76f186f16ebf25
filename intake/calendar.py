"""Working days on China's official calendar, make-up working days (调休上班) included, for case deadlines.

The convention is the one the 1-3-5 rule of 网格化 case systems and Chinese administrative time limits use: the
day a case is reported is not counted (期间开始之日不计算在期间内). A limit of n working days runs from the first
working day after the report's local date and ends at `end_of_day` (18:00 by default) of the nth working day. So a
case reported on Monday at 10:00 must be verified by Tuesday 18:00; one reported on Saturday, on a holiday, or on
Friday evening starts counting on the next working day. A deadline is a moment (an aware datetime in the
configured time zone, Asia/Shanghai by default), so "overdue" is a plain comparison.

Which days are working days comes from the `chinesecalendar` package for the years it knows (the State Council's
notices, published late in the year before), and from `calendar.yaml` for the rest: a year listed there replaces
the package's data for that year. A date in a year neither knows raises `UnknownCalendarYear`; a deadline is never
guessed. Pure: the only I/O is `load_calendar`, which reads the YAML file.

The pause of a suspended case (挂起) is counted in working time: the part of each working day between
`start_of_day` and `end_of_day` (`working_time_between`, `add_working_time`).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, field_validator, model_validator
from pydantic_core import PydanticCustomError

from core.errors import GridwatchError
from core.yamlconf import load_model
from intake.configcheck import Loc, raise_problems

logger = logging.getLogger(__name__)

DEFAULT_SOURCE = "calendar.yaml"
PACKAGE_YEARS: frozenset[int] = frozenset(day.year for day in chinese_calendar.holidays)
ONE_DAY = timedelta(days=1)


class UnknownCalendarYear(GridwatchError):  # noqa: N818 (the name the intake design and its callers use)
    """A date falls in a year whose holidays and make-up working days nobody has told us."""

    def __init__(self, year: int, source: str) -> None:
        self.year = year
        self.key = f"years.{year}"
        self.source = source
        known = f"{min(PACKAGE_YEARS)}-{max(PACKAGE_YEARS)}"
        super().__init__(
            f"no working-day calendar for {year}: chinesecalendar knows {known} and {source} has no `{self.key}`; "
            f"add `{self.key}` with its `holidays` and make-up `workdays` from the State Council's notice "
            f"(deadlines in {year} are not guessed)"
        )


def _parse_day(value: object) -> date:
    if isinstance(value, datetime):
        raise PydanticCustomError(
            "calendar_day", "{value} has a time: expected a date such as 2027-10-01", {"value": str(value)}
        )
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise PydanticCustomError("calendar_day", "expected a date such as 2027-10-01, got {value}", {"value": repr(value)})


def _parse_span(value: object) -> tuple[date, date]:
    """A date, `FIRST..LAST` or a pair `[FIRST, LAST]` (both included)."""
    ends: tuple[object, object] | None = None
    if isinstance(value, str) and ".." in value:
        first_text, _, last_text = value.partition("..")
        ends = (first_text, last_text)
    elif isinstance(value, tuple | list) and len(value) == 2:
        ends = (value[0], value[1])
    if ends is not None:
        first, last = _parse_day(ends[0]), _parse_day(ends[1])
        if first > last:
            raise PydanticCustomError(
                "calendar_span", "range {value} ends before it starts", {"value": f"{first}..{last}"}
            )
        return first, last
    day = _parse_day(value)
    return day, day


def _parse_clock(value: object) -> time:
    if isinstance(value, int):  # YAML 1.1 reads an unquoted 18:00 as the sexagesimal number 1080
        raise PydanticCustomError("clock_time", "quote the time, e.g. '18:00': unquoted, YAML reads it as a number", {})
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        try:
            return time.fromisoformat(value.strip())
        except ValueError:
            pass
    raise PydanticCustomError(
        "clock_time", "expected a time of day such as '18:00', got {value}", {"value": repr(value)}
    )


Day = Annotated[date, PlainValidator(_parse_day)]
DaySpan = Annotated[tuple[date, date], PlainValidator(_parse_span)]
ClockTime = Annotated[time, PlainValidator(_parse_clock)]
Year = Annotated[int, Field(ge=1900, le=2200)]


class CalendarYear(BaseModel):
    """One year's official arrangement: its holidays (dates or `FIRST..LAST` ranges; weekends inside a range are
    fine) and its make-up working days (Saturdays or Sundays worked, 调休上班). Every other Monday to Friday is a
    working day and every other Saturday and Sunday is not."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    holidays: tuple[DaySpan, ...] = ()
    workdays: tuple[Day, ...] = ()

    def holiday_dates(self) -> frozenset[date]:
        days: set[date] = set()
        for first, last in self.holidays:
            days.update(first + timedelta(days=i) for i in range((last - first).days + 1))
        return frozenset(days)


def _year_problems(year: int, entry: CalendarYear) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    for i, (first, last) in enumerate(entry.holidays):
        if first.year != year or last.year != year:
            shown = str(first) if first == last else f"{first}..{last}"
            problems.append((("years", year, "holidays", i), f"{shown} is not in {year}"))
    holidays = entry.holiday_dates()
    for i, day in enumerate(entry.workdays):
        loc: Loc = ("years", year, "workdays", i)
        if day.year != year:
            problems.append((loc, f"{day} is not in {year}"))
        elif day.weekday() < 5:
            problems.append((loc, f"{day} is a {day:%A}: make-up working days are Saturdays or Sundays"))
        elif day in holidays:
            problems.append((loc, f"{day} is also listed as a holiday"))
    return problems


class CalendarConfig(BaseModel):
    """`calendar.yaml`: the time zone, the working hours, and the years the package lacks or that it gets wrong."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "Asia/Shanghai"
    start_of_day: ClockTime = time(9, 0)
    end_of_day: ClockTime = time(18, 0)
    years: dict[Year, CalendarYear] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise PydanticCustomError("timezone", "unknown time zone {value}", {"value": repr(value)}) from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CalendarConfig:
        problems: list[tuple[Loc, str]] = []
        if self.start_of_day >= self.end_of_day:
            problems.append(
                (("start_of_day",), f"{self.start_of_day:%H:%M} is not before end_of_day {self.end_of_day:%H:%M}")
            )
        for year, entry in self.years.items():
            problems.extend(_year_problems(year, entry))
        raise_problems("CalendarConfig", "calendar", problems)
        return self


class WorkCalendar:
    """Which days are working days, and deadlines counted in them. Dates are local dates in `tz`; datetimes
    must be aware and are read in `tz`."""

    def __init__(self, config: CalendarConfig | None = None, *, source: str = DEFAULT_SOURCE) -> None:
        self.config = config if config is not None else CalendarConfig()
        self.source = source
        self.tz = ZoneInfo(self.config.timezone)
        self._years = {
            year: (entry.holiday_dates(), frozenset(entry.workdays)) for year, entry in self.config.years.items()
        }

    @property
    def known_years(self) -> frozenset[int]:
        return PACKAGE_YEARS | frozenset(self._years)

    def local_date(self, value: date | datetime) -> date:
        if isinstance(value, datetime):
            return self._local(value).date()
        return value

    def end_of(self, day: date) -> datetime:
        return datetime.combine(day, self.config.end_of_day, tzinfo=self.tz)

    def start_of(self, day: date) -> datetime:
        return datetime.combine(day, self.config.start_of_day, tzinfo=self.tz)

    def is_workday(self, day: date | datetime) -> bool:
        """A working day on the official calendar; raises `UnknownCalendarYear` for a year nobody knows."""
        day = self.local_date(day)
        configured = self._years.get(day.year)
        if configured is not None:
            holidays, workdays = configured
            return day in workdays or (day.weekday() < 5 and day not in holidays)
        if day.year in PACKAGE_YEARS:
            return bool(chinese_calendar.is_workday(day))
        raise UnknownCalendarYear(day.year, self.source)

    def next_workday(self, day: date | datetime) -> date:
        """The first working day strictly after `day`."""
        day = self.local_date(day) + ONE_DAY
        while not self.is_workday(day):
            day += ONE_DAY
        return day

    def add_workdays(self, start: datetime, n: int) -> datetime:
        """The end (`end_of_day`) of the nth working day after `start`'s local date; `n` >= 1."""
        if n < 1:
            raise ValueError(f"add_workdays: n must be at least 1, got {n}")
        day = self.local_date(start)
        for _ in range(n):
            day = self.next_workday(day)
        return self.end_of(day)

    def workdays_between(self, a: date | datetime, b: date | datetime) -> int:
        """Working days after `a`'s local date up to and including `b`'s; negative when `b` is before `a`.
        `workdays_between(t, add_workdays(t, n)) == n`."""
        first, last = self.local_date(a), self.local_date(b)
        if last < first:
            return -self.workdays_between(last, first)
        count, day = 0, first + ONE_DAY
        while day <= last:
            count += self.is_workday(day)
            day += ONE_DAY
        return count

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        """The working time (between `start_of_day` and `end_of_day` on working days) from `a` to `b`."""
        a, b = self._local(a), self._local(b)
        total, day = timedelta(0), a.date()
        while day <= b.date():
            if self.is_workday(day):
                opens, closes = max(a, self.start_of(day)), min(b, self.end_of(day))
                total += max(closes - opens, timedelta(0))
            day += ONE_DAY
        return total

    def add_working_time(self, start: datetime, span: timedelta) -> datetime:
        """The moment `span` of working time after `start` (the inverse of `working_time_between`)."""
        if span < timedelta(0):
            raise ValueError(f"add_working_time: span must not be negative, got {span}")
        moment, left = self._local(start), span
        day = moment.date()
        while left > timedelta(0):
            if self.is_workday(day) and moment < self.end_of(day):
                opens = max(moment, self.start_of(day))
                room = self.end_of(day) - opens
                if left <= room:
                    return opens + left
                left -= room
            day += ONE_DAY
            moment = self.start_of(day)
        return moment

    def _local(self, moment: datetime) -> datetime:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"a deadline needs an aware datetime, got the naive {moment.isoformat()}")
        return moment.astimezone(self.tz)


def load_calendar(path: Path | None = None) -> WorkCalendar:
    """The calendar of `calendar.yaml` at `path`, or the package's alone when `path` is None."""
    if path is None:
        return WorkCalendar()
    config = load_model(CalendarConfig, path)
    for year in sorted(config.years):
        how = "replaces chinesecalendar's" if year in PACKAGE_YEARS else "beyond chinesecalendar"
        logger.info("calendar: %d from %s (%s)", year, path, how)
    return WorkCalendar(config, source=str(path))
