"""`sensor_sum`: the sum of the readings over a window past a limit (rainfall in an hour 小时降雨量, events counted).

The sum is over the readings of the last `window_s` seconds of reading time; it fires while the sum is `above`.
"""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import Field

from core.sensors import SensorObservation
from rules.kinds.base import CompileContext, Evaluation, KindSpec
from rules.kinds.sensor_base import Window, fmt, label, sensor_verdict
from rules.schema import SensorRuleBase

logger = logging.getLogger(__name__)


class SensorSumRule(SensorRuleBase):
    kind: Literal["sensor_sum"]
    window_s: float = Field(default=3600.0, gt=0.0, le=7 * 86_400.0)
    above: float
    max_readings: int = Field(default=100_000, ge=1, le=1_000_000)


class SensorSum:
    def __init__(self, rule: SensorSumRule) -> None:
        self.rule = rule

    def evaluate(self, obs: SensorObservation, state: object | None) -> Evaluation:
        if obs.reading is None:
            return Evaluation([])
        r = self.rule
        window = state if isinstance(state, Window) else Window(r.window_s, r.max_readings)
        window.add(obs.reading.at.timestamp(), obs.reading.value)
        total = window.total()
        fired = total > r.above
        reason = f"{label(obs)}: {fmt(total, obs.unit)} in {r.window_s:g} s, above {fmt(r.above, obs.unit)}"
        verdict = sensor_verdict(r, obs, fired, reason if fired else "", {"value": obs.reading.value, "sum": total})
        return Evaluation([verdict], window)


def compile_rule(rule: SensorSumRule, ctx: CompileContext) -> SensorSum:
    return SensorSum(rule)


KIND = KindSpec(
    "sensor_sum", SensorSumRule, compile_rule, summary="the sum of sensor readings over a window", subject="sensor"
)
