"""Cases of the grid-event intake: one case system for grid workers, the hotline, citizens, cameras and sensors.

A case moves through the closed loop 发现-上报-分流-处置-反馈-核查-结案 as states (see `intake.workflow`); every
transition is audited. Models here cross the HTTP boundary and the store, so they are strict pydantic models.
"""

from __future__ import annotations

import logging
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from core.events import Evidence

logger = logging.getLogger(__name__)

INCIDENT_PREFIX = "incident:"  # the sender id of a case made from an incident: incident:<incident id>
CASE_NUMBER_PATTERN = r"^[0-9]{4}-[0-9]{6,}$"
SenderId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$")]
Text = Annotated[str, Field(max_length=4000)]


class CaseState(StrEnum):
    reported = "reported"  # 上报
    accepted = "accepted"  # 受理 (verified)
    filed = "filed"  # 立案
    dispatched = "dispatched"  # 派遣
    handling = "handling"  # 处置
    handled = "handled"  # 处置完成 (fed back)
    checking = "checking"  # 核查
    closed = "closed"  # 结案
    rejected = "rejected"  # 不予受理 (includes camera false alarms)
    returned = "returned"  # 退回 (the department sent it back to the dispatcher)
    rework = "rework"  # 返工 (the check failed)
    extension = "extension"  # 延期
    suspended = "suspended"  # 挂起
    escalated = "escalated"  # 升级 (red card: to the city level)


FINAL_STATES = frozenset({CaseState.closed, CaseState.rejected})


class Source(StrEnum):
    grid_worker = "grid_worker"  # 网格员
    hotline = "hotline"  # 12345 热线
    citizen = "citizen"  # 市民
    camera = "camera"  # 智能抓拍
    sensor = "sensor"  # 物联感知
    external = "external"  # another system, by signed webhook


Urgency = Literal["normal", "urgent"]
Complexity = Literal["general", "complex"]


class Reporter(BaseModel):
    """Who reported: a person (name, id, phone masked by the sender) or, for cameras, the camera, rule and model
    (for sensors, the sensor and rule)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="", max_length=100)
    id: str = Field(default="", max_length=100)
    camera_id: str = Field(default="", max_length=64)
    sensor_id: str = Field(default="", max_length=64, exclude_if=lambda value: not value)
    rule_id: str = Field(default="", max_length=64)
    model: str = Field(default="", max_length=100)


class CaseCreate(BaseModel):
    """A report as senders post it. `sender_id` is the sender's own id for it: posting it again (a retry, a
    double tap) returns the case made the first time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sender_id: SenderId
    source: Source = Source.grid_worker
    category: str = Field(pattern=r"^[0-9]{2}([0-9]{2}){0,2}$")
    description: Text = ""
    address: str = Field(default="", max_length=300)
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    grid_code: str = Field(default="", pattern=r"^[0-9]{0,24}$")
    urgency: Urgency = "normal"
    complexity: Complexity = "general"
    reporter: Reporter = Field(default_factory=Reporter)
    occurred_at: datetime | None = None

    @model_validator(mode="after")
    def _incident_ids_are_the_intakes(self) -> CaseCreate:
        if self.sender_id.startswith(INCIDENT_PREFIX) and self.source not in (Source.camera, Source.sensor):
            raise PydanticCustomError(
                "sender_id_reserved",
                "sender ids starting with {prefix} are the intake's own",
                {"prefix": repr(INCIDENT_PREFIX)},
            )
        return self


class AuditEntry(BaseModel):
    """One transition: who did what, when, from which state to which, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: datetime
    actor: str
    role: str
    action: str
    from_state: CaseState | None
    to_state: CaseState
    note: str = ""


class Case(BaseModel):
    """A case as the store keeps it and the API shows it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    number: str = Field(pattern=CASE_NUMBER_PATTERN)
    sender_id: str
    source: Source
    category: str
    category_label: str = ""
    description: str = ""
    address: str = ""
    lon: float | None = None
    lat: float | None = None
    grid_code: str = ""
    grid_path: list[str] = Field(default_factory=list)  # district, street, community, grid names
    urgency: Urgency = "normal"
    complexity: Complexity = "general"
    reporter: Reporter = Field(default_factory=Reporter)
    department: str = ""
    state: CaseState = CaseState.reported
    reported_at: datetime
    updated_at: datetime
    nodes: dict[str, datetime] = Field(default_factory=dict)  # state -> when it was first reached
    verify_by: datetime | None = None
    due_by: datetime | None = None
    red_by: datetime | None = None  # the red card's deadline (the complex limit)
    deadline_note: str = ""  # e.g. why no deadline could be computed (a year the calendar does not know)
    cards: list[str] = Field(default_factory=list)  # yellow, red: raised once each
    evidence: list[Evidence] = Field(default_factory=list)
    incident_id: str = ""  # for camera and sensor cases: the incident it was made from
    incident_open: bool = False
    zone: str | None = None
    linked: list[str] = Field(default_factory=list)  # ids of cases that may be the same problem, to confirm
    duplicate_of: str = ""
    false_alarm: bool = False
    extensions: int = 0
    reworks: int = 0
    audit: list[AuditEntry] = Field(default_factory=list)


class ActionRequest(BaseModel):
    """An operator's action on a case: the note is audited; `department` for dispatch, `workdays` for an
    extension, `duplicate_of` for closing as a duplicate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    note: Text = ""
    department: str = Field(default="", max_length=100)
    workdays: int = Field(default=0, ge=0, le=60)
    duplicate_of: str = Field(default="", max_length=32)
