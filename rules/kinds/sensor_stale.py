"""`sensor_stale`: no reading from a sensor for `after_s` seconds (a dead battery, a cut cable, a stolen unit).

Judged as time passes (the sensor ingest ticks every sensor every second or so) against the newest reading's time;
a sensor never heard from counts from the first tick. The next reading closes the incident.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from core.sensors import SensorObservation
from rules.kinds.base import CompileContext, Evaluation, KindSpec
from rules.kinds.sensor_base import label, sensor_verdict
from rules.schema import SensorRuleBase

logger = logging.getLogger(__name__)


class SensorStaleRule(SensorRuleBase):
    kind: Literal["sensor_stale"]
    after_s: float = Field(default=900.0, gt=0.0, le=7 * 86_400.0)
    close_after_visits: int | None = Field(default=1, ge=1, le=100_000)


@dataclass(slots=True)
class StaleState:
    last: float  # epoch seconds of the newest reading (or of the first tick, for a sensor never heard from)
    heard: bool


class SensorStale:
    def __init__(self, rule: SensorStaleRule) -> None:
        self.rule = rule

    def evaluate(self, obs: SensorObservation, state: object | None) -> Evaluation:
        now = obs.at.timestamp()
        current = state if isinstance(state, StaleState) else None
        if obs.reading is not None:
            last = now if current is None or not current.heard else max(current.last, now)
            return Evaluation([sensor_verdict(self.rule, obs, False, "", {})], StaleState(last, True))
        if current is None:
            return Evaluation([], StaleState(now, False))
        quiet = now - current.last
        fired = quiet >= self.rule.after_s
        what = "no reading" if current.heard else "never heard from"
        reason = f"{label(obs)}: {what} for {quiet:.0f} s (stale after {self.rule.after_s:g} s)" if fired else ""
        return Evaluation([sensor_verdict(self.rule, obs, fired, reason, {"quiet_s": quiet})], current)


def compile_rule(rule: SensorStaleRule, ctx: CompileContext) -> SensorStale:
    return SensorStale(rule)


KIND = KindSpec(
    "sensor_stale",
    SensorStaleRule,
    compile_rule,
    summary="no reading from a sensor for a while",
    subject="sensor",
    ticks=True,
)
