"""Events of incidents: each open and update carries fresh snapshot evidence; a close says why it closed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ulid import ULID

from core.events import Event, EventState, Severity
from core.types import Detections, Image
from incidents.evidence import Snapshot, make_snapshot
from incidents.tracker import IncidentChange

logger = logging.getLogger(__name__)

VERBS = {EventState.open: "opened", EventState.update: "updated", EventState.close: "closed"}


@dataclass(frozen=True, slots=True)
class Place:
    """What an event says about its camera (or sensor: `camera_id` "", `camera_name` the sensor's name): never its
    address, so no credentials can leak through events."""

    camera_id: str
    camera_name: str = ""
    grid_code: str = ""
    lon: float | None = None
    lat: float | None = None
    sensor_id: str = ""


@dataclass(frozen=True, slots=True)
class RuleFacts:
    """What an event says about its rule."""

    id: str
    kind: str
    category: str
    severity: Severity


@dataclass(frozen=True, slots=True)
class Sighting:
    """The frame a change is about and what the detector found on it."""

    image: Image
    detections: Detections
    labels: Sequence[str]
    model: str


def snapshot_of(change: IncidentChange, sighting: Sighting, quality: int) -> Snapshot:
    """The clean and annotated JPEGs of an open or update, drawn as the verdict's rule kind says."""
    verdict = change.verdict
    if verdict is None:
        raise ValueError(f"incident {change.incident_id}: a {change.state.value} has no verdict to draw")
    caption = f"{change.camera_id} {change.rule_id} {change.last_seen:%Y-%m-%d %H:%M:%S}Z"
    return make_snapshot(
        sighting.image, sighting.detections, sighting.labels, verdict.subjects, verdict.overlay, caption, quality
    )


def frame_snapshot(sighting: Sighting, caption: str, quality: int) -> Snapshot:
    """The clean and annotated JPEGs of a frame no verdict is about (a linked camera's look for a sensor, a
    check by camera): every detection drawn, none marked as the subject."""
    none = np.zeros(0, np.intp)
    return make_snapshot(sighting.image, sighting.detections, sighting.labels, none, None, caption, quality)


def incident_event(
    change: IncidentChange, rule: RuleFacts, place: Place, snapshot: Snapshot | None, model: str = ""
) -> Event:
    """The event of one incident step; a close is `info` whatever the rule's severity."""
    verdict = change.verdict
    count = 0 if verdict is None else int(verdict.measures.get("count", len(verdict.subjects)))
    return Event(
        id=str(ULID()),
        incident_id=change.incident_id,
        rule_id=rule.id,
        rule_kind=rule.kind,
        camera_id=place.camera_id,
        sensor_id=place.sensor_id,
        camera_name=place.camera_name,
        zone=change.zone,
        category=rule.category,
        severity=Severity.info if change.state == EventState.close else rule.severity,
        state=change.state,
        first_seen=change.first_seen,
        last_seen=change.last_seen,
        count=count,
        reason=change.reason,
        grid_code=place.grid_code,
        lon=place.lon,
        lat=place.lat,
        model=model,
        evidence=[] if snapshot is None else snapshot.evidence,
    )
