"""Statistics of the loop for the command center (结案率, 按期结案率, 返工率, 延期率), and each camera rule's
false-alarm rate for rule authors."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import ValidationError

from api.deps import CasesDep, RuleAuthorDep, ViewerDep
from api.models import AUTH_ERRORS, Unprocessable
from intake.stats import (
    CaseStats,
    CategoryLevel,
    FalseAlarmReport,
    GroupBy,
    StatsRange,
    StatsReport,
    default_range,
    parse_moment,
)

logger = logging.getLogger(__name__)

router = APIRouter(tags=["stats"])

DEFAULT_DAYS = 30
# a date, or a datetime (seconds and fractions optional); a datetime without a zone is refused saying so
MOMENT_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?$"
)
RANGE_ERRORS: dict[int | str, dict[str, object]] = {422: {"model": Unprocessable}, **AUTH_ERRORS}
Since = Annotated[
    str | None,
    Query(
        pattern=MOMENT_PATTERN,
        description="from (inclusive): an ISO date (midnight, Asia/Shanghai) or a datetime with a zone;"
        " default: 30 days before `until`",
        examples=["2026-05-01", "2026-05-01T00:00:00+08:00"],
    ),
]
Until = Annotated[
    str | None,
    Query(
        pattern=MOMENT_PATTERN,
        description="to (exclusive), as `since`; default: now. At most 366 days after `since`",
        examples=["2026-06-01"],
    ),
]


def stats_range(since: str | None, until: str | None) -> StatsRange:
    """The range the caller asked for, the last 30 days by default; 422 for a bad date or range."""
    try:
        end = parse_moment(until) if until is not None else datetime.now(UTC)
        if since is None:
            return default_range(end, DEFAULT_DAYS)
        return StatsRange(since=parse_moment(since), until=end)
    except ValidationError as exc:
        detail = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail) from None
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"bad date: {exc}") from None


@router.get("/api/v1/stats", operation_id="case_stats", responses=RANGE_ERRORS)
def case_stats(
    _caller: ViewerDep,
    cases: CasesDep,
    since: Since = None,
    until: Until = None,
    by: Annotated[GroupBy, Query(description="the grouping")] = "district",
    level: Annotated[CategoryLevel, Query(description="for `by=category`: major (2 digits) or minor (4)")] = "major",
) -> StatsReport:
    """Per group, cases reported in [since, until): total, closed (结案), closed on time (按期结案), reworked
    (返工), extended (延期), and their rates; a rate is null when its denominator is 0."""
    window = stats_range(since, until)
    return CaseStats(cases.db).report(window, by, level)


@router.get("/api/v1/rules/false-alarms", operation_id="false_alarm_rates", responses=RANGE_ERRORS)
def false_alarm_rates(
    _caller: RuleAuthorDep, cases: CasesDep, since: Since = None, until: Until = None
) -> FalseAlarmReport:
    """Per rule and camera, camera cases reported in [since, until) and how many operators marked as false
    alarms (误报), with the rate; and each rule's totals over all its cameras."""
    return CaseStats(cases.db).false_alarm_rates(stats_range(since, until))
