"""One patrol visit: grab (a keyframe or a burst) -> detect -> rules -> incidents -> evidence -> sink, with its
cost per stage. The visit only grabs, detects, evaluates and hands off; what an incident is lives in `incidents`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from core.clock import Clock
from core.events import Event
from core.sink import EventSink, SinkBusyError
from core.types import Detections, Frame, Image, Observation, ObservedFrame
from incidents.events import VERBS, Place, RuleFacts, Sighting, frame_snapshot, incident_event, snapshot_of
from incidents.tracker import IncidentChange, IncidentPolicy, IncidentTracker
from ingest.camera_check import CameraChecks, CheckResult
from ingest.cameras import Camera
from ingest.gating import ChangeGate, GateDecision
from ingest.linkage import EvidenceRequests, evidence_event
from ingest.recheck import Rechecks
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
    """Milliseconds per stage of one visit. `gate`: the change-gating comparison; `gated`: inference was skipped
    and the last analysed frame's detections were carried (an effective visit all the same)."""

    connect: float
    first_keyframe: float
    decode: float
    inference: float
    rules: float
    evidence: float
    gate: float = 0.0
    gated: bool = False

    @property
    def total(self) -> float:
        stages = self.connect + self.first_keyframe + self.decode + self.inference + self.rules + self.evidence
        return stages + self.gate


@dataclass(frozen=True, slots=True)
class VisitResult:
    camera_id: str
    detections: int
    fired: int
    events: list[Event]
    cost: VisitCost
    changes: tuple[IncidentChange, ...] = ()

    @property
    def gated(self) -> bool:
        """True when inference was skipped and the camera's last detections carried (change gating)."""
        return self.cost.gated


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
    # change gating of keyframe visits; None: every visit is analysed. Bursts and continuous visits are always
    # analysed: their rules follow motion within the visit, which a comparison with one old frame cannot stand for
    gate: ChangeGate | None = None
    # sensor alarms waiting for a look from their linked cameras (`ingest.linkage`); None: no linkage
    evidence: EvidenceRequests | None = None
    # snapshots of incidents held for a re-check before filing (rules with `recheck`), and the delayed visits
    rechecks: Rechecks = field(default_factory=Rechecks)
    # handled camera cases waiting for their camera to look again (`ingest.camera_check`); None: no checks
    checks: CameraChecks | None = None

    def visit(self, camera: Camera, seq: int) -> VisitResult:
        frames, grab = self._grab(camera, seq)
        return self.observe_frames(camera, frames, grab)

    def observe_frames(self, camera: Camera, frames: Sequence[Frame], grab: GrabTimingLike) -> VisitResult:
        """Detect, evaluate and hand off what a visit grabbed (or a continuous camera's window of samples)."""
        frames = list(frames)
        tg = time.perf_counter()
        decision = self._decide(camera, frames)
        t0 = time.perf_counter()
        observed: tuple[ObservedFrame, ...]
        if decision is not None and not decision.analyse and decision.carry is not None:
            f = frames[0]
            observed = (ObservedFrame(f.captured_at, f.monotonic, decision.carry, f.image, decision.age_s),)
        else:
            observed = tuple(
                ObservedFrame(f.captured_at, f.monotonic, self.detector.detect(f.image), f.image) for f in frames
            )
        t1 = time.perf_counter()
        gated = observed[0].carried
        if self.gate is not None and decision is not None:
            if gated:
                self.gate.skipped(camera.id)
            else:
                f = frames[0]
                self.gate.analysed(camera.id, decision, f.image, observed[0].detections, f.captured_at)
        obs = Observation(camera.id, camera.mode, observed, camera.revisit_s)
        outcomes = self.engine().observe(obs)
        t2 = time.perf_counter()
        changes = [(o.rule, c) for o in outcomes for c in self._incidents(o, camera.id, obs)]
        events = [e for rule, change in changes if (e := self._emit(camera, obs, rule, change)) is not None]
        if self.evidence is not None:
            events += self._answer(camera, obs.frames[-1], self.evidence)
        if self.checks is not None:
            self._check(camera, obs.frames[-1], outcomes, self.checks)
        t3 = time.perf_counter()
        cost = VisitCost(
            connect=grab.connect,
            first_keyframe=grab.first_keyframe,
            decode=grab.decode,
            inference=(t1 - t0) * 1e3,
            rules=(t2 - t1) * 1e3,
            evidence=(t3 - t2) * 1e3,
            gate=(t0 - tg) * 1e3,
            gated=gated,
        )
        fired = sum(len(o.fired) for o in outcomes)
        return VisitResult(camera.id, len(observed[-1].detections), fired, events, cost, tuple(c for _, c in changes))

    def _decide(self, camera: Camera, frames: list[Frame]) -> GateDecision | None:
        """The gate's decision for a keyframe visit; None without a gate or for a burst (always analysed)."""
        if self.gate is None or camera.mode != "keyframe" or len(frames) != 1:
            return None
        try:
            return self.gate.decide(camera.id, frames[0].image, frames[0].captured_at)
        except Exception:  # the gate only saves work: when it fails, the visit is analysed in full
            logger.exception("change gating failed on camera %s; the visit is analysed", camera.id)
            return None

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
        if change.recheck == "dropped":
            self.rechecks.drop(change.incident_id)
            logger.info(
                "incident %s dropped: camera %s rule %s %s", change.incident_id, camera.id, rule.id, change.reason
            )
            return None
        try:
            snapshot = None
            if change.verdict is not None:
                frame = obs.frames[change.verdict.frame]
                sighting = Sighting(frame.image, frame.detections, self.detector.labels, self.detector.name)
                snapshot = snapshot_of(change, sighting, self.jpeg_quality)
            if change.recheck == "held" and snapshot is not None:
                after_s = IncidentPolicy.of(rule).recheck_s or 0.0
                self.rechecks.hold(change.incident_id, camera.id, snapshot, after_s)
                logger.info(
                    "incident %s held for a re-check in %.0f s: camera %s rule %s",
                    change.incident_id,
                    after_s,
                    camera.id,
                    rule.id,
                )
                return None
            if change.recheck == "confirmed" and snapshot is not None:
                snapshot = self.rechecks.confirm(change.incident_id, snapshot)
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
        if change.recheck == "confirmed":
            self.rechecks.filed(change.incident_id)
        verb = VERBS[change.state]
        logger.info("incident %s %s: camera %s rule %s %s", change.incident_id, verb, camera.id, rule.id, event.reason)
        return event

    def _check(self, camera: Camera, frame: ObservedFrame, outcomes: list[RuleOutcome], checks: CameraChecks) -> None:
        """Re-evaluate, for each handled case of this camera, whether its rule still fires in its zone."""
        by_rule = {o.rule.id: o for o in outcomes}
        for request in checks.take(camera.id, frame.captured_at, set(by_rule)):
            fired = by_rule[request.rule_id].fired
            still = any(v.fired and (v.zone or None) == (request.zone or None) for v in fired)
            caption = f"{camera.id} check {request.rule_id} {frame.captured_at:%Y-%m-%d %H:%M:%S}Z"
            sighting = Sighting(frame.image, frame.detections, self.detector.labels, self.detector.name)
            snapshot = frame_snapshot(sighting, caption, self.jpeg_quality)
            checks.answer(CheckResult(request, still, snapshot, frame.captured_at))

    def _answer(self, camera: Camera, frame: ObservedFrame, requests: EvidenceRequests) -> list[Event]:
        """The frame as evidence of each sensor incident that asked this camera to look (taken after its alarm)."""
        events = []
        for request in requests.take(camera.id, frame.captured_at):
            try:
                caption = f"{camera.id} for {request.event.sensor_id} {frame.captured_at:%Y-%m-%d %H:%M:%S}Z"
                sighting = Sighting(frame.image, frame.detections, self.detector.labels, self.detector.name)
                snapshot = frame_snapshot(sighting, caption, self.jpeg_quality)
                event = evidence_event(request, snapshot, camera.name, frame.captured_at)
                self.sink.emit(event, snapshot.blobs)
            except SinkBusyError as exc:  # back-pressure: the camera's next visit answers it
                requests.add(camera.id, request.event, request.since)
                logger.warning(
                    "camera %s: evidence for incident %s held back: %s", camera.id, request.event.incident_id, exc
                )
                continue
            except Exception:  # the intake's failure: the camera stays healthy, the request is given up
                logger.exception(
                    "camera %s: evidence for incident %s not delivered", camera.id, request.event.incident_id
                )
                continue
            logger.info("incident %s: evidence from linked camera %s", request.event.incident_id, camera.id)
            events.append(event)
        return events


def median_cost(costs: Sequence[VisitCost]) -> VisitCost:
    if not costs:
        return VisitCost(0, 0, 0, 0, 0, 0)
    fields = ("connect", "first_keyframe", "decode", "inference", "rules", "evidence", "gate")
    med = [float(np.median([getattr(c, f) for c in costs])) for f in fields]
    connect, first_keyframe, decode, inference, rules, evidence, gate = med
    return VisitCost(connect, first_keyframe, decode, inference, rules, evidence, gate)
