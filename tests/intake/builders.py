"""Small builders for events, evidence and real image bytes, shared by the intake and API tests."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Literal

import cv2
import numpy as np
from ulid import ULID

from core.events import Box, Event, EventState, Evidence, Severity

BASE_TIME = datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)


def make_image_bytes(seed: int = 0, ext: Literal["jpg", "png"] = "jpg", size: tuple[int, int] = (48, 64)) -> bytes:
    """A real encoded picture whose content (and so hash) depends on `seed`."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode("." + ext, image)
    assert ok
    return bytes(encoded.tobytes())


def make_evidence(data: bytes, kind: Literal["frame", "annotated"] = "annotated", ext: str = "jpg") -> Evidence:
    digest = hashlib.sha256(data).hexdigest()
    return Evidence(
        key=f"{digest}.{ext}",
        kind=kind,
        content_type="image/png" if ext == "png" else "image/jpeg",
        sha256=digest,
        width=64,
        height=48,
        boxes=[Box(x1=1, y1=2, x2=30, y2=40, label="person", confidence=0.9, in_zone=True)],
    )


def ulid_at(moment: datetime) -> str:
    return str(ULID.from_datetime(moment))


def make_event(
    seconds: float = 0.0,
    *,
    event_id: str | None = None,
    camera_id: str = "cam-1",
    rule_id: str = "fence-north",
    zone: str | None = "north-gate",
    severity: Severity = Severity.major,
    state: EventState = EventState.open,
    evidence: list[Evidence] | None = None,
    incident_id: str = "",
    first_seen: datetime | None = None,
) -> Event:
    """An event seen `seconds` after BASE_TIME; its ULID carries the same instant, so ids sort by time.
    `first_seen` is 5 s before that unless given."""
    seen = BASE_TIME + timedelta(seconds=seconds)
    return Event(
        id=event_id or ulid_at(seen),
        incident_id=incident_id,
        rule_id=rule_id,
        rule_kind="zone_intrusion",
        camera_id=camera_id,
        camera_name=f"{camera_id} 北门",
        zone=zone,
        category="05",
        severity=severity,
        state=state,
        first_seen=first_seen or seen - timedelta(seconds=5),
        last_seen=seen,
        count=1,
        reason="person in zone for 5 s",
        evidence=evidence or [],
    )


def make_event_with_blobs(
    seed: int, seconds: float = 0.0, *, camera_id: str = "cam-1"
) -> tuple[Event, dict[str, bytes]]:
    """An event whose evidence is a real annotated JPEG, and the bytes keyed as the sink expects them."""
    data = make_image_bytes(seed)
    evidence = make_evidence(data)
    return make_event(seconds, camera_id=camera_id, evidence=[evidence]), {evidence.key: data}
