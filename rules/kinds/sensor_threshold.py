"""`sensor_threshold`: a value past a threshold, with hysteresis (water level 积水, smoke 烟感, gas, noise).

`above: 3.5, clear_below: 3.2` fires once a reading is above 3.5 and keeps firing until one is below 3.2, so a
value wavering around 3.5 raises one incident, not one per crossing; `below` / `clear_above` the other way round.
Without a clear value the threshold itself clears. The incident closes at the first reading that clears
(`close_after_visits: 1`, the default here).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from core.sensors import SensorObservation
from rules.kinds.base import CompileContext, Evaluation, KindSpec
from rules.kinds.sensor_base import fmt, label, sensor_verdict
from rules.schema import SensorRuleBase

logger = logging.getLogger(__name__)


class SensorThresholdRule(SensorRuleBase):
    kind: Literal["sensor_threshold"]
    above: float | None = None
    clear_below: float | None = None
    below: float | None = None
    clear_above: float | None = None
    close_after_visits: int | None = Field(default=1, ge=1, le=100_000)

    @field_validator("clear_below")
    @classmethod
    def _clear_below_fits(cls, value: float | None, info: ValidationInfo) -> float | None:
        above = info.data.get("above")
        if value is not None and above is None:
            raise PydanticCustomError("clear_without_threshold", "clear_below needs above", {})
        if value is not None and above is not None and value > above:
            raise PydanticCustomError(
                "clear_past_threshold",
                "clear_below {value} is more than above {above}",
                {"value": value, "above": above},
            )
        return value

    @field_validator("below")
    @classmethod
    def _one_direction(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and info.data.get("above") is not None:
            raise PydanticCustomError("two_thresholds", "give above or below, not both: one rule each", {})
        return value

    @field_validator("clear_above")
    @classmethod
    def _clear_above_fits(cls, value: float | None, info: ValidationInfo) -> float | None:
        below = info.data.get("below")
        if value is not None and below is None:
            raise PydanticCustomError("clear_without_threshold", "clear_above needs below", {})
        if value is not None and below is not None and value < below:
            raise PydanticCustomError(
                "clear_past_threshold",
                "clear_above {value} is less than below {below}",
                {"value": value, "below": below},
            )
        return value

    @model_validator(mode="after")
    def _has_threshold(self) -> SensorThresholdRule:
        if self.above is None and self.below is None:
            raise PydanticCustomError("no_threshold", "give a threshold: above (or below)", {})
        return self


@dataclass(slots=True)
class ThresholdState:
    active: bool = False


class SensorThreshold:
    def __init__(self, rule: SensorThresholdRule) -> None:
        self.rule = rule

    def _limits(self) -> tuple[float, float]:
        """(threshold, clear value); without a clear value the threshold clears."""
        r = self.rule
        if r.above is not None:
            return r.above, r.above if r.clear_below is None else r.clear_below
        below = float(r.below) if r.below is not None else 0.0  # the model requires one of above and below
        return below, below if r.clear_above is None else r.clear_above

    def _next(self, active: bool, value: float) -> bool:
        limit, clear = self._limits()
        if self.rule.above is not None:
            return value >= clear if active else value > limit
        return value <= clear if active else value < limit

    def evaluate(self, obs: SensorObservation, state: object | None) -> Evaluation:
        if obs.reading is None:
            return Evaluation([])
        current = state if isinstance(state, ThresholdState) else ThresholdState()
        value, r = obs.reading.value, self.rule
        current.active = self._next(current.active, value)
        side, back = ("above", "below") if r.above is not None else ("below", "above")
        limit, clear = self._limits()
        now = fmt(value, obs.unit)
        reason = (
            f"{label(obs)} {now} {side} {fmt(limit, obs.unit)} (clears {back} {fmt(clear, obs.unit)})"
            if current.active
            else f"{label(obs)} {now}"
        )
        verdict = sensor_verdict(r, obs, current.active, reason, {"value": value, "threshold": limit})
        return Evaluation([verdict], current)


def compile_rule(rule: SensorThresholdRule, ctx: CompileContext) -> SensorThreshold:
    return SensorThreshold(rule)


KIND = KindSpec(
    "sensor_threshold",
    SensorThresholdRule,
    compile_rule,
    summary="a sensor value past a threshold, with hysteresis",
    subject="sensor",
)
