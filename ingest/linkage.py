"""Linkage of sensors to cameras: a sensor alarm asks for out-of-turn visits of its linked cameras, and the first
frame each of those cameras takes after the alarm becomes evidence of the sensor's incident.

`EvidenceRequests` is the registry between the two: the sensor side adds a request per linked camera (with the
sensor incident's open event) and asks the scheduler for a visit; the visit pipeline, after every visit of a
camera, takes the requests its frame answers (captured at or after the alarm) and emits an `update` of the
SENSOR incident carrying the camera's snapshot, which the intake attaches to the sensor's case like any update's
evidence. A request no visit answered within `max_age_s` is dropped (the camera is offline or not patrolled).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ulid import ULID

from core.events import Event, EventState
from incidents.evidence import Snapshot

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EvidenceRequest:
    """A camera asked to look for the incident of `event` (a sensor incident's open), from `since` on."""

    camera_id: str
    event: Event
    since: datetime


class EvidenceRequests:
    """Pending evidence requests by camera. Thread-safe: the sensor thread adds, patrol workers take."""

    def __init__(self, max_age_s: float = 600.0) -> None:
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._pending: dict[str, list[EvidenceRequest]] = {}
        self.answered = 0
        self.expired = 0

    def add(self, camera_id: str, event: Event, since: datetime) -> None:
        with self._lock:
            self._pending.setdefault(camera_id, []).append(EvidenceRequest(camera_id, event, since))

    def take(self, camera_id: str, captured_at: datetime) -> list[EvidenceRequest]:
        """The requests of `camera_id` a frame captured at `captured_at` answers; they are removed. Requests
        older than `max_age_s` are dropped; those newer than the frame stay for a later visit."""
        with self._lock:
            waiting = self._pending.get(camera_id)
            if not waiting:
                return []
            oldest = captured_at - timedelta(seconds=self.max_age_s)
            fresh = [r for r in waiting if r.since >= oldest]
            self.expired += len(waiting) - len(fresh)
            taken = [r for r in fresh if r.since <= captured_at]
            left = [r for r in fresh if r.since > captured_at]
            if left:
                self._pending[camera_id] = left
            else:
                del self._pending[camera_id]
            self.answered += len(taken)
            return taken

    def pending(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._pending.values())

    def report(self) -> dict[str, int]:
        with self._lock:
            waiting = sum(len(v) for v in self._pending.values())
            return {"pending": waiting, "answered": self.answered, "expired": self.expired}


def evidence_event(request: EvidenceRequest, snapshot: Snapshot, camera_name: str, at: datetime) -> Event:
    """The `update` of the requested incident that carries a linked camera's snapshot taken at `at`."""
    opened = request.event
    seen_by = camera_name or request.camera_id
    return opened.model_copy(
        update={
            "id": str(ULID()),
            "state": EventState.update,
            "last_seen": max(at, opened.last_seen),
            "reason": f"linked camera {seen_by} at {at:%Y-%m-%d %H:%M:%S}Z: {opened.reason}"[:4000],
            "evidence": snapshot.evidence,
        }
    )


def link_cameras(
    requests: EvidenceRequests,
    request_visit: Callable[[str], bool],
    cameras: Sequence[str],
    event: Event,
    since: datetime,
) -> int:
    """Register an evidence request for each linked camera and ask for its visit; how many the scheduler took.
    A camera the scheduler does not patrol (a continuous one, say) still answers at its next window."""
    asked = 0
    for camera_id in cameras:
        requests.add(camera_id, event, since)
        if request_visit(camera_id):
            asked += 1
        else:
            logger.info(
                "incident %s: camera %s is not in the round; its next frame answers", event.incident_id, camera_id
            )
    return asked
