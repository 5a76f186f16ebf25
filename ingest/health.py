"""Camera health as incidents: a camera going offline opens one, its return closes it, with one incident id."""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import replace
from datetime import datetime

from core.events import Event, Severity
from core.sink import EventSink
from core.types import Verdict
from incidents.events import RuleFacts, incident_event
from incidents.tracker import IncidentPolicy, IncidentTracker
from ingest.cameras import Camera
from ingest.scheduling import Health, HealthChange
from ingest.visit import place_of

logger = logging.getLogger(__name__)

RULE_ID = "camera-health"
RULE = RuleFacts(RULE_ID, "camera_health", "9908", Severity.major)
# opens at the first offline report, never updates, closes at the first report of being back online
POLICY = IncidentPolicy(cooldown_s=math.inf, close_after_s=math.inf, close_after_visits=1)


class CameraHealthIncidents:
    """Turns health changes into incident events through the same tracker as the rules' incidents."""

    def __init__(self, tracker: IncidentTracker | None = None) -> None:
        self.tracker = tracker if tracker is not None else IncidentTracker()
        self._lock = threading.Lock()
        self._pending: list[Event] = []  # built but not taken by the sink: sent again (by id, so once)

    def report(self, camera: Camera, change: HealthChange, at: datetime, sink: EventSink) -> Event | None:
        """`event()` delivered to `sink`, after any earlier ones the sink could not take."""
        event = self.event(camera, change, at)
        with self._lock:
            if event is not None:
                self._pending.append(event)
        self.flush(sink)
        return event

    def flush(self, sink: EventSink) -> int:
        """Deliver the events still waiting, oldest first, stopping at the first the sink refuses; how many are left."""
        with self._lock:
            while self._pending:
                try:
                    sink.emit(self._pending[0], {})
                except Exception:  # the intake's failure: kept, sent again by the next report or flush
                    logger.exception("camera-health event %s not delivered; kept for later", self._pending[0].id)
                    break
                self._pending.pop(0)
            return len(self._pending)

    def event(self, camera: Camera, change: HealthChange, at: datetime) -> Event | None:
        """The event for a change that operators act on (offline, or back online from offline); None otherwise.

        `change.error` is already sanitised by the grabber: it never carries credentials.
        """
        if change.after == Health.offline and change.before != Health.offline:
            verdicts = [Verdict(RULE_ID, camera.id, True, reason=f"camera offline: {change.error}")]
        elif change.before == Health.offline and change.after == Health.online:
            verdicts = []
        else:
            return None
        changes = self.tracker.observe(RULE_ID, RULE_ID, camera.id, POLICY, verdicts, at)
        if not changes:
            return None
        step = changes[0] if verdicts else replace(changes[0], reason="camera back online")
        return incident_event(step, RULE, place_of(camera), None)
