"""What the API reads about the patrol: the `PatrolView` the composition root hands in, and its typed answers.

The API may not import `ingest` (import-linter: it talks to the patrol through interfaces), so these are its own
types; `gridwatch.patrol_view` builds them from the scheduler's and the patrol's reports. A camera's address is
only ever its sanitised form, and its last error is redacted again here: neither carries a credential.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from intake.outbox_store import TargetStats

CameraHealth = Literal["unknown", "online", "degraded", "offline"]
SchedulerMode = Literal["deadline", "overload"]
VisitMode = Literal["keyframe", "burst"]


class LatencyMs(BaseModel):
    """Percentiles over the camera's last 16 successful visits, in milliseconds; null before the first."""

    model_config = ConfigDict(frozen=True)

    connect_p50: float | None = None
    connect_p95: float | None = None
    first_keyframe_p50: float | None = None
    first_keyframe_p95: float | None = None
    total_p50: float | None = None
    total_p95: float | None = None


class CameraStatus(BaseModel):
    """One camera: what `cameras.yaml` says of it (never its credentials) and how its patrol goes."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    url: str = Field(description="the address without credentials (user and password masked as `***`)")
    grid_code: str
    lon: float | None
    lat: float | None
    tags: list[str] = Field(default_factory=list)
    mode: VisitMode
    revisit_s: float = Field(description="the revisit target")
    priority: int
    enabled: bool
    attributes: dict[str, JsonValue] = Field(
        default_factory=dict, description="the camera's other settings in cameras.yaml (GB/T 28181 ids, bursts, ...)"
    )
    health: CameraHealth
    last_visit_at: datetime | None = Field(description="end of the last visit (UTC); null before the first")
    next_due_at: datetime | None = Field(description="planned start of the next visit (UTC); null when disabled")
    overdue: bool = Field(description="enabled, and its last visit (or the start, before one) is older than revisit_s")
    visiting: bool
    requested: bool = Field(description="an out-of-turn visit is waiting")
    visits: int
    failures: int = Field(description="consecutive failed visits")
    last_error: str = Field(description="the last failed visit's error, redacted; empty after a success")
    latency_ms: LatencyMs


class RevisitSeconds(BaseModel):
    """Intervals between successive visits of a camera over the scheduler's recent window (4,096 visits)."""

    model_config = ConfigDict(frozen=True)

    samples: int
    p50: float | None
    p95: float | None
    max: float | None
    late_share: float | None = Field(description="share of those intervals longer than the camera's target")


class CostMs(BaseModel):
    """The median of each phase of the last 500 successful visits, in milliseconds."""

    model_config = ConfigDict(frozen=True)

    connect: float
    first_keyframe: float
    decode: float
    inference: float
    rules: float
    evidence: float
    total: float


class WorkerStatus(BaseModel):
    """A patrol worker process known to be alive."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="host and process")
    threads: int
    in_flight: int


class EventsByState(BaseModel):
    model_config = ConfigDict(frozen=True)

    open: int = 0
    update: int = 0
    close: int = 0


class PatrolStatus(BaseModel):
    """The patrol as a whole: coverage, revisit intervals, load, and what the visits cost."""

    model_config = ConfigDict(frozen=True)

    mode: SchedulerMode = Field(description="deadline: earliest deadline first; overload: priority first")
    lateness: float = Field(description="decayed mean of (start - due) / revisit_s: the overload signal")
    cameras: int = Field(description="cameras in cameras.yaml")
    enabled: int
    within_target: float = Field(description="share of enabled cameras whose last visit is at most revisit_s old")
    health: dict[CameraHealth, int] = Field(description="enabled cameras by health")
    offline: int
    degraded: int
    revisit_s: RevisitSeconds
    in_flight: int = Field(description="visits being made now")
    in_flight_limit: int = Field(description="the adaptive bound: lowered while inference is behind")
    workers: list[WorkerStatus] = Field(description="patrol worker processes alive")
    visits: int
    gated: int = Field(default=0, description="of `visits`, those change gating analysed without inference")
    failures: int
    events: int
    events_by_state: EventsByState
    visits_per_s: float = Field(description="visits (successes and failures) per second over the last minute")
    requests_pending: int
    requests_served: int
    median_cost_ms: CostMs | None = Field(description="null before the first successful visit")


class Histogram(BaseModel):
    """Cumulative counts: `counts[i]` observations at most `bounds_s[i]`; `count` in all."""

    model_config = ConfigDict(frozen=True)

    phase: str
    bounds_s: list[float]
    counts: list[int]
    count: int
    sum_s: float


class Telemetry(BaseModel):
    """What `/metrics` adds to the patrol's status; null where this process does not run that part."""

    model_config = ConfigDict(frozen=True)

    visit_seconds: list[Histogram] = Field(default_factory=list)
    inference_queue: int | None = None
    handoff_depth: int | None = None
    handoff_refused: int | None = None
    outbox: list[TargetStats] = Field(default_factory=list)
    case_feed_lag_s: float | None = None


class VisitRequested(BaseModel):
    """The answer to an out-of-turn visit request."""

    model_config = ConfigDict(frozen=True)

    camera_id: str
    queued: bool = Field(description="false: the scheduler does not patrol this camera (disabled)")
    requests_pending: int = Field(description="out-of-turn visits waiting, this one included")
    detail: str


@dataclass(frozen=True, slots=True)
class CameraFilter:
    """Which cameras a list asks for; None: any. Checked on plain values, before an answer row is built."""

    health: CameraHealth | None = None
    grid: str | None = None  # grid code prefix
    tag: str | None = None
    overdue: bool | None = None
    q: str | None = None  # text in the id or name, case-insensitive

    def matches(
        self, camera_id: str, name: str, grid_code: str, tags: Sequence[str], health: str, overdue: bool
    ) -> bool:
        if self.health is not None and health != self.health:
            return False
        if self.grid is not None and not grid_code.startswith(self.grid):
            return False
        if self.tag is not None and self.tag not in tags:
            return False
        if self.overdue is not None and overdue != self.overdue:
            return False
        if self.q is None:
            return True
        q = self.q.casefold()
        return q in camera_id.casefold() or q in name.casefold()


class PatrolView(Protocol):
    """The patrol as the API sees it; the composition root wires one from the scheduler and the patrol."""

    def cameras(self, where: CameraFilter, after: str | None = None, limit: int | None = None) -> list[CameraStatus]:
        """The cameras of `cameras.yaml` (disabled ones included) that match, in id order, after the id `after`,
        at most `limit` of them."""
        ...

    def camera(self, camera_id: str) -> CameraStatus | None: ...

    def status(self) -> PatrolStatus: ...

    def telemetry(self) -> Telemetry: ...

    def request_visit(self, camera_id: str) -> VisitRequested | None:
        """Ask for an out-of-turn visit; None for a camera `cameras.yaml` does not have."""
        ...
