"""What the sensor rule kinds share: a verdict about one sensor, and a time window of its recent readings.

A sensor verdict carries the sensor id where a camera verdict carries the camera id (the incident tracker keys
incidents by rule and subject, whichever it is); it has no zone, no subjects and no overlay: there is no picture.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections import deque
from dataclasses import dataclass, field

from core.sensors import SensorObservation
from core.types import Verdict
from rules.schema import SensorRuleBase

logger = logging.getLogger(__name__)


def sensor_verdict(
    rule: SensorRuleBase, obs: SensorObservation, fired: bool, reason: str, measures: dict[str, float]
) -> Verdict:
    return Verdict(
        rule_id=rule.id, camera_id=obs.sensor_id, fired=fired, measures={"count": 1.0, **measures}, reason=reason
    )


def label(obs: SensorObservation) -> str:
    return obs.name or obs.sensor_id


def fmt(value: float, unit: str) -> str:
    return f"{value:g} {unit}".rstrip() if unit else f"{value:g}"


@dataclass(slots=True)
class Window:
    """The readings of one sensor within the last `span_s` seconds of reading time (epoch seconds, in time
    order; a late reading is put in its place), at most `limit` of them: the oldest go first."""

    span_s: float
    limit: int
    times: deque[float] = field(default_factory=deque)
    values: deque[float] = field(default_factory=deque)

    def add(self, at: float, value: float) -> None:
        if self.times and at < self.times[-1]:
            i = bisect.bisect_right(self.times, at)
            self.times.insert(i, at)
            self.values.insert(i, value)
        else:
            self.times.append(at)
            self.values.append(value)
        newest = self.times[-1]
        while self.times and (self.times[0] < newest - self.span_s or len(self.times) > self.limit):
            self.times.popleft()
            self.values.popleft()

    def total(self) -> float:
        return math.fsum(self.values)

    def rate_per_min(self, min_span_s: float) -> float | None:
        """(newest - oldest value) per minute over the window; None while it spans less than `min_span_s`."""
        if len(self.times) < 2:
            return None
        span = self.times[-1] - self.times[0]
        if span < max(min_span_s, 1e-9):
            return None
        return (self.values[-1] - self.values[0]) * 60.0 / span
