"""The patrol scheduler's interface and its typed reports, so that backends (in-process, Redis) are
interchangeable behind `Scheduler` and the API reads the same figures from either.

Types only: no I/O, no threads, no policy. The policy lives in the backend (`ingest.scheduler`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from ingest.cameras import Camera
from ingest.telemetry import PhaseHistogram
from ingest.visit import VisitCost


class Health(StrEnum):
    unknown = "unknown"
    online = "online"
    degraded = "degraded"
    offline = "offline"


class Mode(StrEnum):
    """How due cameras are ordered: by deadline while the patrol keeps up, by priority then deadline when not."""

    deadline = "deadline"
    overload = "overload"


@dataclass(frozen=True, slots=True)
class HealthChange:
    camera_id: str
    before: Health
    after: Health
    error: str


class VisitCostLike(Protocol):
    """The part of `ingest.visit.VisitCost` the scheduler plans with (milliseconds)."""

    @property
    def connect(self) -> float: ...

    @property
    def first_keyframe(self) -> float: ...

    @property
    def total(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Latency:
    """Percentiles in milliseconds over a camera's recent successful visits; None before the first."""

    connect_p50: float | None = None
    connect_p95: float | None = None
    first_keyframe_p50: float | None = None
    first_keyframe_p95: float | None = None
    visit_p95: float | None = None  # the whole visit (the planner leads by the longest recent one)
    visit_p50: float | None = None


@dataclass(frozen=True, slots=True)
class CameraReport:
    """One camera's standing in the patrol. Times are on the scheduler's monotonic clock (seconds)."""

    camera_id: str
    name: str
    priority: int
    revisit_s: float
    health: Health
    failures: int  # consecutive
    visits: int
    last_error: str
    last_visit: float | None
    due: float  # when the next visit is planned to start
    leased: bool
    requested: bool  # an out-of-turn visit is waiting
    latency: Latency


@dataclass(frozen=True, slots=True)
class RevisitFigures:
    """Intervals between successive visits of a camera, over the scheduler's recent window, in seconds."""

    samples: int
    p50: float | None
    p95: float | None
    max: float | None
    late_share: float | None  # share of those intervals longer than the camera's revisit target


@dataclass(frozen=True, slots=True)
class WorkerReport:
    """A patrol worker process known to be alive: its name (host and process), its threads (the most visits it
    keeps in flight) and its visits in flight now."""

    name: str
    threads: int
    in_flight: int


@dataclass(frozen=True, slots=True)
class ScheduleReport:
    at: float  # the scheduler's monotonic time of the report
    mode: Mode
    lateness: float  # decayed mean of (start - due) / revisit_s over recent visits: the overload signal
    enabled: int
    within_target: float  # share of enabled cameras whose last visit is at most revisit_s old
    in_flight: int  # cameras leased right now
    offline: int
    requests_pending: int
    requests_served: int
    revisit: RevisitFigures
    cameras: tuple[CameraReport, ...]
    # the workers the backend knows to be alive (a shared backend: from their leases or heartbeats); the
    # in-process backend knows none, and `Patrol.report()` names its own process instead
    workers: tuple[WorkerReport, ...] = ()

    def counts(self) -> dict[Health, int]:
        counts = dict.fromkeys(Health, 0)
        for c in self.cameras:
            counts[c.health] += 1
        return counts


@dataclass(frozen=True, slots=True)
class EventCounts:
    """Incident events the patrol's visits emitted, by their state."""

    open: int = 0
    update: int = 0
    close: int = 0


@dataclass(frozen=True, slots=True)
class PatrolReport:
    """The scheduler's report plus what the patrol's workers know: the in-flight bound and visit counts."""

    schedule: ScheduleReport
    workers: int
    in_flight: int  # visits being made right now
    in_flight_limit: int  # the adaptive bound: lowered while inference is behind, raised again as it keeps up
    visits: int
    failures: int
    events: int
    held_back: int
    alive: tuple[WorkerReport, ...] = ()  # the schedule's workers, or this process when it names none
    visits_per_s: float = 0.0  # visits (successes and failures) per second over the last minute
    median_cost: VisitCost | None = None  # per phase, over the last 500 successful visits; None before one
    events_by_state: EventCounts = EventCounts()  # the `events` by state
    histograms: tuple[PhaseHistogram, ...] = ()  # successful visits by phase duration, since the start
    gated: int = 0  # of `visits`, those whose inference change gating skipped


class Scheduler(Protocol):
    """What a patrol worker needs from a scheduler. A camera is leased to one caller at a time."""

    def acquire(self, timeout: float | None = None) -> Camera | None:
        """The next camera to visit, leased to the caller; None on close or when `timeout` passes (0: no wait)."""
        ...

    def complete(
        self, camera_id: str, error: str | None = None, cost: VisitCostLike | None = None
    ) -> HealthChange | None:
        """Release the lease, learn from the visit's cost, plan the next visit; the health change, if any."""
        ...

    def request_visit(self, camera_id: str) -> bool:
        """Ask for an out-of-turn visit; False for a camera the scheduler does not patrol."""
        ...

    def snapshot(self) -> list[CameraReport]: ...

    def report(self) -> ScheduleReport: ...

    def close(self) -> None: ...
