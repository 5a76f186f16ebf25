"""Statistics of the loop: 结案率, 按期结案率, 返工率, 延期率 per district, street, category or source, and each
camera rule's false-alarm rate, over the cases reported in a date range.

Pure SQL on a read-only connection beside the case store: the date range goes through the `cases_reported`
index, the figures are aggregated by the database (`json_extract` on the stored case in SQLite, `jsonb` operators in
PostgreSQL), so no case body is loaded into Python however many a range holds. Times are compared as instants
(`julianday` in SQLite, `timestamptz` in PostgreSQL), which read every ISO form pydantic writes (`Z`, `+08:00`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, computed_field, model_validator

from intake.case_store import LOCAL
from intake.db import Connection, Database, Dialect, open_database
from intake.sqlite import iso_utc

logger = logging.getLogger(__name__)

GroupBy = Literal["district", "street", "category", "source"]
CategoryLevel = Literal["major", "minor"]
MAX_RANGE = timedelta(days=366)  # a calendar year, a leap year's included
OVERALL = "*"  # the key of the row over all groups

# (the group key, the key it sits within) as SQL over `cases`, per dialect; fixed text, never built from input
_KEYS: dict[Dialect, dict[tuple[GroupBy, CategoryLevel], tuple[str, str]]] = {
    "sqlite": {
        ("district", "major"): ("json_extract(body, '$.grid_path[0]')", "NULL"),
        ("street", "major"): ("json_extract(body, '$.grid_path[1]')", "json_extract(body, '$.grid_path[0]')"),
        ("category", "major"): ("substr(category, 1, 2)", "NULL"),
        ("category", "minor"): ("substr(category, 1, 4)", "substr(category, 1, 2)"),
        ("source", "major"): ("source", "NULL"),
    },
    "postgres": {
        ("district", "major"): ("b #>> '{grid_path,0}'", "NULL"),
        ("street", "major"): ("b #>> '{grid_path,1}'", "b #>> '{grid_path,0}'"),
        ("category", "major"): ("substr(category, 1, 2)", "NULL"),
        ("category", "minor"): ("substr(category, 1, 4)", "substr(category, 1, 2)"),
        ("source", "major"): ("source", "NULL"),
    },
}

_COUNTS = """
    count(*),
    count(*) FILTER (WHERE state = 'closed'),
    count(*) FILTER (WHERE state = 'closed' AND {on_time}),
    count(*) FILTER (WHERE state = 'closed' AND {late}),
    count(*) FILTER (WHERE state = 'closed' AND (due_by IS NULL OR closed_at IS NULL)),
    count(*) FILTER (WHERE reworks > 0),
    count(*) FILTER (WHERE extensions > 0),
    count(*) FILTER (WHERE state = 'rejected')"""

_STATS_SQL: dict[Dialect, str] = {
    "sqlite": "SELECT key, parent,"
    + _COUNTS.format(
        on_time="julianday(closed_at) <= julianday(due_by)", late="julianday(closed_at) > julianday(due_by)"
    )
    + """
FROM (
    SELECT {key} AS key, {parent} AS parent, state,
        json_extract(body, '$.nodes.closed') AS closed_at,
        json_extract(body, '$.due_by') AS due_by,
        json_extract(body, '$.reworks') AS reworks,
        json_extract(body, '$.extensions') AS extensions
    FROM cases
    WHERE reported_at >= ? AND reported_at < ?
)
GROUP BY key, parent
ORDER BY key IS NULL, key, parent
""",
    "postgres": "SELECT key, parent,"
    + _COUNTS.format(on_time="closed_at <= due_by", late="closed_at > due_by")
    + """
FROM (
    SELECT {key} AS key, {parent} AS parent, state,
        (b #>> '{{nodes,closed}}')::timestamptz AS closed_at,
        (b ->> 'due_by')::timestamptz AS due_by,
        (b ->> 'reworks')::integer AS reworks,
        (b ->> 'extensions')::integer AS extensions
    FROM (SELECT state, category, source, body::jsonb AS b FROM cases WHERE reported_at >= ? AND reported_at < ?) AS c
) AS g
GROUP BY key, parent
ORDER BY key IS NULL, key, parent
""",
}

_FALSE_ALARM_SQL: dict[Dialect, str] = {
    "sqlite": """
SELECT rule_id, camera_id, count(*), count(*) FILTER (WHERE false_alarm)
FROM (
    SELECT coalesce(json_extract(body, '$.reporter.rule_id'), '') AS rule_id, camera_id,
        coalesce(json_extract(body, '$.false_alarm'), 0) AS false_alarm
    FROM cases
    WHERE reported_at >= ? AND reported_at < ? AND source = 'camera'
)
GROUP BY rule_id, camera_id
ORDER BY rule_id, camera_id
""",
    "postgres": """
SELECT rule_id, camera_id, count(*), count(*) FILTER (WHERE false_alarm)
FROM (
    SELECT coalesce(body::jsonb #>> '{reporter,rule_id}', '') AS rule_id, camera_id,
        coalesce((body::jsonb ->> 'false_alarm')::boolean, false) AS false_alarm
    FROM cases
    WHERE reported_at >= ? AND reported_at < ? AND source = 'camera'
) AS c
GROUP BY rule_id, camera_id
ORDER BY rule_id, camera_id
""",
}


def ratio(part: int, whole: int) -> float | None:
    """part / whole, or None when there is nothing to divide by."""
    return part / whole if whole else None


class StatsRange(BaseModel):
    """Cases reported at or after `since` and before `until`: `until` after `since`, at most `MAX_RANGE` apart."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    since: AwareDatetime
    until: AwareDatetime

    @model_validator(mode="after")
    def _ordered_and_bounded(self) -> Self:
        if self.until <= self.since:
            raise ValueError("until must be after since")
        if self.until - self.since > MAX_RANGE:
            raise ValueError(f"the range may span at most {MAX_RANGE.days} days")
        return self


class StatsRow(BaseModel):
    """The figures of one group. `key` is None for cases the grouping does not know (no grid path);
    `parent` is the district of a street, the major class of a minor one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str | None
    parent: str | None = None
    total: int = Field(ge=0, description="cases reported in the range")
    closed: int = Field(ge=0, description="结案: closed (including duplicates closed into another case)")
    closed_on_time: int = Field(ge=0, description="按期结案: closed at or before its due_by")
    closed_late: int = Field(ge=0, description="closed after its due_by")
    closed_no_deadline: int = Field(ge=0, description="closed without a due_by: on time or not is not known")
    reworked: int = Field(ge=0, description="返工 at least once")
    extended: int = Field(ge=0, description="延期 at least once")
    rejected: int = Field(ge=0, description="不予受理, camera false alarms included")

    @computed_field(description="结案率: closed / total")  # type: ignore[prop-decorator]
    @property
    def closure_rate(self) -> float | None:
        return ratio(self.closed, self.total)

    @computed_field(description="按期结案率: closed_on_time / closed cases with a due_by")  # type: ignore[prop-decorator]
    @property
    def on_time_rate(self) -> float | None:
        return ratio(self.closed_on_time, self.closed - self.closed_no_deadline)

    @computed_field(description="返工率: reworked / total")  # type: ignore[prop-decorator]
    @property
    def rework_rate(self) -> float | None:
        return ratio(self.reworked, self.total)

    @computed_field(description="延期率: extended / total")  # type: ignore[prop-decorator]
    @property
    def extension_rate(self) -> float | None:
        return ratio(self.extended, self.total)


class StatsReport(BaseModel):
    """The figures per group over [since, until), and over all groups together (`overall`, key `*`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    since: AwareDatetime
    until: AwareDatetime
    by: GroupBy
    level: CategoryLevel = "major"
    rows: list[StatsRow]
    overall: StatsRow


class FalseAlarmRow(BaseModel):
    """Camera cases of one rule at one camera, and how many of them operators marked as false alarms."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule_id: str
    camera_id: str = Field(description="empty in a rule's total over all its cameras")
    cases: int = Field(ge=0)
    false_alarms: int = Field(ge=0)

    @computed_field(description="false_alarms / cases")  # type: ignore[prop-decorator]
    @property
    def rate(self) -> float | None:
        return ratio(self.false_alarms, self.cases)


class FalseAlarmReport(BaseModel):
    """Per (rule, camera), and per rule over all its cameras (`rules`), of camera cases reported in the range."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    since: AwareDatetime
    until: AwareDatetime
    rows: list[FalseAlarmRow]
    rules: list[FalseAlarmRow]


class CaseStats:
    """Statistics over the case store's database, each query on its own read-only connection."""

    def __init__(self, target: Path | str | Database) -> None:
        self.db = open_database(target, "cases")

    @contextmanager
    def _reader(self) -> Iterator[Connection]:
        with closing(self.db.connect_reader()) as conn:
            yield conn

    def report(self, window: StatsRange, by: GroupBy, level: CategoryLevel = "major") -> StatsReport:
        """The loop's figures per `by` group; `level` picks major (2 digits) or minor (4) classes for categories."""
        level = level if by == "category" else "major"
        sql, params = self.stats_query(window, by, level)
        with self._reader() as conn:
            rows = [_stats_row(r) for r in conn.execute(sql, params)]
        logger.debug("stats by %s (%s) over %s..%s: %d groups", by, level, window.since, window.until, len(rows))
        return StatsReport(
            since=window.since, until=window.until, by=by, level=level, rows=rows, overall=_overall(rows)
        )

    def false_alarm_rates(self, window: StatsRange) -> FalseAlarmReport:
        """Each camera rule's false-alarm rate, per camera and over all its cameras."""
        with self._reader() as conn:
            rows = [
                FalseAlarmRow(rule_id=str(rule), camera_id=str(camera), cases=int(n), false_alarms=int(false))
                for rule, camera, n, false in conn.execute(_FALSE_ALARM_SQL[self.db.dialect], _bounds(window))
            ]
        totals: dict[str, tuple[int, int]] = {}
        for row in rows:
            cases, false = totals.get(row.rule_id, (0, 0))
            totals[row.rule_id] = (cases + row.cases, false + row.false_alarms)
        rules = [FalseAlarmRow(rule_id=r, camera_id="", cases=c, false_alarms=f) for r, (c, f) in totals.items()]
        return FalseAlarmReport(since=window.since, until=window.until, rows=rows, rules=rules)

    def stats_query(self, window: StatsRange, by: GroupBy, level: CategoryLevel) -> tuple[str, tuple[str, str]]:
        """The SQL and parameters of `report` (for EXPLAIN QUERY PLAN)."""
        dialect = self.db.dialect
        key, parent = _KEYS[dialect][(by, level if by == "category" else "major")]
        return _STATS_SQL[dialect].format(key=key, parent=parent), _bounds(window)

    def false_alarm_query(self, window: StatsRange) -> tuple[str, tuple[str, str]]:
        return _FALSE_ALARM_SQL[self.db.dialect], _bounds(window)

    def query_plan(self, sql: str, params: tuple[str, ...]) -> list[str]:
        """The steps of the database's plan for `sql`, one line each (SQLite's EXPLAIN QUERY PLAN details, or
        PostgreSQL's EXPLAIN lines)."""
        with self._reader() as conn:
            if conn.dialect == "sqlite":
                return [str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
            return [str(r[0]) for r in conn.execute("EXPLAIN " + sql, params)]


def _bounds(window: StatsRange) -> tuple[str, str]:
    return iso_utc(window.since), iso_utc(window.until)


def _stats_row(r: Sequence[Any]) -> StatsRow:
    key, parent, *counts = r
    total, closed, on_time, late, no_deadline, reworked, extended, rejected = (int(n) for n in counts)
    return StatsRow(
        key=None if key is None else str(key),
        parent=None if parent is None else str(parent),
        total=total,
        closed=closed,
        closed_on_time=on_time,
        closed_late=late,
        closed_no_deadline=no_deadline,
        reworked=reworked,
        extended=extended,
        rejected=rejected,
    )


def _overall(rows: list[StatsRow]) -> StatsRow:
    """All groups together (key `*`): every case is in exactly one group, so the counts add up."""
    return StatsRow(
        key=OVERALL,
        total=sum(r.total for r in rows),
        closed=sum(r.closed for r in rows),
        closed_on_time=sum(r.closed_on_time for r in rows),
        closed_late=sum(r.closed_late for r in rows),
        closed_no_deadline=sum(r.closed_no_deadline for r in rows),
        reworked=sum(r.reworked for r in rows),
        extended=sum(r.extended for r in rows),
        rejected=sum(r.rejected for r in rows),
    )


def parse_moment(text: str) -> datetime:
    """An ISO date (its midnight in the city, Asia/Shanghai) or an ISO datetime with a zone; ValueError else."""
    if len(text) == len("2026-05-01"):
        return datetime.combine(date.fromisoformat(text), time(), tzinfo=LOCAL)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{text!r} has no zone: add Z or +08:00")
    return moment


def default_range(now: datetime, days: int = 30) -> StatsRange:
    """The last `days` days up to `now`."""
    return StatsRange(since=now - timedelta(days=days), until=now)
