from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from rules.arming import ArmingSchedule
from rules.schema import ArmingWindow

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEEKDAYS_8_TO_18 = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00"}
FRIDAY_NIGHT = {"days": ["fri"], "start": "22:00", "end": "06:00"}
SUNDAY_MIDNIGHT = {"days": ["sun"], "start": "23:00", "end": "01:00"}


def local(day: int, hhmm: str) -> datetime:
    """January 2024 in Shanghai: the 1st is a Monday, the 5th a Friday, the 6th a Saturday, the 7th Sunday."""
    hours, minutes = hhmm.split(":")
    return datetime(2024, 1, day, int(hours), int(minutes), tzinfo=SHANGHAI)


def schedule(*windows: dict[str, Any], timezone: str = "Asia/Shanghai") -> ArmingSchedule:
    return ArmingSchedule.build([ArmingWindow.model_validate(w) for w in windows], timezone)


CASES: list[tuple[str, list[dict[str, Any]], datetime, bool]] = [
    ("no windows: always armed", [], local(6, "03:00"), True),
    ("weekday at start", [WEEKDAYS_8_TO_18], local(1, "08:00"), True),
    ("weekday before start", [WEEKDAYS_8_TO_18], local(1, "07:59"), False),
    ("weekday last minute", [WEEKDAYS_8_TO_18], local(5, "17:59"), True),
    ("weekday at end (exclusive)", [WEEKDAYS_8_TO_18], local(5, "18:00"), False),
    ("saturday not in days", [WEEKDAYS_8_TO_18], local(6, "10:00"), False),
    ("friday night start", [FRIDAY_NIGHT], local(5, "22:00"), True),
    ("friday before midnight", [FRIDAY_NIGHT], local(5, "23:59"), True),
    ("saturday early morning", [FRIDAY_NIGHT], local(6, "05:59"), True),
    ("saturday at end", [FRIDAY_NIGHT], local(6, "06:00"), False),
    ("friday early morning belongs to thursday", [FRIDAY_NIGHT], local(5, "05:00"), False),
    ("saturday night not in days", [FRIDAY_NIGHT], local(6, "22:30"), False),
    ("sunday night wraps into monday", [SUNDAY_MIDNIGHT], local(8, "00:30"), True),
    ("monday night not in days", [SUNDAY_MIDNIGHT], local(8, "23:30"), False),
    ("second window matches", [WEEKDAYS_8_TO_18, FRIDAY_NIGHT], local(6, "02:00"), True),
    ("neither window", [WEEKDAYS_8_TO_18, FRIDAY_NIGHT], local(6, "12:00"), False),
]


@pytest.mark.parametrize(("windows", "now", "armed"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_arming_windows(windows: list[dict[str, Any]], now: datetime, armed: bool) -> None:
    assert schedule(*windows).armed(now) is armed


@pytest.mark.parametrize(
    ("timezone", "armed"),
    [("Asia/Shanghai", True), ("UTC", False), ("Europe/London", False), ("America/Los_Angeles", False)],
)
def test_window_is_read_in_the_rules_timezone(timezone: str, armed: bool) -> None:
    # 2024-01-01 00:30 UTC is Monday 08:30 in Shanghai, but Monday 00:30 in London and Sunday in Los Angeles
    now = datetime(2024, 1, 1, 0, 30, tzinfo=UTC)
    assert schedule(WEEKDAYS_8_TO_18, timezone=timezone).armed(now) is armed


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule(WEEKDAYS_8_TO_18).armed(datetime(2024, 1, 1, 9, 0))
