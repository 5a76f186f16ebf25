"""Camera health as events: a camera going offline opens an alert for the wall, its return closes it."""

from __future__ import annotations

from datetime import datetime

from ulid import ULID

from core.events import Event, EventState, Severity
from ingest.cameras import Camera
from ingest.scheduler import Health, HealthChange

RULE_ID = "camera-health"


def health_event(camera: Camera, change: HealthChange, at: datetime) -> Event | None:
    """The event for a change that operators act on (offline, or back online from offline); None otherwise.

    `change.error` is already sanitised by the grabber: it never carries credentials.
    """
    if change.after == Health.offline and change.before != Health.offline:
        state, severity, reason = EventState.open, Severity.major, f"camera offline: {change.error}"
    elif change.before == Health.offline and change.after == Health.online:
        state, severity, reason = EventState.close, Severity.info, "camera back online"
    else:
        return None
    return Event(
        id=str(ULID()),
        rule_id=RULE_ID,
        rule_kind="camera_health",
        camera_id=camera.id,
        camera_name=camera.name,
        severity=severity,
        state=state,
        first_seen=at,
        last_seen=at,
        reason=reason,
        grid_code=camera.grid_code,
        lon=camera.lon,
        lat=camera.lat,
    )
