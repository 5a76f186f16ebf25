"""Sensor readings and what the rules see of them, and the seam through which readings enter the system.

A `Reading` is one value of one sensor at one time. The ingest (MQTT, HTTP) validates readings against the sensor
registry and offers them to a `ReadingIntake`; its consumer turns each into a `SensorObservation` for the sensor
rule kinds. An observation without a reading is a tick: the time passing, for the kinds that judge silence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of one sensor, at an aware time (the sensor's own, or the time it was received)."""

    sensor_id: str
    at: datetime
    value: float


@dataclass(frozen=True, slots=True)
class SensorObservation:
    """What the sensor rules evaluate: one reading of one sensor, or (`reading` None) a tick at `at`."""

    sensor_id: str
    at: datetime
    reading: Reading | None = None
    unit: str = ""
    name: str = ""

    @classmethod
    def of(cls, reading: Reading, unit: str = "", name: str = "") -> SensorObservation:
        return cls(reading.sensor_id, reading.at, reading, unit, name)


@dataclass(frozen=True, slots=True)
class Offer:
    """The answer to offering readings: how many were taken, and why the rest were not ("" when all were)."""

    taken: int
    refused: str = ""


class ReadingIntake(Protocol):
    """Where validated readings go (a bounded queue in front of the sensor rules). Thread-safe; never blocks."""

    def known(self, sensor_id: str) -> bool:
        """True for an enabled sensor of the registry."""
        ...

    def check(self, sensor_id: str, value: float) -> str:
        """Why this value cannot be a reading of the sensor (out of its range, not finite); "" when it can."""
        ...

    def reject(self, sensor_id: str, reason: str, count: int = 1) -> None:
        """Count readings refused before they were offered (malformed, out of range), per sensor and reason."""
        ...

    def offer(self, readings: Sequence[Reading]) -> Offer:
        """Take all of these readings or none (the queue is full): never some of a batch."""
        ...
