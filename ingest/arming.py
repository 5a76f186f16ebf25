"""Arming windows of a camera, written as one string each: `08:00-20:00`, `mon-fri 07:00-19:00`,
`sat,sun 22:00-06:00`.

Days are `mon` .. `sun`, single or as ranges (`fri-mon` wraps past Sunday), joined by `,`; no days means every
day. Times are `HH:MM`, 24-hour; the end may be `24:00`. An end before the start runs past midnight, into the
next day: `fri 22:00-06:00` covers Friday 22:00 to Saturday 06:00. A window is half-open: armed at its start,
no longer at its end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY = "(?:" + "|".join(DAYS) + ")"
_DAY_SPEC = rf"{_DAY}(?:-{_DAY})?(?:,{_DAY}(?:-{_DAY})?)*"
_WINDOW = re.compile(rf"^(?:(?P<days>{_DAY_SPEC}) )?(?P<start>\d\d:\d\d)-(?P<end>\d\d:\d\d)$")
_CLOCK = re.compile(r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")
ALL_DAYS = frozenset(range(7))


@dataclass(frozen=True, slots=True)
class ArmingWindow:
    """Armed on `days` (0 = Monday) from `start` to `end`, in minutes after midnight, wall clock."""

    days: frozenset[int]
    start: int
    end: int

    @staticmethod
    def parse(text: str) -> ArmingWindow:
        """The window `text` spells; ValueError saying what was expected otherwise."""
        return _parse(text)

    def __str__(self) -> str:
        clock = f"{_clock(self.start)}-{_clock(self.end)}"
        return clock if self.days == ALL_DAYS else f"{_days_text(self.days)} {clock}"

    def covers(self, moment: datetime) -> bool:
        """Whether `moment`'s wall-clock time (in its own time zone, if any) falls inside this window."""
        day = moment.weekday()
        minute = moment.hour * 60 + moment.minute + (moment.second + moment.microsecond / 1e6) / 60
        if self.start < self.end:
            return day in self.days and self.start <= minute < self.end
        # past midnight: the evening part on the window's own days, the morning part on the day after each
        return (day in self.days and minute >= self.start) or ((day - 1) % 7 in self.days and minute < self.end)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _days_text(days: frozenset[int]) -> str:
    """Consecutive days as ranges: {0, 1, 2, 3, 4, 6} -> `mon-fri,sun`."""
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(DAYS[r[0]] if len(r) == 1 else f"{DAYS[r[0]]}-{DAYS[r[-1]]}" for r in runs)


def _day_set(spec: str) -> frozenset[int]:
    days: set[int] = set()
    for part in spec.split(","):
        first, _, last = part.partition("-")
        a, b = DAYS.index(first), DAYS.index(last or first)
        days.update(d % 7 for d in range(a, b + 1 if b >= a else b + 8))
    return frozenset(days)


@lru_cache(maxsize=4096)  # a fleet repeats a handful of windows over thousands of cameras
def _parse(text: str) -> ArmingWindow:
    match = _WINDOW.match(text)
    if match is None:
        raise ValueError(f"arming window {text!r}: expected HH:MM-HH:MM, optionally after days: 'mon-fri 07:00-19:00'")
    start, end = match["start"], match["end"]
    for clock, is_start in ((start, True), (end, False)):
        if not _CLOCK.match(clock) or (is_start and clock == "24:00"):
            raise ValueError(f"arming window {text!r}: {clock} is not a time of day (00:00 .. 23:59, or 24:00 as end)")
    begin, finish = (int(c[:2]) * 60 + int(c[3:]) for c in (start, end))
    if begin == finish:
        raise ValueError(f"arming window {text!r} is empty: for all day write 00:00-24:00")
    days = _day_set(match["days"]) if match["days"] else ALL_DAYS
    return ArmingWindow(days, begin, finish)
