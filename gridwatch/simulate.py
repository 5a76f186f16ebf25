"""A simulated patrol over footage: the real visit pipeline (detector, rules, incidents, evidence) on a clock
that jumps from visit to visit, so an hour of patrol at a camera's revisit interval runs in seconds.

A clip is served as a live camera would be (looping, `FileCamera`): each visit gets the keyframe, or the burst,
that a camera showing the clip would show at that moment. Images and folders of images are visits one after
another. `gridwatch rules test` and the alert-quality tests both run this; nothing is stored or sent.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from core.errors import GridwatchError
from core.events import Event
from core.redact import sanitize_url
from core.types import Detections, Frame, Image
from incidents.tracker import IncidentTracker
from ingest.cameras import Camera
from ingest.gating import ChangeGate
from ingest.grabber import FileCamera, VisitTiming, file_path, file_start_offset
from ingest.recheck import Rechecks
from ingest.visit import DetectorLike, EngineLike, VisitPipeline, VisitResult

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
Transform = Callable[[Image, float], Image]  # (picture, simulated seconds) -> what the camera shows


class MemoDetector:
    """A detector that remembers its answer per picture: a patrol over a looping clip sees few distinct frames
    (one per keyframe), so an hour of simulated visits costs a few dozen inferences."""

    def __init__(self, detector: DetectorLike, keep: int = 512) -> None:
        self._detector = detector
        self._keep = keep
        self._seen: OrderedDict[bytes, Detections] = OrderedDict()
        self.runs = 0

    @property
    def name(self) -> str:
        return self._detector.name

    @property
    def labels(self) -> list[str]:
        return self._detector.labels

    def detect(self, image: Image) -> Detections:
        key = hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16).digest()
        found = self._seen.get(key)
        if found is None:
            found = self._seen[key] = self._detector.detect(image)
            self.runs += 1
            if len(self._seen) > self._keep:
                self._seen.popitem(last=False)
        return found


@dataclass
class SimClock:
    """Wall and monotonic time of the simulation: `start` plus the simulated seconds."""

    start: datetime
    seconds: float = 0.0

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds)

    def monotonic(self) -> float:
        return self.seconds


class ClipGrabber:
    """The grabber protocol over files, on the simulated clock; `transform` may alter what a camera shows
    (mask an object out after a while, degrade the picture)."""

    def __init__(self, clock: SimClock, transform: Transform | None = None) -> None:
        self._clock = clock
        self._transform = transform
        self._cameras: dict[str, FileCamera | list[Path]] = {}

    def _camera(self, camera_id: str, url: str) -> FileCamera | list[Path]:
        camera = self._cameras.get(camera_id)
        if camera is None:
            path = file_path(url)
            if path is None:
                raise GridwatchError(f"camera {camera_id}: a simulated patrol plays files, not {sanitize_url(url)}")
            if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
                camera = _images(path)
            else:
                camera = FileCamera(camera_id, path, t0=-file_start_offset(url), wall=self._clock.now)
            self._cameras[camera_id] = camera
        return camera

    def _shown(self, frame: Frame) -> Frame:
        if self._transform is None:
            return frame
        image = self._transform(frame.image, self._clock.seconds)
        return Frame(frame.camera_id, frame.seq, frame.captured_at, frame.monotonic, image, frame.source)

    def grab(self, camera_id: str, url: str, seq: int) -> tuple[Frame, VisitTiming]:
        camera = self._camera(camera_id, url)
        if isinstance(camera, list):
            path = camera[(seq - 1) % len(camera)]
            frame = Frame(camera_id, seq, self._clock.now(), self._clock.seconds, _read(path), path.name)
            return self._shown(frame), VisitTiming(0.0, 0.0, 0.0)
        frame, timing = camera.grab(seq, now=self._clock.seconds)
        return self._shown(frame), timing

    def grab_burst(
        self, camera_id: str, url: str, seq: int, frames: int, span_s: float
    ) -> tuple[list[Frame], VisitTiming]:
        camera = self._camera(camera_id, url)
        if isinstance(camera, list):
            raise GridwatchError(f"camera {camera_id}: bursts need a clip, not images")
        shot, timing = camera.grab_burst(seq, frames, span_s, now=self._clock.seconds)
        return [self._shown(f) for f in shot], timing

    def close(self) -> None:
        for camera in self._cameras.values():
            if isinstance(camera, FileCamera):
                camera.close()


def _images(path: Path) -> list[Path]:
    found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if path.is_dir() else [path]
    if not found:
        raise GridwatchError(f"{path}: no images")
    return found


def _read(path: Path) -> Image:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise GridwatchError(f"{path}: not a readable image")
    return np.asarray(image, np.uint8)


@dataclass
class RecordingSink:
    """Keeps what the pipeline emits; with `out_dir`, writes each annotated snapshot there."""

    out_dir: Path | None = None
    events: list[Event] = field(default_factory=list)
    snapshots: dict[str, Path] = field(default_factory=dict)

    def emit(self, event: Event, blobs: Mapping[str, bytes]) -> None:
        self.events.append(event)
        marked = next((e for e in event.evidence if e.kind == "annotated"), None)
        if self.out_dir is not None and marked is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            path = self.out_dir / f"{len(self.events):04d}_{event.rule_id}_{event.state.value}.jpg"
            path.write_bytes(blobs[marked.key])
            self.snapshots[event.id] = path


@dataclass(frozen=True, slots=True)
class Simulation:
    events: list[Event]
    visits: list[VisitResult]
    snapshots: dict[str, Path]
    seconds: float


def _due(cameras: Sequence[Camera], duration_s: float) -> Iterator[tuple[float, Camera]]:
    """(simulated time, camera) of every visit, in time order; each camera every `revisit_s` from 0."""
    heap = [(0.0, i) for i in range(len(cameras))]
    while heap:
        t, i = heapq.heappop(heap)
        if t > duration_s:
            return
        yield t, cameras[i]
        heapq.heappush(heap, (t + cameras[i].revisit_s, i))


def simulate_patrol(
    cameras: Sequence[Camera],
    detector: DetectorLike,
    engine: Callable[[], EngineLike],
    *,
    start: datetime,
    duration_s: float,
    transform: Transform | None = None,
    out_dir: Path | None = None,
    incidents: IncidentTracker | None = None,
    jpeg_quality: int = 85,
    gate: ChangeGate | None = None,
    rechecks: Rechecks | None = None,
) -> Simulation:
    """Visit each camera every `revisit_s` simulated seconds for `duration_s`; returns every event emitted.
    With `gate`, keyframe visits are change-gated as a running patrol's are; without, every visit is analysed."""
    clock = SimClock(start)
    grabber = ClipGrabber(clock, transform)
    sink = RecordingSink(out_dir)
    tracker = incidents if incidents is not None else IncidentTracker()  # an empty tracker is falsy
    pipeline = VisitPipeline(grabber, detector, engine, tracker, sink, clock, jpeg_quality, gate)
    if rechecks is not None:  # the re-check visits fall on the round's own visits; `rechecks` records the asks
        pipeline.rechecks = rechecks
    visits, seq = [], dict.fromkeys((c.id for c in cameras), 0)
    try:
        for t, camera in _due(cameras, duration_s):
            clock.seconds = t
            seq[camera.id] += 1
            visits.append(pipeline.visit(camera, seq[camera.id]))
    finally:
        grabber.close()
    return Simulation(sink.events, visits, sink.snapshots, duration_s)
