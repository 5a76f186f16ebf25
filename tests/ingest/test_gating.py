"""Change gating on real pictures of the shared footage: what is judged unchanged (noise, recompression, light)
and changed (a person walking in, a vehicle parking), forced analyses, carried detections and their age, and a
persistence rule that still counts the gated visits, through the visit pipeline."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from core.events import Event, EventState
from core.settings import GatingOverride, GatingSettings
from core.types import Detections, Frame, Image, Observation
from detectors.detector import Detector
from detectors.manifest import load_manifest
from detectors.session import create_session
from incidents.tracker import IncidentTracker
from ingest.cameras import Camera
from ingest.gating import ChangeGate, change_score, thumbnail
from ingest.grabber import VisitTiming
from ingest.visit import VisitPipeline, VisitResult
from rules.engine import RuleEngine, RuleOutcome
from rules.loader import load_rule_files
from tests.support.assets import ROOT
from tests.support.scenes import VAN, empty_scene, lit, night, noisy, pasted, read_frames, recompressed

T0 = datetime(2026, 5, 4, 1, 0, tzinfo=UTC)
THRESHOLD = GatingSettings().threshold
Box = tuple[int, int, int, int]


@pytest.fixture(scope="module")
def frames(footage_path: Path) -> list[Image]:
    return read_frames(footage_path, every=10)


@pytest.fixture(scope="module")
def scene(frames: list[Image]) -> Image:
    return empty_scene(frames[::2])


@pytest.fixture(scope="module")
def detector(yolox_path: Path) -> Detector:
    return Detector(create_session(yolox_path), load_manifest(ROOT / "models" / "yolox-nano.yaml"))


@pytest.fixture(scope="module")
def people(frames: list[Image], detector: Detector) -> list[tuple[Image, Box]]:
    """Real people of the footage: (frame, box) of confident detections, the smallest first."""
    found = []
    for frame in frames[::4]:
        dets = detector.detect(frame)
        for box, cls, conf in zip(dets.xyxy, dets.class_id, dets.confidence, strict=True):
            if detector.labels[int(cls)] == "person" and conf > 0.6 and box[0] > 60:
                found.append((frame, (int(box[0]), int(box[1]), int(box[2]), int(box[3]))))
    found.sort(key=lambda p: (p[1][2] - p[1][0]) * (p[1][3] - p[1][1]))
    assert len(found) >= 20
    return found


def score(before: Image, after: Image) -> float:
    return change_score(thumbnail(before), thumbnail(after))


Make = Callable[[Image, np.random.Generator], tuple[Image, Image]]
UNCHANGED: dict[str, Make] = {
    "sensor noise": lambda s, r: (noisy(s, 8, r), noisy(s, 8, r)),
    "JPEG recompression": lambda s, r: (recompressed(s, 25), recompressed(noisy(s, 2, r), 40)),
    "darker by 40 %": lambda s, r: (s, lit(s, 0.6)),
    "brighter by 15 %, morning": lambda s, r: (lit(s, 0.7), lit(s, 0.8, 2)),
    "night, two visits": lambda s, r: (night(s, r), night(s, r)),
    "night, light ramping down": lambda s, r: (night(s, r), night(s, r, gain=0.28)),
}


@pytest.mark.parametrize("name", list(UNCHANGED))
def test_noise_recompression_and_light_changes_are_judged_unchanged(scene: Image, name: str) -> None:
    rng = np.random.default_rng(7)
    for _ in range(3):
        before, after = UNCHANGED[name](scene, rng)
        assert score(before, after) < THRESHOLD, name


@pytest.mark.parametrize("at_night", [False, True])
def test_a_person_walking_in_is_judged_changed(scene: Image, people: list[tuple[Image, Box]], at_night: bool) -> None:
    rng = np.random.default_rng(3)
    # the five smallest people of the footage and a spread of the others
    for frame, box in people[:5] + people[5::10]:
        before, after = scene, pasted(scene, frame, box)
        if at_night:
            before, after = night(before, rng), night(after, rng)
        assert score(before, after) > THRESHOLD, box


@pytest.mark.parametrize("at", [(300, 230), (100, 190), (500, 300), (20, 40)])
def test_a_parked_car_appearing_is_judged_changed(scene: Image, at: tuple[int, int]) -> None:
    assert score(scene, pasted(scene, scene, VAN, at=at)) > THRESHOLD


@dataclass
class StillCamera:
    """A grabber that shows `pictures(seq)` at T0 + (seq - 1) * `every_s`."""

    pictures: Callable[[int], Image]
    every_s: float = 60.0

    def grab(self, camera_id: str, url: str, seq: int) -> tuple[Frame, VisitTiming]:
        at = T0 + timedelta(seconds=(seq - 1) * self.every_s)
        frame = Frame(camera_id, seq, at, (seq - 1) * self.every_s, self.pictures(seq), "still")
        return frame, VisitTiming(0.0, 0.0, 0.0)

    def grab_burst(
        self, camera_id: str, url: str, seq: int, frames: int, span_s: float
    ) -> tuple[list[Frame], VisitTiming]:
        frame, timing = self.grab(camera_id, url, seq)
        return [frame] * frames, timing


@dataclass
class CountingDetector:
    inner: Detector
    runs: int = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def labels(self) -> list[str]:
        return self.inner.labels

    def detect(self, image: Image) -> Detections:
        self.runs += 1
        return self.inner.detect(image)


@dataclass
class Recorder:
    """An engine around the real one that keeps every observation it was shown."""

    engine: RuleEngine
    seen: list[Observation] = field(default_factory=list)

    def observe(self, obs: Observation) -> list[RuleOutcome]:
        self.seen.append(obs)
        return self.engine.observe(obs)


@dataclass
class ListSink:
    events: list[Event] = field(default_factory=list)

    def emit(self, event: Event, blobs: Mapping[str, bytes]) -> None:
        self.events.append(event)


@dataclass
class Run:
    results: list[VisitResult]
    seen: list[Observation]
    events: list[Event]
    runs: int


DEMO_RULES = ROOT / "configs" / "demo" / "rules"
FROZEN = """\
rules:
  - id: frozen-picture
    kind: video_quality
    checks: [frozen]
    frozen_visits: 3
    check_every_s: 0
"""


def patrol(
    detector: Detector,
    pictures: Callable[[int], Image],
    visits: int,
    gate: ChangeGate | None,
    mode: str = "keyframe",
    rules: Path = DEMO_RULES,
) -> Run:
    engine = Recorder(RuleEngine(load_rule_files([rules]), detector.labels))
    counting, sink = CountingDetector(detector), ListSink()
    grabber = StillCamera(pictures)
    pipeline = VisitPipeline(grabber, counting, lambda: engine, IncidentTracker(), sink, _Clock(), gate=gate)
    camera = Camera(id="cam-1", url="file:///still", mode=mode, revisit_s=60)
    results = [pipeline.visit(camera, seq) for seq in range(1, visits + 1)]
    return Run(results, engine.seen, sink.events, counting.runs)


class _Clock:
    def now(self) -> datetime:
        return T0

    def monotonic(self) -> float:
        return 0.0


def night_scene(scene: Image) -> Callable[[int], Image]:
    return lambda seq: night(scene, np.random.default_rng(seq))


def test_a_static_scene_is_analysed_every_k_visits_and_carries_detections_with_their_age(
    detector: Detector, scene: Image
) -> None:
    # given: a camera that shows the same night scene on every visit, a minute apart
    gate = ChangeGate(GatingSettings(every_k=4, max_age_s=3600))
    # when
    run = patrol(detector, night_scene(scene), 9, gate)
    # then: visits 1, 5 and 9 are analysed, the others carry the last analysed frame's detections
    assert [r.gated for r in run.results] == [False, True, True, True, False, True, True, True, False]
    assert run.runs == 3
    ages = [obs.last.carried_s for obs in run.seen]
    assert ages == [None, 60.0, 120.0, 180.0, None, 60.0, 120.0, 180.0, None]
    assert [obs.gated for obs in run.seen] == [r.gated for r in run.results]
    for obs in run.seen[1:4]:
        assert np.array_equal(obs.last.detections.xyxy, run.seen[0].last.detections.xyxy)
        assert obs.last.image is not run.seen[0].last.image  # the pixels are the visit's own
    assert all(r.cost.gated == r.gated and r.cost.inference < 1.0 for r in run.results if r.gated)


def test_detections_older_than_max_age_are_not_carried(detector: Detector, scene: Image) -> None:
    gate = ChangeGate(GatingSettings(every_k=100, max_age_s=150))
    run = patrol(detector, night_scene(scene), 6, gate)
    # carried at 60 s and 120 s; at 180 s the last analysis is too old
    assert [r.gated for r in run.results] == [False, True, True, False, True, True]


def test_a_person_walking_in_is_analysed_and_detected(
    detector: Detector, scene: Image, people: list[tuple[Image, Box]]
) -> None:
    frame, box = people[len(people) // 2]
    with_person = pasted(scene, frame, box)
    run = patrol(detector, lambda seq: with_person if seq == 3 else scene, 4, ChangeGate())
    assert [r.gated for r in run.results] == [False, True, False, False]  # back to the empty scene: changed again
    persons = [detector.labels[int(c)] for c in run.seen[2].last.detections.class_id].count("person")
    assert persons > [detector.labels[int(c)] for c in run.seen[1].last.detections.class_id].count("person")


def test_a_persistence_rule_counts_gated_visits_and_opens_as_with_full_analysis(
    detector: Detector, scene: Image
) -> None:
    # given: the demo kerb-parking rule (3 of 5 visits over 180 s) and the parked van and car, night after night
    full = patrol(detector, night_scene(scene), 6, None)
    gated = patrol(detector, night_scene(scene), 6, ChangeGate())
    # then: with gating one analysis, and the same incident opens on the same visit
    assert full.runs == 6 and gated.runs == 1
    assert [r.gated for r in gated.results] == [False] + [True] * 5

    def opens(run: Run) -> list[tuple[str, datetime]]:
        return [(e.rule_id, e.first_seen) for e in run.events if e.state == EventState.open]

    assert opens(gated) == opens(full)
    assert [o for o in opens(full) if o[0] == "kerb-parking"], "the parked vehicles open a kerb-parking incident"
    assert [r.fired for r in gated.results] == [r.fired for r in full.results]


def test_bursts_are_always_analysed(detector: Detector, scene: Image) -> None:
    run = patrol(detector, night_scene(scene), 3, ChangeGate(), mode="burst")
    assert not any(r.gated for r in run.results)
    assert not any(f.carried for obs in run.seen for f in obs.frames)


def test_gating_is_off_per_camera_or_globally(detector: Detector, scene: Image) -> None:
    off = GatingSettings(cameras={"cam-1": GatingOverride(enabled=False)})
    assert not any(r.gated for r in patrol(detector, night_scene(scene), 3, ChangeGate(off)).results)
    assert not any(
        r.gated for r in patrol(detector, night_scene(scene), 3, ChangeGate(GatingSettings(enabled=False))).results
    )
    on = GatingSettings(enabled=False, cameras={"cam-1": GatingOverride(enabled=True, every_k=2)})
    assert [r.gated for r in patrol(detector, night_scene(scene), 4, ChangeGate(on)).results] == [False, True] * 2


def test_a_new_picture_size_is_analysed(detector: Detector, scene: Image) -> None:
    small = np.ascontiguousarray(scene[::2, ::2])
    run = patrol(detector, lambda seq: scene if seq < 3 else small, 4, ChangeGate())
    assert [r.gated for r in run.results] == [False, True, False, True]


def test_a_frozen_picture_is_gated_and_the_video_quality_rule_still_sees_it_frozen(
    detector: Detector, scene: Image, tmp_path: Path
) -> None:
    # given: a camera whose picture froze (the same bytes on every visit) and a rule that checks for that
    (tmp_path / "frozen.yaml").write_text(FROZEN, encoding="utf-8")
    # when
    run = patrol(detector, lambda seq: scene, 4, ChangeGate(), rules=tmp_path)
    # then: inference is skipped after the first visit, yet the rule judges each visit's own picture
    assert [r.gated for r in run.results] == [False, True, True, True]
    assert [r.fired for r in run.results] == [0, 0, 1, 1]
    assert [e.rule_id for e in run.events if e.state == EventState.open] == ["frozen-picture"]
