"""`sensor_rate`: a value changing fast, per minute over a window (water rising 水位上涨, a pressure drop).

The rate is (newest - oldest reading) per minute over the readings of the last `window_s` seconds of reading time,
judged once they span `min_span_s`. `rise_per_min` fires on a rise at least that fast, `fall_per_min` on a fall.
"""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from core.sensors import SensorObservation
from rules.kinds.base import CompileContext, Evaluation, KindSpec
from rules.kinds.sensor_base import Window, fmt, label, sensor_verdict
from rules.schema import SensorRuleBase

logger = logging.getLogger(__name__)


class SensorRateRule(SensorRuleBase):
    kind: Literal["sensor_rate"]
    window_s: float = Field(default=300.0, gt=0.0, le=86_400.0)
    min_span_s: float = Field(default=60.0, ge=0.0, le=86_400.0)
    rise_per_min: float | None = Field(default=None, gt=0.0)
    fall_per_min: float | None = Field(default=None, gt=0.0)
    max_readings: int = Field(default=10_000, ge=2, le=1_000_000)

    @model_validator(mode="after")
    def _has_rate(self) -> SensorRateRule:
        if self.rise_per_min is None and self.fall_per_min is None:
            raise PydanticCustomError("no_rate", "give rise_per_min, fall_per_min or both", {})
        if self.min_span_s > self.window_s:
            raise PydanticCustomError(
                "span_past_window",
                "min_span_s {span} is more than window_s {window}",
                {"span": self.min_span_s, "window": self.window_s},
            )
        return self


class SensorRate:
    def __init__(self, rule: SensorRateRule) -> None:
        self.rule = rule

    def evaluate(self, obs: SensorObservation, state: object | None) -> Evaluation:
        if obs.reading is None:
            return Evaluation([])
        r = self.rule
        window = state if isinstance(state, Window) else Window(r.window_s, r.max_readings)
        window.add(obs.reading.at.timestamp(), obs.reading.value)
        rate = window.rate_per_min(r.min_span_s)
        if rate is None:
            return Evaluation([sensor_verdict(r, obs, False, "", {})], window)
        rising = r.rise_per_min is not None and rate >= r.rise_per_min
        falling = r.fall_per_min is not None and rate <= -r.fall_per_min
        per_min = f"{fmt(rate, obs.unit)}/min over {window.times[-1] - window.times[0]:.0f} s"
        reason = f"{label(obs)} {'rising' if rising else 'falling' if falling else 'changing'} {per_min}"
        verdict = sensor_verdict(r, obs, rising or falling, reason, {"value": obs.reading.value, "rate_per_min": rate})
        return Evaluation([verdict], window)


def compile_rule(rule: SensorRateRule, ctx: CompileContext) -> SensorRate:
    return SensorRate(rule)


KIND = KindSpec(
    "sensor_rate", SensorRateRule, compile_rule, summary="a sensor value changing fast, per minute", subject="sensor"
)
