"""The API's `PatrolView` over the running patrol: the scheduler's and the patrol's typed reports, the camera
registry, and the intake's queues, turned into the API's answers (monotonic times become UTC instants).

Credentials: a camera's address is only ever `Camera.safe_url`; its last error and any further camera setting
that holds an address go through the same redaction.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import JsonValue
from ulid import ULID

from api.patrol_view import (
    CameraFilter,
    CameraStatus,
    CostMs,
    EventsByState,
    Histogram,
    LatencyMs,
    PatrolStatus,
    RevisitSeconds,
    Telemetry,
    VisitRequested,
    WorkerStatus,
)
from core.clock import Clock
from core.redact import redact_text, sanitize_url
from ingest.cameras import Camera
from ingest.patrol import Patrol
from ingest.scheduling import CameraReport, Health, PatrolReport, Scheduler
from intake.case_feed import CaseFeed
from intake.handoff import QueuedSink
from intake.outbox import OutboxDelivery
from intake.store import EventStore

logger = logging.getLogger(__name__)

# shown as fields of their own; `url` never (its sanitised form is)
SHOWN = frozenset({"id", "name", "url", "grid_code", "lon", "lat", "tags", "mode", "revisit_s", "priority", "enabled"})


def _clean(value: JsonValue) -> JsonValue:
    """A camera setting as shown: any text redacted (an address in it loses its credentials)."""
    if isinstance(value, str):
        return sanitize_url(value) if "://" in value else redact_text(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def _latency(r: CameraReport | None) -> LatencyMs:
    if r is None:
        return LatencyMs()
    lat = r.latency
    return LatencyMs(
        connect_p50=lat.connect_p50,
        connect_p95=lat.connect_p95,
        first_keyframe_p50=lat.first_keyframe_p50,
        first_keyframe_p95=lat.first_keyframe_p95,
        total_p50=lat.visit_p50,
        total_p95=lat.visit_p95,
    )


@dataclass
class Telemetries:
    """The parts beside the patrol whose queues `/metrics` shows; each optional."""

    inference_queue: Callable[[], int] | None = None
    handoff: QueuedSink | None = None
    outbox: OutboxDelivery | None = None
    feed: CaseFeed | None = None
    store: EventStore | None = None


@dataclass
class RuntimePatrolView:
    """`api.patrol_view.PatrolView` over one patrol and its scheduler."""

    patrol: Patrol
    scheduler: Scheduler
    registry: Sequence[Camera]
    clock: Clock
    parts: Telemetries = field(default_factory=Telemetries)

    def __post_init__(self) -> None:
        self._cameras = sorted(self.registry, key=lambda c: c.id)
        self._order = [c.id for c in self._cameras]
        self._by_id = {c.id: c for c in self._cameras}
        self._tags = {c.id: [str(t) for t in c.model_dump(mode="json").get("tags", [])] for c in self._cameras}
        self._started = self.clock.monotonic()

    def _instant(self, moment: float | None, report_at: float, now: datetime) -> datetime | None:
        return None if moment is None else now - timedelta(seconds=report_at - moment)

    def cameras(self, where: CameraFilter, after: str | None = None, limit: int | None = None) -> list[CameraStatus]:
        """Filtered on plain values first: only the rows answered are built (a page of 12,000 cameras)."""
        at, now = self.clock.monotonic(), self.clock.now()
        by_id = {c.camera_id: c for c in self.scheduler.snapshot()}
        start = 0 if after is None else bisect_right(self._order, after)
        out: list[CameraStatus] = []
        for camera in self._cameras[start:]:
            if limit is not None and len(out) >= limit:
                break
            r = by_id.get(camera.id)
            health = r.health.value if r is not None else Health.unknown.value
            tags = self._tags[camera.id]
            if where.matches(camera.id, camera.name, camera.grid_code, tags, health, self._overdue(camera, r, at)):
                out.append(self._camera(camera, r, at, now))
        return out

    def camera(self, camera_id: str) -> CameraStatus | None:
        camera = self._by_id.get(camera_id)
        if camera is None:
            return None
        r = next((c for c in self.scheduler.snapshot() if c.camera_id == camera_id), None)
        return self._camera(camera, r, self.clock.monotonic(), self.clock.now())

    def _overdue(self, camera: Camera, r: CameraReport | None, at: float) -> bool:
        if r is None:
            return False
        seen = r.last_visit if r.last_visit is not None else self._started
        return at - seen > camera.revisit_s

    def _camera(self, camera: Camera, r: CameraReport | None, at: float, now: datetime) -> CameraStatus:
        data = camera.model_dump(mode="json")
        return CameraStatus(
            id=camera.id,
            name=camera.name,
            url=camera.safe_url,
            grid_code=camera.grid_code,
            lon=camera.lon,
            lat=camera.lat,
            tags=self._tags[camera.id],
            mode=camera.mode,
            revisit_s=camera.revisit_s,
            priority=camera.priority,
            enabled=camera.enabled,
            attributes={k: _clean(v) for k, v in data.items() if k not in SHOWN},
            health=r.health.value if r is not None else Health.unknown.value,
            last_visit_at=self._instant(r.last_visit, at, now) if r is not None else None,
            next_due_at=self._instant(r.due, at, now) if r is not None else None,
            overdue=self._overdue(camera, r, at),
            visiting=r is not None and r.leased,
            requested=r is not None and r.requested,
            visits=r.visits if r is not None else 0,
            failures=r.failures if r is not None else 0,
            last_error=redact_text(r.last_error) if r is not None else "",
            latency_ms=_latency(r),
        )

    def status(self) -> PatrolStatus:
        return self._status(self.patrol.report())

    def _status(self, p: PatrolReport) -> PatrolStatus:
        s, rv, med = p.schedule, p.schedule.revisit, p.median_cost
        counts = s.counts()
        cost = None
        if med is not None:
            cost = CostMs(
                connect=med.connect,
                first_keyframe=med.first_keyframe,
                decode=med.decode,
                inference=med.inference,
                rules=med.rules,
                evidence=med.evidence,
                total=med.total,
            )
        ev = p.events_by_state
        return PatrolStatus(
            mode=s.mode.value,
            lateness=s.lateness,
            cameras=len(self._cameras),
            enabled=s.enabled,
            within_target=s.within_target,
            health={h.value: n for h, n in counts.items()},
            offline=counts[Health.offline],
            degraded=counts[Health.degraded],
            revisit_s=RevisitSeconds(samples=rv.samples, p50=rv.p50, p95=rv.p95, max=rv.max, late_share=rv.late_share),
            in_flight=p.in_flight,
            in_flight_limit=p.in_flight_limit,
            workers=[WorkerStatus(name=w.name, threads=w.threads, in_flight=w.in_flight) for w in p.alive],
            visits=p.visits,
            gated=p.gated,
            failures=p.failures,
            events=p.events,
            events_by_state=EventsByState(open=ev.open, update=ev.update, close=ev.close),
            visits_per_s=p.visits_per_s,
            requests_pending=s.requests_pending,
            requests_served=s.requests_served,
            median_cost_ms=cost,
        )

    def telemetry(self) -> Telemetry:
        parts = self.parts
        handoff = parts.handoff.snapshot() if parts.handoff is not None else None
        histograms = [
            Histogram(phase=h.phase, bounds_s=list(h.bounds_s), counts=list(h.counts), count=h.count, sum_s=h.sum_s)
            for h in self.patrol.histograms()
        ]
        return Telemetry(
            visit_seconds=histograms,
            inference_queue=parts.inference_queue() if parts.inference_queue is not None else None,
            handoff_depth=handoff["depth"] if handoff is not None else None,
            handoff_refused=handoff["refused_full"] if handoff is not None else None,
            outbox=parts.outbox.stats().targets if parts.outbox is not None else [],
            case_feed_lag_s=self._feed_lag(),
        )

    def _feed_lag(self) -> float | None:
        """How long the oldest stored event the case feed has not read yet has waited; 0 when it has read all,
        None before its first pass."""
        feed, store = self.parts.feed, self.parts.store
        if feed is None or store is None or not feed.stats.cursor:
            return None
        unread = store.list(after=feed.stats.cursor, limit=1)
        if not unread:
            return 0.0
        made = ULID.from_str(unread[0].id).datetime
        return max(0.0, (self.clock.now() - made).total_seconds())

    def request_visit(self, camera_id: str) -> VisitRequested | None:
        if camera_id not in self._by_id:
            return None
        queued = self.scheduler.request_visit(camera_id)
        pending = self.scheduler.report().requests_pending
        detail = "queued ahead of the round" if queued else "not queued: the camera is disabled"
        return VisitRequested(camera_id=camera_id, queued=queued, requests_pending=pending, detail=detail)
