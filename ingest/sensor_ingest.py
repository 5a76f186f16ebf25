"""Sensor readings into the sensor rules: one bounded queue fed by MQTT and HTTP, one thread that evaluates.

Readings are checked against the registry before they are queued: an unknown sensor, a malformed payload, a value
that is not finite or outside the sensor's `range` is refused and counted per sensor and reason (logged at most
once a minute per sensor and reason); it never becomes an event. The queue holds at most `max_queue` readings and
never blocks a producer: when full, what is offered is refused whole (a batch is taken all or none) and counted as
`overflow` (MQTT: the message is dropped; HTTP: 503 with Retry-After, so the sender retries). Refusing the newest
rather than dropping the oldest keeps every sensor's readings in order and never un-fires an alarm already taken.

The consumer evaluates each reading in queue order (`RuleEngine.observe_sensor`), folds the verdicts into the
incident tracker (open / update / close, like camera incidents) and hands the events to the sink; every
`tick_s` it evaluates a tick for every enabled sensor (the kinds that judge silence: stale). `on_open` is called
with the sensor and the event of every incident that opens (the runtime asks for visits of its linked cameras).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from core.clock import Clock
from core.events import Event
from core.sensors import Offer, Reading, SensorObservation
from core.sink import EventSink, SinkBusyError
from incidents.events import VERBS, Place, RuleFacts, incident_event
from incidents.tracker import IncidentChange, IncidentPolicy, IncidentTracker
from ingest.sensors import Sensor
from rules.engine import RuleEngine, RuleOutcome

logger = logging.getLogger(__name__)

LOG_EVERY_S = 60.0
BATCH = 256  # readings taken off the queue at once


@dataclass
class SensorStats:
    taken: int = 0  # readings queued
    evaluated: int = 0  # readings the rules evaluated
    ticks: int = 0
    overflow: int = 0  # readings refused because the queue was full
    max_depth: int = 0
    events: int = 0
    failures: int = 0  # readings whose evaluation or delivery failed (logged)


def place_of_sensor(sensor: Sensor) -> Place:
    return Place("", sensor.name or sensor.id, sensor.grid_code, sensor.lon, sensor.lat, sensor_id=sensor.id)


class SensorIngest:
    """The `core.sensors.ReadingIntake` of the sensor registry, and the thread behind it."""

    def __init__(
        self,
        sensors: Sequence[Sensor],
        engine: Callable[[], RuleEngine],
        sink: EventSink,
        clock: Clock,
        *,
        incidents: IncidentTracker | None = None,
        max_queue: int = 100_000,
        tick_s: float = 1.0,
        on_open: Callable[[Sensor, Event], None] | None = None,
    ) -> None:
        self.sensors = {s.id: s for s in sensors if s.enabled}
        self._engine, self._sink, self._clock = engine, sink, clock
        self.incidents = incidents if incidents is not None else IncidentTracker()
        self.max_queue, self.tick_s, self._on_open = max_queue, tick_s, on_open
        self._queue: deque[Reading] = deque()
        self._cond = threading.Condition()
        self._refused: Counter[tuple[str, str]] = Counter()
        self._logged: dict[tuple[str, str], float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy = False
        self.stats = SensorStats()

    # -- ReadingIntake --------------------------------------------------------------------------------------------

    def known(self, sensor_id: str) -> bool:
        return sensor_id in self.sensors

    def check(self, sensor_id: str, value: float) -> str:
        sensor = self.sensors.get(sensor_id)
        return "unknown_sensor" if sensor is None else sensor.problem(value)

    def reject(self, sensor_id: str, reason: str, count: int = 1) -> None:
        key = (sensor_id if sensor_id in self.sensors else "?", reason)
        now = time.monotonic()
        with self._cond:
            self._refused[key] += count
            total = self._refused[key]
            last = self._logged.get(key)
            loud = last is None or now - last >= LOG_EVERY_S
            if loud:
                self._logged[key] = now
        if loud:
            logger.warning("sensor %s: reading refused (%s), %d so far", sensor_id[:64], reason, total)

    def offer(self, readings: Sequence[Reading]) -> Offer:
        if not readings:
            return Offer(0)
        with self._cond:
            if len(self._queue) + len(readings) > self.max_queue:
                self.stats.overflow += len(readings)
                full = True
            else:
                self._queue.extend(readings)
                self.stats.taken += len(readings)
                self.stats.max_depth = max(self.stats.max_depth, len(self._queue))
                self._cond.notify()
                full = False
        if full:
            for sensor_id in {r.sensor_id for r in readings}:
                self.reject(sensor_id, "overflow", sum(1 for r in readings if r.sensor_id == sensor_id))
            return Offer(0, f"queue full ({self.max_queue} readings)")
        return Offer(len(readings))

    # -- evaluation -----------------------------------------------------------------------------------------------

    def process(self, reading: Reading) -> list[Event]:
        """Evaluate one reading now (the consumer thread's step; tests and the benchmark call it directly)."""
        sensor = self.sensors.get(reading.sensor_id)
        if sensor is None:
            return []
        self.stats.evaluated += 1
        return self._observe(sensor, SensorObservation.of(reading, sensor.unit, sensor.name))

    def tick(self, at: datetime) -> list[Event]:
        """Evaluate the passing of time at `at` for every sensor (the kinds that judge silence)."""
        self.stats.ticks += 1
        events: list[Event] = []
        for sensor in self.sensors.values():
            events += self._observe(sensor, SensorObservation(sensor.id, at, None, sensor.unit, sensor.name))
        return events

    def _observe(self, sensor: Sensor, obs: SensorObservation) -> list[Event]:
        events = []
        for outcome in self._engine().observe_sensor(obs):
            for change in self._changes(outcome, obs):
                event = self._emit(sensor, outcome, change)
                if event is not None:
                    events.append(event)
        return events

    def _changes(self, outcome: RuleOutcome, obs: SensorObservation) -> list[IncidentChange]:
        rule = outcome.rule
        policy = IncidentPolicy.of(rule)
        return self.incidents.observe(rule.id, outcome.fingerprint, obs.sensor_id, policy, outcome.fired, obs.at)

    def _emit(self, sensor: Sensor, outcome: RuleOutcome, change: IncidentChange) -> Event | None:
        rule = outcome.rule
        facts = RuleFacts(rule.id, rule.kind, rule.category, rule.severity)
        try:
            event = incident_event(change, facts, place_of_sensor(sensor), None)
            self._sink.emit(event, {})
        except SinkBusyError as exc:  # back-pressure: the next reading hands it off again
            self.incidents.undeliver(change)
            logger.warning("incident %s of sensor %s held back: %s", change.incident_id, sensor.id, exc)
            return None
        except Exception:  # the intake's failure, not the sensor's
            self.incidents.undeliver(change)
            logger.exception("incident %s of sensor %s rule %s not delivered", change.incident_id, sensor.id, rule.id)
            return None
        self.stats.events += 1
        logger.info(
            "incident %s %s: sensor %s rule %s %s",
            event.incident_id,
            VERBS[change.state],
            sensor.id,
            rule.id,
            event.reason,
        )
        if change.state.value == "open" and self._on_open is not None:
            try:
                self._on_open(sensor, event)
            except Exception:  # loop boundary: a failed linkage never stops the readings
                logger.exception("sensor %s: linked visits for incident %s not requested", sensor.id, event.incident_id)
        return event

    # -- the thread -----------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sensor-rules", daemon=True)
        self._thread.start()

    def _take(self, timeout: float) -> list[Reading]:
        with self._cond:
            if not self._queue and not self._stop.is_set():
                self._cond.wait(timeout)
            n = min(BATCH, len(self._queue))
            batch = [self._queue.popleft() for _ in range(n)]
            self._busy = bool(batch)
            return batch

    def _run(self) -> None:
        next_tick = time.monotonic() + self.tick_s
        while not self._stop.is_set():
            batch = self._take(max(0.0, next_tick - time.monotonic()))
            for reading in batch:
                try:
                    self.process(reading)
                except Exception:  # loop boundary: one reading's failure is not the others'
                    self.stats.failures += 1
                    logger.exception("sensor %s: reading at %s not evaluated", reading.sensor_id, reading.at)
            with self._cond:
                self._busy = False
                self._cond.notify_all()
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self.tick_s
                try:
                    self.tick(self._clock.now())
                except Exception:  # loop boundary
                    self.stats.failures += 1
                    logger.exception("sensor tick failed")

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued reading has been evaluated; False if that took longer than `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def report(self) -> dict[str, object]:
        """The figures for `/healthz`: queue, counts, and refused readings by sensor and reason."""
        with self._cond:
            refused: dict[str, dict[str, int]] = {}
            for (sensor_id, reason), n in sorted(self._refused.items()):
                refused.setdefault(sensor_id, {})[reason] = n
            depth = len(self._queue)
        s = self.stats
        return {
            "sensors": len(self.sensors),
            "queue_depth": depth,
            "max_queue": self.max_queue,
            "max_depth": s.max_depth,
            "taken": s.taken,
            "evaluated": s.evaluated,
            "overflow": s.overflow,
            "events": s.events,
            "failures": s.failures,
            "refused": refused,
        }

    def refused(self, sensor_id: str, reason: str) -> int:
        with self._cond:
            return self._refused[(sensor_id, reason)]
