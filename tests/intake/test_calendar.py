"""Working days on the real official calendar (chinesecalendar's data), make-up days and unknown years."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest

from core.errors import ConfigError, GridwatchError
from core.yamlconf import parse_model
from intake.calendar import CalendarConfig, CalendarYear, UnknownCalendarYear, WorkCalendar, load_calendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
CALENDAR = WorkCalendar()


def at(month: int, day: int, hour: int = 10, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def end_of(month: int, day: int, year: int = 2026) -> datetime:
    return datetime(year, month, day, 18, 0, tzinfo=SHANGHAI)


def test_the_2026_national_day_arrangement_in_the_package() -> None:
    # given: the official 2026 arrangement around National Day, as chinesecalendar has it
    span = chinese_calendar.get_dates(date(2026, 9, 14), date(2026, 10, 18))
    details = {day: chinese_calendar.get_holiday_detail(day) for day in span}
    for day, (off, name) in details.items():
        print(day, f"{day:%a}", "off" if off else "work", name or "")
    # then: 1-7 October off (Thu to Wed), Sunday 20 September and Saturday 10 October worked in exchange,
    # and the Mid-Autumn Festival from Friday 25 to Sunday 27 September
    national_days_off = [day for day, (off, name) in details.items() if off and name == "National Day"]
    assert national_days_off == [date(2026, 10, d) for d in range(1, 8)]
    make_up = [day for day, (off, _) in details.items() if not off and day.weekday() >= 5]
    assert make_up == [date(2026, 9, 20), date(2026, 10, 10)]
    assert [f"{day:%a}" for day in make_up] == ["Sun", "Sat"]
    mid_autumn = [day for day, (off, name) in details.items() if off and name == "Mid-autumn Festival"]
    assert mid_autumn == [date(2026, 9, 25), date(2026, 9, 26), date(2026, 9, 27)]


@pytest.mark.parametrize(
    ("day", "workday"),
    [
        (date(2026, 9, 19), False),  # an ordinary Saturday
        (date(2026, 9, 20), True),  # make-up Sunday
        (date(2026, 9, 25), False),  # Mid-Autumn Festival, a Friday
        (date(2026, 9, 30), True),  # the eve of the holiday
        *((date(2026, 10, d), False) for d in range(1, 8)),  # National Day week
        (date(2026, 10, 8), True),
        (date(2026, 10, 10), True),  # make-up Saturday
        (date(2026, 10, 11), False),
        (date(2026, 10, 12), True),
    ],
    ids=str,
)
def test_is_workday_follows_the_official_calendar(day: date, workday: bool) -> None:
    assert CALENDAR.is_workday(day) is workday


@pytest.mark.parametrize(
    ("reported", "n", "deadline"),
    [
        (at(9, 30), 1, end_of(10, 8)),  # the eve of the holiday: the week off is not counted
        (at(9, 30), 3, end_of(10, 10)),  # ... and the third working day is the make-up Saturday
        (at(9, 30), 5, end_of(10, 13)),
        (at(9, 30, 23, 30), 1, end_of(10, 8)),  # late on the eve: still counted from the next working day
        (at(10, 3), 1, end_of(10, 8)),  # reported during the holiday
        (at(10, 10, 9, 30), 1, end_of(10, 12)),  # reported on the make-up Saturday: that day is not counted
        (at(10, 10, 9, 30), 3, end_of(10, 14)),
        (at(10, 10, 9, 30), 5, end_of(10, 16)),
        (at(9, 19), 1, end_of(9, 20)),  # an ordinary Saturday: the next day is the make-up Sunday
        (at(9, 20), 5, end_of(9, 28)),  # from the make-up Sunday, over the Mid-Autumn Festival
        (at(9, 24), 3, end_of(9, 30)),
        (at(9, 24), 5, end_of(10, 9)),  # across both holidays
    ],
    ids=lambda v: v.isoformat() if isinstance(v, datetime) else str(v),
)
def test_add_workdays_ends_at_the_end_of_the_nth_working_day_after_the_report(
    reported: datetime, n: int, deadline: datetime
) -> None:
    assert CALENDAR.add_workdays(reported, n) == deadline
    assert CALENDAR.workdays_between(reported, deadline) == n


@pytest.mark.parametrize(
    ("reported_utc", "deadline"),
    [
        (datetime(2026, 10, 9, 15, 0, tzinfo=UTC), end_of(10, 10)),  # 23:00 on Friday 9 October in Shanghai
        (datetime(2026, 10, 9, 17, 0, tzinfo=UTC), end_of(10, 12)),  # 01:00 on the make-up Saturday in Shanghai
    ],
    ids=["friday night local", "saturday early local"],
)
def test_the_report_day_is_the_local_date(reported_utc: datetime, deadline: datetime) -> None:
    assert CALENDAR.add_workdays(reported_utc, 1) == deadline


def test_end_of_day_and_time_zone_are_configurable() -> None:
    calendar = WorkCalendar(CalendarConfig(end_of_day=time(17, 30), timezone="Asia/Urumqi"))
    deadline = calendar.add_workdays(datetime(2026, 9, 30, 10, tzinfo=ZoneInfo("Asia/Urumqi")), 1)
    assert deadline == datetime(2026, 10, 8, 17, 30, tzinfo=ZoneInfo("Asia/Urumqi"))


def test_workdays_between_round_trips_with_add_workdays() -> None:
    for offset in range(40):
        start = at(9, 14) + timedelta(days=offset)
        for n in range(1, 6):
            assert CALENDAR.workdays_between(start, CALENDAR.add_workdays(start, n)) == n


@pytest.mark.parametrize(
    ("a", "b", "count"),
    [
        (date(2026, 9, 30), date(2026, 10, 7), 0),
        (date(2026, 9, 30), date(2026, 10, 10), 3),
        (date(2026, 10, 10), date(2026, 9, 30), -3),
        (date(2026, 10, 8), date(2026, 10, 8), 0),
    ],
    ids=str,
)
def test_workdays_between(a: date, b: date, count: int) -> None:
    assert CALENDAR.workdays_between(a, b) == count


def test_next_workday_skips_the_holiday_and_keeps_make_up_days() -> None:
    assert CALENDAR.next_workday(date(2026, 9, 30)) == date(2026, 10, 8)
    assert CALENDAR.next_workday(date(2026, 10, 9)) == date(2026, 10, 10)
    assert CALENDAR.next_workday(date(2026, 10, 10)) == date(2026, 10, 12)


@pytest.mark.parametrize(
    ("call", "year"),
    [
        (lambda c: c.add_workdays(at(12, 30), 3), 2027),  # 31 December, then 2027
        (lambda c: c.add_workdays(at(12, 31, 20), 1), 2027),
        (lambda c: c.is_workday(date(2003, 5, 6)), 2003),
        (lambda c: c.workdays_between(date(2026, 12, 1), date(2027, 1, 10)), 2027),
    ],
    ids=["deadline crosses into 2027", "reported on new year's eve", "before the package", "counting into 2027"],
)
def test_a_year_nobody_knows_is_refused_with_the_key_to_add(call: object, year: int) -> None:
    assert callable(call)
    with pytest.raises(UnknownCalendarYear) as err:
        call(WorkCalendar(source="configs/calendar.yaml"))
    assert isinstance(err.value, GridwatchError)
    assert err.value.year == year
    assert err.value.key == f"years.{year}"
    message = str(err.value)
    assert f"no working-day calendar for {year}" in message
    assert f"configs/calendar.yaml has no `years.{year}`" in message


def test_a_year_added_in_config_computes() -> None:
    # given: 2027 in config (illustrative dates: New Year's Day on Friday 1 January, the weekend after it)
    config = CalendarConfig(years={2027: CalendarYear(holidays=((date(2027, 1, 1), date(2027, 1, 3)),))})
    calendar = WorkCalendar(config)
    # then: 31 December, then Monday 4 and Tuesday 5 January
    assert calendar.add_workdays(at(12, 30), 3) == end_of(1, 5, year=2027)
    assert calendar.known_years >= {2026, 2027}


def test_a_year_in_config_replaces_the_packages() -> None:
    # given: a config that says 2026 had no holidays and no make-up days at all
    calendar = WorkCalendar(CalendarConfig(years={2026: CalendarYear()}))
    # then: Thursday 1 October is a working day, the make-up Saturday is not, and 2025 is still the package's
    assert calendar.is_workday(date(2026, 10, 1))
    assert not calendar.is_workday(date(2026, 10, 10))
    assert not calendar.is_workday(date(2025, 10, 1))


def test_naive_datetimes_and_zero_days_are_refused() -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        CALENDAR.add_workdays(datetime(2026, 9, 30, 10), 1)
    with pytest.raises(ValueError, match="at least 1"):
        CALENDAR.add_workdays(at(9, 30), 0)


@pytest.mark.parametrize(
    ("a", "b", "working"),
    [
        (at(9, 30, 10), at(9, 30, 15), timedelta(hours=5)),
        (at(9, 30, 10), at(10, 8, 10), timedelta(hours=9)),  # 8 h on the eve, 1 h on the 8th
        (at(9, 30, 19), at(10, 8, 8), timedelta(0)),  # only nights and holidays
        (at(10, 9, 17), at(10, 12, 10), timedelta(hours=11)),  # 1 h, the make-up Saturday's 9 h, 1 h
    ],
    ids=["same day", "over the holiday", "nights and holidays", "over the make-up saturday"],
)
def test_working_time_between_and_add_working_time(a: datetime, b: datetime, working: timedelta) -> None:
    assert CALENDAR.working_time_between(a, b) == working
    if working:
        assert CALENDAR.add_working_time(a, working) == b


def test_the_shipped_calendar_yaml_and_its_example_load() -> None:
    calendar = load_calendar(CONFIGS / "calendar.yaml")
    assert calendar.config == CalendarConfig()
    assert calendar.source.endswith("calendar.yaml")
    text = (CONFIGS / "calendar.yaml").read_text(encoding="utf-8")
    example = text.split("# years:\n", 1)[1]
    uncommented = "years:\n" + re.sub(r"^# ?", "", example, flags=re.MULTILINE)
    config = parse_model(CalendarConfig, uncommented, "example")
    assert date(2027, 10, 7) in config.years[2027].holiday_dates()
    assert WorkCalendar(config).is_workday(date(2027, 10, 9))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("years:\n  2027:\n    holiday: [2027-01-01]\n", "3:5: years[2027].holiday: extra key not allowed"),
        ("years:\n  2027:\n    holidays: [2026-10-01]\n", "3:16: years[2027].holidays[0]: 2026-10-01 is not in 2027"),
        (
            "years:\n  2027:\n    holidays:\n      - 2027-10-07..2027-10-01\n",
            "4:9: years[2027].holidays[0]: range 2027-10-07..2027-10-01 ends before it starts",
        ),
        (
            "years:\n  2027:\n    holidays: [tomorrow]\n",
            "3:16: years[2027].holidays[0]: expected a date such as 2027-10-01, got 'tomorrow'",
        ),
        (
            "years:\n  2027:\n    workdays: [2027-10-11]\n",
            "3:16: years[2027].workdays[0]: 2027-10-11 is a Monday: make-up working days are Saturdays or Sundays",
        ),
        (
            "years:\n  2027:\n    holidays: [2027-10-01..2027-10-10]\n    workdays: [2027-10-09]\n",
            "4:16: years[2027].workdays[0]: 2027-10-09 is also listed as a holiday",
        ),
        ("end_of_day: 18:00\n", "1:13: end_of_day: quote the time, e.g. '18:00': unquoted, YAML reads it as a number"),
        ("start_of_day: '19:00'\n", "1:15: start_of_day: 19:00 is not before end_of_day 18:00"),
        ("timezone: Mars/Olympus\n", "1:11: timezone: unknown time zone 'Mars/Olympus'"),
        ("years:\n  1776: {}\n", "2:9: years[1776].[key]: Input should be greater than or equal to 1900"),
    ],
    ids=[
        "typo",
        "wrong year",
        "backward range",
        "not a date",
        "weekday make-up",
        "both",
        "unquoted time",
        "hours backwards",
        "time zone",
        "year range",
    ],
)
def test_a_bad_calendar_yaml_points_at_its_place(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "calendar.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_calendar(path)
    assert err.value.problems == [f"{path}:{expected}"]
