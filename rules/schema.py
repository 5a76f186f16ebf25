"""The parts every rule kind shares: strict field types, zones, arming windows, confirmation and `BaseRule`.

Unknown keys are errors everywhere. Each kind's own model lives in its module under `rules/kinds/`, and
`rules.registry` lists them; a rule file is `{"rules": [rule, ...]}` with the kind chosen by `kind`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Annotated, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import shapely
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError, to_json
from shapely.geometry import Polygon

from core.events import Severity

logger = logging.getLogger(__name__)

RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
CATEGORY_PATTERN = r"^[0-9]+$"

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)


def _matching(pattern: str, what: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.match(value):
            raise PydanticCustomError(
                "pattern_mismatch", "expected {what}, got {value}", {"what": what, "value": repr(value)}
            )
        return value

    return AfterValidator(check)


def _unquoted_clock(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        hhmm = f"{value // 60:02d}:{value % 60:02d}"
        raise PydanticCustomError(
            "clock_unquoted",
            'write the time in quotes, e.g. "{hhmm}": YAML reads an unquoted {hhmm} as the number {value}',
            {"hhmm": hhmm, "value": value},
        )
    return value


def _unquoted_category(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        raise PydanticCustomError(
            "category_unquoted",
            'write the category code in quotes, e.g. "0501": YAML read it as the number {value}',
            {"value": value},
        )
    return value


RuleId = Annotated[
    str,
    _matching(RULE_ID_PATTERN, "a rule id of lowercase letters, digits, '-' and '_'"),
    WithJsonSchema({"type": "string", "pattern": RULE_ID_PATTERN}),
]
ClockTime = Annotated[
    str,
    BeforeValidator(_unquoted_clock),
    _matching(CLOCK_PATTERN, 'a time "HH:MM" from "00:00" to "23:59"'),
    WithJsonSchema({"type": "string", "pattern": CLOCK_PATTERN}),
]
Category = Annotated[
    str,
    BeforeValidator(_unquoted_category),
    _matching(CATEGORY_PATTERN, "a category code of digits such as '0501'"),
    WithJsonSchema({"type": "string", "pattern": CATEGORY_PATTERN}),
]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Point = tuple[Unit, Unit]
Name = Annotated[str, Field(min_length=1)]

# Which point of a box must lie in the zone; `any_corner`: any part of the box overlaps the zone.
Anchor = Literal["bottom_center", "center", "top_center", "any_corner"]
ANCHORS: tuple[Anchor, ...] = get_args(Anchor)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArmingWindow(_Strict):
    """Armed on `days` from `start` to `end`, local time; an `end` before `start` runs past midnight."""

    days: tuple[Weekday, ...] = Field(default=WEEKDAYS, min_length=1)
    start: ClockTime
    end: ClockTime

    @model_validator(mode="after")
    def _not_empty(self) -> ArmingWindow:
        if self.start == self.end:
            raise PydanticCustomError(
                "window_empty",
                "start and end are both {start}: leave out `armed` to be armed all day",
                {"start": self.start},
            )
        return self


class Zone(_Strict):
    """A polygon in normalised frame coordinates: (x, y) with 0..1 from the top-left corner."""

    name: Name
    polygon: tuple[Point, ...] = Field(json_schema_extra={"minItems": 3})

    @field_validator("polygon")
    @classmethod
    def _simple_polygon(cls, points: tuple[Point, ...]) -> tuple[Point, ...]:
        if len(points) < 3:
            raise PydanticCustomError(
                "polygon_too_short", "a polygon needs at least 3 points, got {n}", {"n": len(points)}
            )
        shape = Polygon(points)
        if not shape.is_valid:
            raise PydanticCustomError(
                "polygon_invalid",
                "polygon is not a simple polygon: {reason}",
                {"reason": shapely.is_valid_reason(shape)},
            )
        if shape.area <= 0.0:
            raise PydanticCustomError("polygon_empty", "polygon has zero area", {})
        return points


class Confirm(_Strict):
    """N-of-M confirmation: an incident opens once the rule fired on `hits` of the last `of` visits."""

    hits: int = Field(default=1, ge=1, le=100)
    of: int = Field(default=1, ge=1, le=100)

    @model_validator(mode="after")
    def _hits_fit(self) -> Confirm:
        if self.hits > self.of:
            raise PydanticCustomError(
                "confirm_impossible",
                "hits {hits} is more than of {of}: at most {of} of the last {of} visits can fire",
                {"hits": self.hits, "of": self.of},
            )
        return self


class Recheck(_Strict):
    """Re-check before filing (二次识别): a confirmed incident waits for a visit `after_s` seconds later; only if
    that visit still sees it does it open (and become a case); if not, it is dropped and counted."""

    after_s: float = Field(ge=1.0, le=7 * 86_400.0)


class RuleCore(_Strict):
    """What every rule kind has, camera or sensor: identity, arming, the incident policy, category and severity."""

    id: RuleId
    name: str = ""
    armed: tuple[ArmingWindow, ...] = ()
    timezone: str = "Asia/Shanghai"
    # the least time between two emitted updates of one incident (an update carries fresh evidence)
    cooldown_s: float = Field(default=60.0, ge=0.0)
    confirm: Confirm = Field(default_factory=lambda: Confirm())
    # an open incident closes when nothing is seen for close_after_s, or for close_after_visits visits in a row
    close_after_s: float = Field(default=180.0, gt=0.0, le=7 * 86_400.0)
    close_after_visits: int | None = Field(default=None, ge=1, le=100_000)
    category: Category = ""
    severity: Severity = Severity.minor
    enabled: bool = True

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise PydanticCustomError(
                "timezone_unknown",
                "unknown time zone {name}: expected an IANA name such as 'Asia/Shanghai'",
                {"name": repr(name)},
            ) from None
        return name

    def fingerprint(self) -> str:
        """A digest of the whole definition: equal for an unchanged rule after a reload, so its state is kept."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:32]


class BaseRule(RuleCore):
    """What every camera rule kind has: the cameras it watches (`*`: all)."""

    cameras: tuple[Name, ...] = Field(default=("*",), min_length=1)
    recheck: Recheck | None = None

    def covers(self, camera_id: str) -> bool:
        return "*" in self.cameras or camera_id in self.cameras

    def fingerprint(self) -> str:
        # the JSON in the order the fields had before sensor rules split off `RuleCore` (cameras after name), so a
        # camera rule keeps its fingerprint, and its saved state, across that change
        data = self.model_dump()
        ordered: dict[str, object] = {}
        if data.get("recheck") is None:
            data.pop("recheck", None)  # a rule without a re-check keeps the fingerprint it had before the option
        for key, value in data.items():
            if key != "cameras":
                ordered[key] = value
            if key == "name":
                ordered["cameras"] = data["cameras"]
        return hashlib.sha256(to_json(ordered)).hexdigest()[:32]


class SensorRuleBase(RuleCore):
    """What every sensor rule kind has: the sensors it watches (`*`: all) instead of cameras."""

    sensors: tuple[Name, ...] = Field(min_length=1)

    def covers_sensor(self, sensor_id: str) -> bool:
        return "*" in self.sensors or sensor_id in self.sensors


class ZoneFilter(_Strict):
    """Which detections count: classes (model labels), least confidence and box area (fraction of the frame),
    and which point of the box must lie in the zone."""

    zone: Zone
    classes: tuple[Name, ...] = Field(min_length=1)
    min_confidence: Unit = 0.4
    min_area: Unit = 0.0
    anchor: Anchor = "bottom_center"
