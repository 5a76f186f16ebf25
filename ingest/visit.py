"""One patrol visit: grab (a keyframe or a burst) -> detect -> rules -> incidents -> evidence -> sink, with its
cost per stage. The visit only grabs, detects, evaluates and hands off; what an incident is lives in `incidents`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from core.clock import Clock
from core.events import Event
from core.sink import EventSink, SinkBusyError
from core.types import Detections, Frame, Image, Observation, ObservedFrame
from incidents.events import VERBS, Place, RuleFacts, Sighting, incident_event, snapshot_of
from incidents.tracker import IncidentChange, IncidentPolicy, IncidentTracker
from ingest.cameras import Camera
from rules.engine import RuleOutcome
from rules.registry import Rule

logger = logging.getLogger(__name__)


class DetectorLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def labels(self) -> list[str]: ...

    def detect(self, image: Image) -> Detections: ...


class GrabTimingLike(Protocol):
    @property
    def connect(self) -> float: ...

    @property
    def first_keyframe(self) -> float: ...

    @property
    def decode(self) -> float: ...


class GrabberLike(Protocol):
    def grab(self, camera_id: str, url: str, seq: int) -> tuple[Frame, GrabTimingLike]: ...

    def grab_burst(
        self, camera_id: str, url: str, seq: int, frames: int, span_s: float
    ) -> tuple[list[Frame], GrabTimingLike]: ...


class EngineLike(Protocol):
    def observe(self, obs: Observation) -> list[RuleOutcome]: ...


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
    changes: tuple[IncidentChange, ...] = ()


def place_of(camera: Camera) -> Place:
    return Place(camera.id, camera.name, camera.grid_code, camera.lon, camera.lat)


def facts_of(rule: Rule) -> RuleFacts:
    return RuleFacts(rule.id, rule.kind, rule.category, rule.severity)


@dataclass
class VisitPipeline:
    grabber: GrabberLike
    detector: DetectorLike
    engine: Callable[[], EngineLike]
    incidents: IncidentTracker
    sink: EventSink
    clock: Clock
    jpeg_quality: int = 85

    def visit(self, camera: Camera, seq: int) -> VisitResult:
        frames, grab = self._grab(camera, seq)
        t0 = time.perf_counter()
        observed = tuple(
            ObservedFrame(f.captured_at, f.monotonic, self.detector.detect(f.image), f.image) for f in frames
        )
        t1 = time.perf_counter()
        obs = Observation(camera.id, camera.mode, observed, camera.revisit_s)
        outcomes = self.engine().observe(obs)
        t2 = time.perf_counter()
        changes = [(o.rule, c) for o in outcomes for c in self._incidents(o, camera.id, obs)]
        events = [e for rule, change in changes if (e := self._emit(camera, obs, rule, change)) is not None]
        t3 = time.perf_counter()
        cost = VisitCost(
            connect=grab.connect,
            first_keyframe=grab.first_keyframe,
            decode=grab.decode,
            inference=(t1 - t0) * 1e3,
            rules=(t2 - t1) * 1e3,
            evidence=(t3 - t2) * 1e3,
        )
        fired = sum(len(o.fired) for o in outcomes)
        return VisitResult(camera.id, len(observed[-1].detections), fired, events, cost, tuple(c for _, c in changes))

    def _grab(self, camera: Camera, seq: int) -> tuple[list[Frame], GrabTimingLike]:
        if camera.mode == "burst":
            return self.grabber.grab_burst(camera.id, camera.url, seq, camera.burst_frames, camera.burst_span_s)
        frame, timing = self.grabber.grab(camera.id, camera.url, seq)
        return [frame], timing

    def _incidents(self, outcome: RuleOutcome, camera_id: str, obs: Observation) -> list[IncidentChange]:
        rule = outcome.rule
        policy = IncidentPolicy.of(rule)
        return self.incidents.observe(rule.id, outcome.fingerprint, camera_id, policy, outcome.fired, obs.at)

    def _emit(self, camera: Camera, obs: Observation, rule: Rule, change: IncidentChange) -> Event | None:
        try:
            snapshot = None
            if change.verdict is not None:
                frame = obs.frames[change.verdict.frame]
                sighting = Sighting(frame.image, frame.detections, self.detector.labels, self.detector.name)
                snapshot = snapshot_of(change, sighting, self.jpeg_quality)
            event = incident_event(change, facts_of(rule), place_of(camera), snapshot, self.detector.name)
            self.sink.emit(event, {} if snapshot is None else snapshot.blobs)
        except SinkBusyError as exc:  # back-pressure: the next visit hands it off again
            self.incidents.undeliver(change)
            logger.warning("incident %s of camera %s held back: %s", change.incident_id, camera.id, exc)
            return None
        except Exception:  # the intake's failure, or the evidence's, not the camera's: the camera stays healthy
            self.incidents.undeliver(change)  # not delivered: the next visit tries again
            logger.exception("incident %s of camera %s rule %s not delivered", change.incident_id, camera.id, rule.id)
            return None
        verb = VERBS[change.state]
        logger.info("incident %s %s: camera %s rule %s %s", change.incident_id, verb, camera.id, rule.id, event.reason)
        return event


def median_cost(costs: Sequence[VisitCost]) -> VisitCost:
    if not costs:
        return VisitCost(0, 0, 0, 0, 0, 0)
    fields = ("connect", "first_keyframe", "decode", "inference", "rules", "evidence")
    return VisitCost(*(float(np.median([getattr(c, f) for c in costs])) for f in fields))
