"""The loop's statistics over real cases moved round the loop in the store: exact counts and rates per district,
street, category and source, the range's edges, the false-alarm rate per rule and camera, and the index the date
range goes through."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from intake.case_model import Source
from intake.case_store import CaseStore
from intake.stats import CaseStats, CategoryLevel, GroupBy, StatsRange, StatsRow, parse_moment
from tests.intake.case_builders import BUND, HOUR, LOCAL, NANJING_EAST, NANJING_WEST, act, close_at, report
from tests.support.postgres import StoreTargets

MAY = StatsRange(since=datetime(2026, 5, 1, tzinfo=LOCAL), until=datetime(2026, 6, 1, tzinfo=LOCAL))
T0 = datetime(2026, 5, 4, 9, 0, tzinfo=LOCAL)  # a Monday
DAY = timedelta(days=1)
CAMERA = Source.camera


@pytest.fixture
def store(store_targets: StoreTargets) -> Iterator[CaseStore]:
    """A case store on each backend, SQLite and PostgreSQL."""
    cases = CaseStore(store_targets.cases)
    yield cases
    cases.close()


@pytest.fixture
def stats(store: CaseStore) -> CaseStats:
    """May 2026: ten cases in the range, three just outside it."""
    due = T0 + 3 * DAY
    c1 = report(store, "c1", T0, category="0501", grid_path=NANJING_EAST, due_by=due)
    close_at(store, c1, due.astimezone(UTC))  # exactly at its deadline (written in another zone): on time
    c2 = report(store, "c2", T0, source=Source.hotline, category="0502", grid_path=NANJING_EAST, due_by=due)
    close_at(store, c2, due + DAY)  # a day late
    c3 = report(store, "c3", T0, category="0301", grid_path=BUND, due_by=T0 + 5 * DAY)
    close_at(store, c3, T0 + 4 * DAY, rework=True)  # failed its first check, closed in time after all
    c4 = report(store, "c4", T0, source=Source.citizen, category="050501", grid_path=NANJING_WEST, due_by=due)
    act(store, c4, [*("accept", "file", "dispatch", "start"), "extend"], T0 + DAY)  # extended, still at work
    c5 = report(store, "c5", T0, source=Source.citizen, category="0501", grid_path=NANJING_WEST, due_by=due)
    act(store, c5, ["reject"], T0 + 2 * HOUR)
    c6 = report(store, "c6", T0, source=CAMERA, category="0505", grid_path=NANJING_EAST, camera="cam-7", rule="stall")
    act(store, c6, ["false_alarm"], T0 + HOUR)
    c7 = report(store, "c7", T0, source=CAMERA, category="0505", camera="cam-7", rule="stall")  # no grid, no deadline
    close_at(store, c7, T0 + 2 * DAY)
    report(store, "c8", T0, source=CAMERA, category="0505", grid_path=NANJING_EAST, camera="cam-8", rule="stall")
    c9 = report(store, "c9", T0, source=CAMERA, category="0201", grid_path=BUND, camera="cam-7", rule="fence")
    act(store, c9, ["accept", "false_alarm"], T0 + HOUR)
    report(store, "c10", MAY.since, grid_path=NANJING_EAST)  # the first instant of the range: in it
    report(store, "c11", MAY.since - timedelta(seconds=1), grid_path=NANJING_EAST)  # out
    report(store, "c12", MAY.until, grid_path=NANJING_EAST)  # the range's end is not in it
    april = report(store, "c13", T0 - 10 * DAY, source=CAMERA, category="0505", camera="cam-7", rule="stall")
    act(store, april, ["false_alarm"], T0 - 9 * DAY)
    return CaseStats(store.db)


def counts(row: StatsRow) -> tuple[object, ...]:
    """key, parent; total, closed, on time, late, closed without deadline; reworked, extended, rejected."""
    return (
        row.key,
        row.parent,
        row.total,
        row.closed,
        row.closed_on_time,
        row.closed_late,
        row.closed_no_deadline,
        row.reworked,
        row.extended,
        row.rejected,
    )


def rates(row: StatsRow) -> tuple[object, ...]:
    return (row.closure_rate, row.on_time_rate, row.rework_rate, row.extension_rate)


def test_per_district(stats: CaseStats) -> None:
    report = stats.report(MAY, "district")
    assert [counts(r) for r in report.rows] == [
        ("静安区", None, 2, 0, 0, 0, 0, 0, 1, 1),
        ("黄浦区", None, 7, 3, 2, 1, 0, 1, 0, 2),
        (None, None, 1, 1, 0, 0, 1, 0, 0, 0),  # the camera case with no grid
    ]
    assert [rates(r) for r in report.rows] == [
        (0.0, None, 0.0, 0.5),
        (pytest.approx(3 / 7), pytest.approx(2 / 3), pytest.approx(1 / 7), 0.0),
        (1.0, None, 0.0, 0.0),  # closed, but on time or not is not known
    ]
    assert counts(report.overall) == ("*", None, 10, 4, 2, 1, 1, 1, 1, 3)
    assert rates(report.overall) == (0.4, pytest.approx(2 / 3), 0.1, 0.1)
    assert (report.since, report.until, report.by, report.level) == (MAY.since, MAY.until, "district", "major")


def test_per_street_within_its_district(stats: CaseStats) -> None:
    assert [counts(r) for r in stats.report(MAY, "street").rows] == [
        ("南京东路街道", "黄浦区", 5, 2, 1, 1, 0, 0, 0, 1),
        ("南京西路街道", "静安区", 2, 0, 0, 0, 0, 0, 1, 1),
        ("外滩街道", "黄浦区", 2, 1, 1, 0, 0, 1, 0, 1),
        (None, None, 1, 1, 0, 0, 1, 0, 0, 0),
    ]


def test_per_major_and_minor_category(stats: CaseStats) -> None:
    major = stats.report(MAY, "category")
    assert [counts(r) for r in major.rows] == [
        ("02", None, 1, 0, 0, 0, 0, 0, 0, 1),
        ("03", None, 1, 1, 1, 0, 0, 1, 0, 0),
        ("05", None, 8, 3, 1, 1, 1, 0, 1, 2),
    ]
    assert rates(major.rows[2]) == (3 / 8, 0.5, 0.0, 1 / 8)
    minor = stats.report(MAY, "category", "minor")
    assert minor.level == "minor"
    assert [counts(r) for r in minor.rows] == [
        ("0201", "02", 1, 0, 0, 0, 0, 0, 0, 1),
        ("0301", "03", 1, 1, 1, 0, 0, 1, 0, 0),
        ("0501", "05", 3, 1, 1, 0, 0, 0, 0, 1),
        ("0502", "05", 1, 1, 0, 1, 0, 0, 0, 0),
        ("0505", "05", 4, 1, 0, 0, 1, 0, 1, 1),  # a third-level 050501 counts in its minor class
    ]


def test_per_source(stats: CaseStats) -> None:
    assert [counts(r) for r in stats.report(MAY, "source").rows] == [
        ("camera", None, 4, 1, 0, 0, 1, 0, 0, 2),
        ("citizen", None, 2, 0, 0, 0, 0, 0, 1, 1),
        ("grid_worker", None, 3, 2, 2, 0, 0, 1, 0, 0),
        ("hotline", None, 1, 1, 0, 1, 0, 0, 0, 0),
    ]
    assert stats.report(MAY, "source", "minor").level == "major"  # the level only applies to categories


def test_a_range_with_no_cases_has_no_rates(stats: CaseStats) -> None:
    empty = stats.report(
        StatsRange(since=datetime(2026, 1, 1, tzinfo=UTC), until=datetime(2026, 4, 1, tzinfo=UTC)), "district"
    )
    assert empty.rows == []
    assert counts(empty.overall) == ("*", None, 0, 0, 0, 0, 0, 0, 0, 0)
    assert rates(empty.overall) == (None, None, None, None)


def test_the_false_alarm_rate_per_rule_and_camera(stats: CaseStats) -> None:
    answer = stats.false_alarm_rates(MAY)
    assert [(r.rule_id, r.camera_id, r.cases, r.false_alarms, r.rate) for r in answer.rows] == [
        ("fence", "cam-7", 1, 1, 1.0),
        ("stall", "cam-7", 2, 1, 0.5),  # the April false alarm is outside the range
        ("stall", "cam-8", 1, 0, 0.0),
    ]
    assert [(r.rule_id, r.camera_id, r.cases, r.false_alarms, r.rate) for r in answer.rules] == [
        ("fence", "", 1, 1, 1.0),
        ("stall", "", 3, 1, pytest.approx(1 / 3)),
    ]
    april = stats.false_alarm_rates(StatsRange(since=MAY.since - 30 * DAY, until=MAY.since))
    assert [(r.rule_id, r.cases, r.false_alarms) for r in april.rows] == [("stall", 1, 1)]


INDEXED_RANGE = "SEARCH cases USING INDEX cases_reported (reported_at>? AND reported_at<?)"
SQLITE_ONLY = pytest.mark.parametrize("store_targets", ["sqlite"], indirect=True)  # SQLite's own plan text


@pytest.mark.parametrize(
    ("by", "level"), [("district", "major"), ("street", "major"), ("category", "minor"), ("source", "major")]
)
@SQLITE_ONLY
def test_the_date_range_goes_through_the_reported_index(stats: CaseStats, by: GroupBy, level: CategoryLevel) -> None:
    plan = stats.query_plan(*stats.stats_query(MAY, by, level))
    assert INDEXED_RANGE in plan, plan
    assert not any(step.startswith("SCAN") for step in plan), plan  # never the whole table


@SQLITE_ONLY
def test_the_false_alarm_range_goes_through_the_reported_index(stats: CaseStats) -> None:
    plan = stats.query_plan(*stats.false_alarm_query(MAY))
    assert INDEXED_RANGE in plan, plan
    assert not any(step.startswith("SCAN") for step in plan), plan


def test_a_range_is_ordered_and_at_most_a_year() -> None:
    with pytest.raises(ValidationError, match="until must be after since"):
        StatsRange(since=MAY.until, until=MAY.since)
    with pytest.raises(ValidationError, match="until must be after since"):
        StatsRange(since=MAY.since, until=MAY.since)
    leap_year = StatsRange(since=datetime(2028, 1, 1, tzinfo=LOCAL), until=datetime(2029, 1, 1, tzinfo=LOCAL))
    assert leap_year.until - leap_year.since == 366 * DAY
    with pytest.raises(ValidationError, match="at most 366 days"):
        StatsRange(since=MAY.since, until=MAY.since + 367 * DAY)
    with pytest.raises(ValidationError, match="timezone"):
        StatsRange(since=datetime(2026, 5, 1), until=datetime(2026, 6, 1))


def test_dates_are_the_citys_midnight_and_datetimes_need_a_zone() -> None:
    assert parse_moment("2026-05-01") == datetime(2026, 5, 1, tzinfo=LOCAL)
    assert parse_moment("2026-05-01") == datetime(2026, 4, 30, 16, tzinfo=UTC)
    assert parse_moment("2026-05-01T08:30:00Z") == datetime(2026, 5, 1, 8, 30, tzinfo=UTC)
    assert parse_moment("2026-05-01T08:30+08:00") == datetime(2026, 5, 1, 0, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="no zone"):
        parse_moment("2026-05-01T08:30:00")
    with pytest.raises(ValueError, match=r"month must be in 1\.\.12"):
        parse_moment("2026-13-01")
