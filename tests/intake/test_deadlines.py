"""The 1-3-5 rule on the real 2026 calendar: per-category limits, extension, suspension and cards raised once."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.errors import ConfigError
from core.yamlconf import parse_model
from intake.calendar import CalendarConfig, CalendarYear, UnknownCalendarYear, WorkCalendar
from intake.deadlines import (
    Card,
    Complexity,
    DeadlineOverride,
    DeadlinePolicy,
    Deadlines,
    Limits,
    cards_due,
    compute_deadlines,
    load_deadline_policy,
    shift_for_suspension,
)
from rules.categories import default_categories

SHANGHAI = ZoneInfo("Asia/Shanghai")
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
CALENDAR = WorkCalendar()
DEFAULT = DeadlinePolicy()


def at(month: int, day: int, hour: int = 10, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def end_of(month: int, day: int, year: int = 2026) -> datetime:
    return datetime(year, month, day, 18, 0, tzinfo=SHANGHAI)


def make_deadlines(reported: datetime, complexity: Complexity = "general", category: str = "0505") -> Deadlines:
    return compute_deadlines(DEFAULT, category, complexity, reported, CALENDAR)


@pytest.mark.parametrize(
    ("reported", "complexity", "verify_by", "due_by", "red_by"),
    [
        # the eve of National Day: the week off does not count; day 3 is the make-up Saturday 10 October
        (at(9, 30), "general", end_of(10, 8), end_of(10, 10), end_of(10, 13)),
        (at(9, 30), "complex", end_of(10, 8), end_of(10, 13), end_of(10, 13)),
        # reported on the make-up Saturday: counting starts on Monday 12 October
        (at(10, 10, 9, 30), "general", end_of(10, 12), end_of(10, 14), end_of(10, 16)),
        (at(10, 10, 9, 30), "complex", end_of(10, 12), end_of(10, 16), end_of(10, 16)),
        # reported in the middle of the holiday week
        (at(10, 4), "general", end_of(10, 8), end_of(10, 10), end_of(10, 13)),
        # before the Mid-Autumn Festival (25-27 September), running into National Day
        (at(9, 24), "complex", end_of(9, 28), end_of(10, 9), end_of(10, 9)),
    ],
    ids=["eve general", "eve complex", "make-up saturday general", "make-up saturday complex", "holiday", "mid-autumn"],
)
def test_1_3_5_deadlines_across_the_2026_national_day_week(
    reported: datetime, complexity: Complexity, verify_by: datetime, due_by: datetime, red_by: datetime
) -> None:
    assert make_deadlines(reported, complexity) == Deadlines(verify_by, due_by, complexity, red_by)


def test_a_deadline_in_an_unknown_year_is_refused_then_computes_once_configured() -> None:
    # given: a case reported on Wednesday 30 December 2026
    reported = at(12, 30)
    # when / then: its third working day is in 2027, which chinesecalendar does not know
    with pytest.raises(UnknownCalendarYear, match=r"2027.*`years\.2027`"):
        make_deadlines(reported)
    # given: 2027 in config (illustrative: 1-3 January off)
    calendar = WorkCalendar(CalendarConfig(years={2027: CalendarYear(holidays=("2027-01-01..2027-01-03",))}))
    deadlines = compute_deadlines(DEFAULT, "0505", "general", reported, calendar)
    assert (deadlines.verify_by, deadlines.due_by, deadlines.red_by) == (
        end_of(12, 31),
        end_of(1, 5, year=2027),
        end_of(1, 7, year=2027),
    )


POLICY = DeadlinePolicy(
    categories={
        "05": DeadlineOverride(general_workdays=2),
        "0505": DeadlineOverride(complex_workdays=3),
        "01": DeadlineOverride(verify_workdays=2, general_workdays=4, complex_workdays=8),
    }
)


@pytest.mark.parametrize(
    ("category", "limits"),
    [
        ("0505", Limits(1, 2, 3)),  # its own complex limit, its major class's general one, the default verify
        ("050501", Limits(1, 2, 3)),  # a third level inherits from its minor class
        ("0501", Limits(1, 2, 5)),  # only the major class's override
        ("05", Limits(1, 2, 5)),
        ("0101", Limits(2, 4, 8)),
        ("0401", Limits(1, 3, 5)),  # no override: 1-3-5
    ],
    ids=str,
)
def test_category_overrides_by_code_prefix(category: str, limits: Limits) -> None:
    assert POLICY.limits_for(category) == limits


def test_an_override_changes_the_deadlines() -> None:
    deadlines = compute_deadlines(POLICY, "0505", "complex", at(9, 30), CALENDAR)
    assert (deadlines.due_by, deadlines.red_by) == (end_of(10, 10), end_of(10, 10))


@pytest.mark.parametrize(
    ("complexity", "workdays", "due_by", "red_by"),
    [
        ("general", 2, end_of(10, 13), end_of(10, 15)),  # from Saturday 10 and Tuesday 13 October
        ("complex", 1, end_of(10, 14), end_of(10, 14)),
    ],
    ids=["general", "complex"],
)
def test_an_extension_adds_working_days(
    complexity: Complexity, workdays: int, due_by: datetime, red_by: datetime
) -> None:
    extended = make_deadlines(at(9, 30), complexity).extended(workdays, CALENDAR)
    assert (extended.due_by, extended.red_by) == (due_by, red_by)
    assert extended.verify_by == end_of(10, 8)


@pytest.mark.parametrize(
    ("suspended_at", "resumed_at", "deadline", "shifted"),
    [
        # 5 working hours suspended on the make-up Saturday: Tuesday 13 October 18:00 -> Wednesday 14:00
        (at(10, 10, 10), at(10, 10, 15), end_of(10, 13), at(10, 14, 14)),
        # suspended over the holiday week: only the working hours count (8 h on the eve, 1 h on the 8th)
        (at(9, 30, 10), at(10, 8, 10), end_of(10, 9), at(10, 10, 18)),
        # suspended after the deadline had passed: the case stays overdue
        (at(10, 14, 9), at(10, 15, 9), end_of(10, 13), end_of(10, 13)),
        # a suspension over nights and a weekend only: nothing moves
        (at(10, 16, 18, 30), at(10, 19, 8), end_of(10, 20), end_of(10, 20)),
    ],
    ids=["make-up saturday", "holiday week", "already overdue", "nights and weekend"],
)
def test_a_suspension_pauses_the_clock(
    suspended_at: datetime, resumed_at: datetime, deadline: datetime, shifted: datetime
) -> None:
    assert shift_for_suspension(deadline, suspended_at, resumed_at, CALENDAR) == shifted


def test_a_suspension_moves_only_the_deadlines_still_ahead() -> None:
    deadlines = make_deadlines(at(9, 30))  # verify 8 Oct, due 10 Oct, red 13 Oct
    resumed = deadlines.after_suspension(at(10, 9, 10), at(10, 9, 15), CALENDAR)
    assert resumed.verify_by == deadlines.verify_by
    assert (resumed.due_by, resumed.red_by) == (at(10, 12, 14), at(10, 14, 14))
    with pytest.raises(ValueError, match="before it was suspended"):
        shift_for_suspension(end_of(10, 13), at(10, 9), at(10, 8), CALENDAR)


def sweep(deadlines: Deadlines, until: datetime, done_at: datetime | None = None) -> list[tuple[datetime, Card]]:
    """A sweeper every 30 minutes from the report: raise what `cards_due` says, remember what was raised."""
    raised: set[str] = set()
    out: list[tuple[datetime, Card]] = []
    now = deadlines.verify_by - timedelta(days=1)
    while now <= until:
        done = done_at is not None and now >= done_at
        for card in cards_due(deadlines, state_is_done=done, cards_already=raised, now=now):
            raised.add(card.kind)
            out.append((now, card))
        now += timedelta(minutes=30)
    return out


def test_cards_are_raised_once_yellow_at_the_general_due_and_red_at_the_complex_due() -> None:
    # given: a general case reported on the eve of the holiday, never done
    deadlines = make_deadlines(at(9, 30))
    # when
    raised = sweep(deadlines, until=end_of(10, 20))
    # then: yellow at the first sweep after Saturday 10 October 18:00, red after Tuesday 13 October 18:00
    assert [(now, card.kind, card.escalate_to) for now, card in raised] == [
        (at(10, 10, 18, 30), "yellow", "street"),
        (at(10, 13, 18, 30), "red", "city"),
    ]
    assert [card.deadline for _, card in raised] == [end_of(10, 10), end_of(10, 13)]
    assert all(card.overdue_by == timedelta(minutes=30) for _, card in raised)


@pytest.mark.parametrize(
    ("complexity", "done_at", "kinds"),
    [
        ("general", end_of(10, 10), []),  # done at the deadline itself: in time
        ("complex", at(10, 12, 9), []),  # in time for its 5 days though past 3
        ("complex", None, ["red"]),  # a complex case gets no yellow card
        ("general", at(10, 12, 9), ["yellow"]),  # done late: the yellow card, then no red
    ],
    ids=["general in time", "complex in time", "complex never done", "general done late"],
)
def test_cards_for_cases_done_in_time_and_late(
    complexity: Complexity, done_at: datetime | None, kinds: list[str]
) -> None:
    raised = sweep(make_deadlines(at(9, 30), complexity), until=end_of(10, 20), done_at=done_at)
    assert [card.kind for _, card in raised] == kinds


def test_a_late_sweeper_raises_both_cards_at_once_and_never_again() -> None:
    deadlines = make_deadlines(at(9, 30))
    cards = cards_due(deadlines, state_is_done=False, cards_already=set(), now=at(10, 14, 9))
    assert [(c.kind, c.overdue_by) for c in cards] == [
        ("yellow", timedelta(days=3, hours=15)),
        ("red", timedelta(hours=15)),
    ]
    assert cards_due(deadlines, state_is_done=False, cards_already=["yellow", "red"], now=at(10, 20)) == []
    with pytest.raises(ValueError, match="aware"):
        cards_due(deadlines, state_is_done=False, cards_already=set(), now=datetime(2026, 10, 14, 9))


def test_the_shipped_deadlines_yaml_and_its_example_load() -> None:
    assert load_deadline_policy(CONFIGS / "deadlines.yaml", default_categories()) == DEFAULT
    assert load_deadline_policy() == DEFAULT
    text = (CONFIGS / "deadlines.yaml").read_text(encoding="utf-8")
    example = text.split("# categories:\n", 1)[1]
    uncommented = "categories:\n" + re.sub(r"^# ?", "", example, flags=re.MULTILINE)
    policy = parse_model(DeadlinePolicy, uncommented, "example")
    assert policy.limits_for("0505") == Limits(1, 1, 3)
    assert policy.limits_for("0501") == Limits(1, 2, 5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("general_days: 3\n", "1:1: general_days: extra key not allowed"),
        ("general_workdays: 0\n", "1:19: general_workdays: Input should be greater than or equal to 1"),
        ("general_workdays: '3'\n", "1:19: general_workdays: Input should be a valid integer"),
        (
            "general_workdays: 6\n",
            "1:19: general_workdays: general_workdays 6 is more than complex_workdays 5: "
            "the yellow card must not come after the red one",
        ),
        (
            "categories:\n  0505:\n    general_workdays: 2\n",
            "2:3: categories[325]: a code read as the number 325: quote codes, e.g. '05', '0505'",
        ),
        (
            "categories:\n  '05x5': {general_workdays: 2}\n",
            "2:11: categories.05x5: '05x5' is not a category code (2, 4 or 6 digits, e.g. '0505')",
        ),
        (
            "categories:\n  '0505':\n    complex_workdays: 2\n",
            "3:5: categories.0505: for 0505, general_workdays 3 is more than complex_workdays 2: "
            "the yellow card must not come after the red one",
        ),
        (
            "categories:\n  '0599': {general_workdays: 2}\n",
            "2:11: categories.0599: 0599 is not in the category table GB/T 30428.2-2013 事件分类 + gridwatch 99",
        ),
        (
            "categories:\n  '05':\n    general_workday: 2\n",
            "3:5: categories.05.general_workday: extra key not allowed",
        ),
    ],
    ids=[
        "typo",
        "zero",
        "string",
        "yellow after red",
        "unquoted code",
        "not a code",
        "override out of order",
        "code not in the table",
        "typo in override",
    ],
)
def test_a_bad_deadlines_yaml_points_at_its_place(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "deadlines.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_deadline_policy(path, default_categories())
    assert err.value.problems == [f"{path}:{expected}"]


def test_a_missing_deadlines_yaml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"deadlines\.yaml:1:1: cannot read"):
        load_deadline_policy(tmp_path / "deadlines.yaml")
