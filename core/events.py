"""Event and evidence records: the versioned schema that crosses process and network boundaries."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION: Literal[2] = 2  # 2: incident_id; version 1 records read as incident-less events

ULID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Severity(StrEnum):
    info = "info"
    minor = "minor"
    major = "major"
    critical = "critical"


class EventState(StrEnum):
    open = "open"
    update = "update"
    close = "close"


class Box(BaseModel):
    """One detection drawn on the evidence: source pixels."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    x1: float
    y1: float
    x2: float
    y2: float
    label: str
    confidence: float = Field(ge=0.0, le=1.0)
    in_zone: bool = False


class Evidence(BaseModel):
    """A stored object: `key` is the content hash plus extension."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(pattern=r"^[0-9a-f]{64}\.(jpg|png)$")
    kind: Literal["frame", "annotated", "photo"]  # photo: sent by a person (grid worker, citizen), stored as sent
    content_type: Literal["image/jpeg", "image/png"]
    sha256: Sha256
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    boxes: list[Box] = Field(default_factory=list)
    # photos of a case: taken before or after it was handled; None (and left out of the JSON) for other evidence
    stage: Literal["before", "after"] | None = Field(default=None, exclude_if=lambda value: value is None)


class Event(BaseModel):
    """An auto-captured event: what fired, where, when, and its snapshot evidence. No field carries a camera's
    address, so credentials cannot leak through events. A camera rule's event names its camera; a sensor rule's
    names its sensor (`sensor_id`) and no camera, and carries the readings in `reason` instead of evidence."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1, 2] = SCHEMA_VERSION
    id: str = Field(pattern=ULID_PATTERN)
    # the incident this event belongs to: its open, updates and close share it; "" for events without one
    incident_id: str = Field(default="", pattern=r"^([0-9A-HJKMNP-TV-Z]{26})?$")
    rule_id: str
    rule_kind: str
    camera_id: str  # "" for a sensor's event
    # the sensor of a sensor rule's event; "" (and left out of the JSON, so camera events read as before) otherwise
    sensor_id: str = Field(default="", max_length=64, exclude_if=lambda value: not value)
    camera_name: str = ""
    zone: str | None = None
    category: str = ""
    severity: Severity = Severity.minor
    state: EventState = EventState.open
    first_seen: datetime
    last_seen: datetime
    count: int = Field(default=0, ge=0)
    reason: str = ""
    grid_code: str = ""
    lon: float | None = None
    lat: float | None = None
    model: str = ""
    evidence: list[Evidence] = Field(default_factory=list)
