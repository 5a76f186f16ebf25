"""One patrol visit: grab -> detect -> rules -> event gate -> evidence -> sink, with its cost per stage."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np
from ulid import ULID

from core.clock import Clock
from core.events import Event, Severity
from core.sink import EventSink
from core.types import Detections, Frame, Image, Verdict
from ingest.cameras import Camera
from ingest.evidence import make_snapshot

logger = logging.getLogger(__name__)


class DetectorLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def labels(self) -> list[str]: ...

    def detect(self, image: Image) -> Detections: ...


class GrabberLike(Protocol):
    def grab(self, camera_id: str, url: str, seq: int) -> tuple[Frame, GrabTimingLike]: ...


class GrabTimingLike(Protocol):
    @property
    def connect(self) -> float: ...

    @property
    def first_keyframe(self) -> float: ...

    @property
    def decode(self) -> float: ...


class RuleInfo(Protocol):
    """What the visit needs to know of a rule to make its event."""

    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def category(self) -> str: ...

    @property
    def severity(self) -> Severity: ...

    @property
    def cooldown_s(self) -> float: ...


class EngineLike(Protocol):
    def evaluate(
        self, camera_id: str, width: int, height: int, detections: Detections, now: datetime
    ) -> list[Verdict]: ...

    def rule(self, rule_id: str) -> RuleInfo: ...

    def zone_pixels(self, rule_id: str, width: int, height: int) -> np.ndarray | None: ...


class GateLike(Protocol):
    def admit(self, verdict: Verdict, cooldown_s: float, now_monotonic: float) -> bool: ...

    def reopen(self, verdict: Verdict) -> None: ...


@dataclass(frozen=True, slots=True)
class VisitCost:
    """Milliseconds per stage of one visit."""

    connect: float
    first_keyframe: float
    decode: float
    inference: float
    rules: float
    evidence: float

    @property
    def total(self) -> float:
        return self.connect + self.first_keyframe + self.decode + self.inference + self.rules + self.evidence


@dataclass(frozen=True, slots=True)
class VisitResult:
    camera_id: str
    detections: int
    fired: int
    events: list[Event]
    cost: VisitCost


@dataclass
class VisitPipeline:
    grabber: GrabberLike
    detector: DetectorLike
    engine: Callable[[], EngineLike]
    gate: GateLike
    sink: EventSink
    clock: Clock
    jpeg_quality: int = 85

    def visit(self, camera: Camera, seq: int) -> VisitResult:
        frame, grab = self.grabber.grab(camera.id, camera.url, seq)
        t0 = time.perf_counter()
        dets = self.detector.detect(frame.image)
        t1 = time.perf_counter()
        engine = self.engine()
        verdicts = [
            v for v in engine.evaluate(camera.id, frame.width, frame.height, dets, frame.captured_at) if v.fired
        ]
        t2 = time.perf_counter()
        events = [e for v in verdicts if (e := self._event(engine, camera, frame, dets, v)) is not None]
        t3 = time.perf_counter()
        cost = VisitCost(
            connect=grab.connect,
            first_keyframe=grab.first_keyframe,
            decode=grab.decode,
            inference=(t1 - t0) * 1e3,
            rules=(t2 - t1) * 1e3,
            evidence=(t3 - t2) * 1e3,
        )
        return VisitResult(camera.id, len(dets), len(verdicts), events, cost)

    def _event(
        self, engine: EngineLike, camera: Camera, frame: Frame, dets: Detections, verdict: Verdict
    ) -> Event | None:
        rule = engine.rule(verdict.rule_id)
        if not self.gate.admit(verdict, rule.cooldown_s, frame.monotonic):
            return None
        caption = f"{camera.id} {verdict.rule_id} {frame.captured_at:%Y-%m-%d %H:%M:%S}Z"
        snap = make_snapshot(
            frame.image,
            dets,
            self.detector.labels,
            verdict.subjects,
            engine.zone_pixels(verdict.rule_id, frame.width, frame.height),
            caption,
            self.jpeg_quality,
        )
        event = Event(
            id=str(ULID()),
            rule_id=verdict.rule_id,
            rule_kind=rule.kind,
            camera_id=camera.id,
            camera_name=camera.name,
            zone=verdict.zone,
            category=rule.category,
            severity=rule.severity,
            first_seen=frame.captured_at,
            last_seen=frame.captured_at,
            count=int(verdict.measures.get("count", len(verdict.subjects))),
            reason=verdict.reason,
            grid_code=camera.grid_code,
            lon=camera.lon,
            lat=camera.lat,
            model=self.detector.name,
            evidence=snap.evidence,
        )
        try:
            self.sink.emit(event, snap.blobs)
        except Exception:  # the intake's failure, not the camera's: the camera stays healthy
            self.gate.reopen(verdict)  # not delivered: no cooldown, the next visit tries again
            logger.exception("event %s of camera %s rule %s not delivered", event.id, camera.id, verdict.rule_id)
            return None
        logger.info("event %s: camera %s rule %s %s", event.id, camera.id, verdict.rule_id, verdict.reason)
        return event


def median_cost(costs: Sequence[VisitCost]) -> VisitCost:
    if not costs:
        return VisitCost(0, 0, 0, 0, 0, 0)
    fields = ("connect", "first_keyframe", "decode", "inference", "rules", "evidence")
    return VisitCost(*(float(np.median([getattr(c, f) for c in costs])) for f in fields))
