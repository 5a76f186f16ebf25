"""Arming windows: whether a rule is armed at a given instant, in the rule's own time zone."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from rules.schema import WEEKDAYS, ArmingWindow

logger = logging.getLogger(__name__)


def _clock(hhmm: str) -> time:
    hours, minutes = hhmm.split(":")
    return time(int(hours), int(minutes))


@dataclass(frozen=True, slots=True)
class _Window:
    days: frozenset[int]  # Monday = 0, as datetime.weekday()
    start: time
    end: time

    def contains(self, weekday: int, at: time) -> bool:
        if self.start < self.end:
            return weekday in self.days and self.start <= at < self.end
        # past midnight: the evening part belongs to the start day, the morning part to the day after it
        if at >= self.start:
            return weekday in self.days
        return at < self.end and (weekday - 1) % 7 in self.days


@dataclass(frozen=True, slots=True)
class ArmingSchedule:
    """No windows means always armed. A window's `start` is inclusive, its `end` exclusive."""

    windows: tuple[_Window, ...]
    tz: ZoneInfo

    @classmethod
    def build(cls, windows: Sequence[ArmingWindow], timezone: str) -> ArmingSchedule:
        return cls(
            windows=tuple(
                _Window(frozenset(WEEKDAYS.index(d) for d in w.days), _clock(w.start), _clock(w.end)) for w in windows
            ),
            tz=ZoneInfo(timezone),
        )

    def armed(self, now: datetime) -> bool:
        if now.tzinfo is None:
            raise ValueError(f"`now` must be timezone-aware, got {now.isoformat()}")
        if not self.windows:
            return True
        local = now.astimezone(self.tz)
        weekday, at = local.weekday(), local.time().replace(tzinfo=None)
        return any(w.contains(weekday, at) for w in self.windows)
