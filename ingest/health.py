"""Camera health as incidents: a camera going offline opens one, its return closes it, with one incident id."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime

from core.events import Event, Severity
from core.types import Verdict
from incidents.events import RuleFacts, incident_event
from incidents.tracker import IncidentPolicy, IncidentTracker
from ingest.cameras import Camera
from ingest.scheduler import Health, HealthChange
from ingest.visit import place_of

RULE_ID = "camera-health"
RULE = RuleFacts(RULE_ID, "camera_health", "9908", Severity.major)
# opens at the first offline report, never updates, closes at the first report of being back online
POLICY = IncidentPolicy(cooldown_s=math.inf, close_after_s=math.inf, close_after_visits=1)


class CameraHealthIncidents:
    """Turns health changes into incident events through the same tracker as the rules' incidents."""

    def __init__(self, tracker: IncidentTracker | None = None) -> None:
        self.tracker = tracker if tracker is not None else IncidentTracker()

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
