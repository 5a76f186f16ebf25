"""The case store's deadlines from the working-day calendar and the 1-3-5 policy (`intake.calendar`,
`intake.deadlines`): a year the calendar does not know gives no deadline and says so on the case."""

from __future__ import annotations

import logging
from datetime import datetime

from intake.calendar import UnknownCalendarYear, WorkCalendar
from intake.case_model import Complexity
from intake.deadlines import DeadlinePolicy, Deadlines, compute_deadlines

logger = logging.getLogger(__name__)


class CalendarDeadlines:
    """`DeadlineRules` of the case store."""

    def __init__(self, policy: DeadlinePolicy, calendar: WorkCalendar) -> None:
        self.policy = policy
        self.calendar = calendar

    def initial(self, category: str, complexity: Complexity, reported_at: datetime) -> Deadlines | str:
        try:
            return compute_deadlines(self.policy, category, complexity, reported_at, self.calendar)
        except UnknownCalendarYear as exc:
            logger.warning("no deadline for a %s case reported %s: %s", category, reported_at.isoformat(), exc)
            return str(exc)

    def extended(self, deadlines: Deadlines, workdays: int) -> Deadlines | str:
        try:
            return deadlines.extended(workdays, self.calendar)
        except UnknownCalendarYear as exc:
            return str(exc)

    def resumed(self, deadlines: Deadlines, suspended_at: datetime, resumed_at: datetime) -> Deadlines | str:
        try:
            return deadlines.after_suspension(suspended_at, resumed_at, self.calendar)
        except UnknownCalendarYear as exc:
            return str(exc)
