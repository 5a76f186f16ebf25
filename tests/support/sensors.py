"""Builders for sensor tests: a rule engine from rule-file text, a registry, an ingest with a recording sink."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.events import Event, EventState
from core.sensors import Reading
from ingest.sensor_ingest import SensorIngest
from ingest.sensors import Sensor
from rules.engine import RuleEngine
from rules.loader import load_rule_files

T0 = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)

THRESHOLD_RULES = """\
rules:
  - id: underpass-flood
    kind: sensor_threshold
    sensors: [wl-07]
    above: 3.5
    clear_below: 3.2
    category: "0406"
    severity: major
"""


def water_level(sensor_id: str = "wl-07", cameras: Sequence[str] = ()) -> Sensor:
    return Sensor(
        id=sensor_id,
        name="人民路下穿积水",
        kind="water_level",
        unit="m",
        grid_code="310101001001",
        lon=121.4737,
        lat=31.2304,
        cameras=tuple(cameras),
        range=(0.0, 10.0),
    )


def engine_of(text: str, folder: Path) -> RuleEngine:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sensors.yaml"
    path.write_text(text, encoding="utf-8")
    return RuleEngine(load_rule_files([path]), [])


def readings(values: Sequence[float], sensor_id: str = "wl-07", step_s: float = 10.0) -> list[Reading]:
    return [Reading(sensor_id, T0 + timedelta(seconds=i * step_s), v) for i, v in enumerate(values)]


class FixedClock:
    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return 0.0


class RecordingSink:
    """Keeps every event it is given, in order. Thread-safe."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def emit(self, event: Event, blobs: Mapping[str, bytes]) -> None:
        with self._lock:
            self.events.append(event)

    def states(self) -> list[EventState]:
        with self._lock:
            return [e.state for e in self.events]


def ingest_of(
    engine: RuleEngine,
    sink: RecordingSink,
    *,
    max_queue: int = 100_000,
    sensors: Sequence[Sensor] = (),
    tick_s: float = 1.0,
) -> SensorIngest:
    return SensorIngest(
        list(sensors) or [water_level()], lambda: engine, sink, FixedClock(), max_queue=max_queue, tick_s=tick_s
    )
