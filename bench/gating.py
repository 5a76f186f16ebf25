"""`python -m bench.gating`: change gating on the shared footage. (1) The change score of pictures that did not
change (noise, recompression, light, night) and of pictures that did (a person walking in, a vehicle parking),
against the default threshold. (2) Effective visits per second per core, with and without gating, on day/night
mixes of the footage (YOLOX-nano, ONNX Runtime, 1 thread, the demo rules). (3) Incidents opened by the demo
rules over the footage through the simulated patrol (`gridwatch rules test`'s path), gating on and off, and
those that gating missed.

Prints the `## Change gating` section of docs/benchmarks.md; `--write` replaces it in the file.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import av
import cv2
import numpy as np

from bench.report import replace_section
from core.clock import Clock
from core.events import Event, EventState
from core.settings import GatingSettings
from core.types import Frame, Image
from detectors.detector import Detector
from detectors.manifest import load_manifest
from detectors.session import create_session
from gridwatch.simulate import MemoDetector, Transform, simulate_patrol
from incidents.tracker import IncidentTracker
from ingest.cameras import Camera, load_cameras
from ingest.gating import THUMB_SIZE, ChangeGate, change_score, thumbnail
from ingest.grabber import VisitTiming
from ingest.visit import VisitPipeline
from rules.categories import default_categories
from rules.engine import RuleEngine
from rules.loader import load_rule_files
from tests.support.assets import media_mirror, model_mirror
from tests.support.scenes import VAN, empty_scene, lit, night, noisy, pasted, read_frames, recompressed

logger = logging.getLogger("bench.gating")

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Change gating"
T0 = datetime(2026, 5, 4, 16, 0, tzinfo=UTC)  # Tuesday 00:00 in Shanghai
LEVELS = 12  # light levels of the day/night cycle, from full day (gain 1) to night (gain 0.3)
BLOCK = 10  # visits in a row that are busy or quiet
Box = tuple[int, int, int, int]
Pair = Callable[[np.random.Generator], tuple[Image, Image]]


def people(frames: Sequence[Image], detector: Detector) -> list[tuple[Image, Box]]:
    """Confident people of the footage, (frame, box), the smallest first."""
    found = []
    for frame in frames:
        dets = detector.detect(frame)
        for box, cls, conf in zip(dets.xyxy, dets.class_id, dets.confidence, strict=True):
            if detector.labels[int(cls)] == "person" and conf > 0.6 and box[0] > 60:
                found.append((frame, (int(box[0]), int(box[1]), int(box[2]), int(box[3]))))
    found.sort(key=lambda p: (p[1][2] - p[1][0]) * (p[1][3] - p[1][1]))
    return found


def _person(scene: Image, frame: Image, box: Box, dark: bool, rng: np.random.Generator) -> tuple[Image, Image]:
    after = pasted(scene, frame, box)
    return (night(scene, rng), night(after, rng)) if dark else (scene, after)


def _van(scene: Image, at: tuple[int, int], dark: bool, rng: np.random.Generator) -> tuple[Image, Image]:
    after = pasted(scene, scene, VAN, at=at)
    return (night(scene, rng), night(after, rng)) if dark else (scene, after)


def _same(before: Image, after: Image, rng: np.random.Generator) -> tuple[Image, Image]:
    return before, after


def _renditions(make: Callable[[np.random.Generator], Image], rng: np.random.Generator) -> tuple[Image, Image]:
    return make(rng), make(rng)


def conditions(scene: Image, frames: Sequence[Image], persons: list[tuple[Image, Box]]) -> dict[str, list[Pair]]:
    """Pairs (last analysed picture, this visit's) by condition; "=" unchanged, "+" changed."""
    s = scene
    spots = ((300, 230), (100, 190), (500, 300), (20, 40))
    few = persons[:10] + persons[10::10]
    keyframes = frames[::4]

    def sensor(r: np.random.Generator) -> Image:
        return noisy(s, 8, r)

    def dark(r: np.random.Generator) -> Image:
        return night(s, r)

    def deep(r: np.random.Generator) -> Image:
        return recompressed(noisy(lit(s, 0.15), 6, r), 40)

    def jpeg(r: np.random.Generator) -> tuple[Image, Image]:
        return recompressed(s, 25), recompressed(noisy(s, 2, r), 40)

    def ramp(r: np.random.Generator) -> tuple[Image, Image]:
        return night(s, r), night(s, r, gain=0.28)

    return {
        "= sensor noise, sigma 8": [partial(_renditions, sensor)] * 6,
        "= JPEG q25 against q40": [jpeg] * 6,
        "= 40 % darker": [partial(_same, s, lit(s, 0.6))],
        "= 15 % brighter (no clipping)": [partial(_same, lit(s, 0.7), lit(s, 0.8, 2))],
        "= night (gain 0.35, noise 5, JPEG q50)": [partial(_renditions, dark)] * 6,
        "= night, light ramping 0.35 -> 0.28": [ramp] * 6,
        "= deep night (gain 0.15, noise 6, JPEG q40)": [partial(_renditions, deep)] * 6,
        "+ 20 % brighter (the sky and the van clip)": [partial(_same, s, lit(s, 1.2))],
        "+ a person walks in": [partial(_person, s, f, b, False) for f, b in few],
        "+ a person walks in, at night": [partial(_person, s, f, b, True) for f, b in few],
        "+ the 10 smallest people of the footage": [partial(_person, s, f, b, False) for f, b in persons[:10]],
        "+ a van parks": [partial(_van, s, a, False) for a in spots],
        "+ a van parks, at night": [partial(_van, s, a, True) for a in spots],
        "+ the footage, keyframe to keyframe": [partial(_same, a, b) for a, b in itertools.pairwise(keyframes)],
    }


def score_rows(table: Mapping[str, list[Pair]], threshold: float) -> list[str]:
    rng = np.random.default_rng(0)
    rows = ["| pictures | pairs | min score | max score | judged changed |", "|---|---|---|---|---|"]
    for name, pairs in table.items():
        scores = [change_score(thumbnail(a), thumbnail(b)) for a, b in (p(rng) for p in pairs)]
        changed = sum(x > threshold for x in scores)
        rows.append(f"| {name[2:]} | {len(scores)} | {min(scores):.3f} | {max(scores):.3f} | {changed} |")
    return rows


@dataclass
class Prepared:
    """A grabber that returns the frame the benchmark set before the visit (made outside the timed part)."""

    frame: Frame | None = None

    def grab(self, camera_id: str, url: str, seq: int) -> tuple[Frame, VisitTiming]:
        if self.frame is None:
            raise RuntimeError("no frame prepared")
        return self.frame, VisitTiming(0.0, 0.0, 0.0)

    def grab_burst(
        self, camera_id: str, url: str, seq: int, frames: int, span_s: float
    ) -> tuple[list[Frame], VisitTiming]:
        raise NotImplementedError


@dataclass
class NullSink:
    events: list[Event] = field(default_factory=list)

    def emit(self, event: Event, blobs: Mapping[str, bytes]) -> None:
        self.events.append(event)


class _Clock(Clock):
    def now(self) -> datetime:
        return T0

    def monotonic(self) -> float:
        return 0.0


@dataclass(frozen=True, slots=True)
class Mix:
    """A day of `visits` visits a minute apart for each of `cameras` cameras, light going from day to night and
    back; `busy` of the visits (in blocks of BLOCK) show the footage with its passers-by, the others the empty
    scene (noise and compression as the light level has them)."""

    busy: float
    cameras: int = 4
    visits: int = 150

    def level(self, i: int) -> int:
        return round((LEVELS - 1) * (1 - math.cos(2 * math.pi * i / self.visits)) / 2)

    def is_busy(self, camera: int, i: int) -> bool:
        return ((i // BLOCK) * 0.618034 + camera * 0.29) % 1.0 < self.busy


def quiet_pool(scene: Image) -> list[list[Image]]:
    """Renditions of the empty scene per light level: four each, noisier and more compressed as it darkens."""
    rng = np.random.default_rng(1)
    pool = []
    for level in range(LEVELS):
        gain = 1.0 - 0.7 * level / (LEVELS - 1)
        sigma, quality = 2.0 + 4.0 * (1 - gain), int(80 - 30 * (1 - gain))
        pool.append([recompressed(noisy(lit(scene, gain), sigma, rng), quality) for _ in range(4)])
    return pool


@dataclass(frozen=True, slots=True)
class Rate:
    visits: int
    full: float  # visits/s of one core, every visit analysed
    gated: float  # visits/s of one core, change gating on
    analysed: int  # visits analysed with gating on


def mix_rate(
    detector: Detector, engine: Callable[[], RuleEngine], mix: Mix, pool: list[list[Image]], frames: list[Image]
) -> Rate:
    """Visits/s of one core on the mix, without and with gating, CPU time of the visits alone. The two
    pipelines take turns visit by visit on the same pictures, so other load on the machine falls on both alike."""
    grabber = Prepared()
    pipelines = {
        on: VisitPipeline(grabber, detector, _fixed(engine()), IncidentTracker(), NullSink(), _Clock(), gate=gate)
        for on, gate in ((False, None), (True, ChangeGate(GatingSettings())))
    }
    cams = [Camera(id=f"mix-{c}", url="file:///mix", revisit_s=60) for c in range(mix.cameras)]
    cpu = dict.fromkeys(pipelines, 0.0)
    visits, analysed = 0, 0
    for i in range(mix.visits):
        level = mix.level(i)
        for c, cam in enumerate(cams):
            if mix.is_busy(c, i):
                gain = 1.0 - 0.7 * level / (LEVELS - 1)
                picture = lit(frames[(i * 3 + c * 37) % len(frames)], gain)
            else:
                picture = pool[level][(i + c) % 4]
            grabber.frame = Frame(cam.id, i, T0 + timedelta(seconds=60 * i), 60.0 * i, picture, "mix")
            visits += 1
            for on, pipeline in pipelines.items():
                c0 = time.process_time()
                result = pipeline.visit(cam, i + 1)
                cpu[on] += time.process_time() - c0
                analysed += on and not result.gated
    return Rate(visits, visits / cpu[False], visits / cpu[True], analysed)


def keyframe_decode_ms(footage: Path) -> float:
    """CPU ms to decode one keyframe of the footage (PyAV, keyframes only, one thread)."""
    with av.open(str(footage)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        stream.thread_count = 1
        c0, count = time.process_time(), 0
        for frame in container.decode(stream):
            frame.to_ndarray(format="bgr24")
            count += 1
    return (time.process_time() - c0) * 1e3 / max(count, 1)


@dataclass(frozen=True, slots=True)
class Incident:
    rule: str
    camera: str
    zone: str | None
    opened: datetime
    closed: datetime | None


def incidents_of(events: list[Event]) -> list[Incident]:
    found: dict[str, Incident] = {}
    for e in events:
        if e.state == EventState.open:
            found[e.incident_id] = Incident(e.rule_id, e.camera_id, e.zone, e.first_seen, None)
        elif e.state == EventState.close and e.incident_id in found:
            old = found[e.incident_id]
            found[e.incident_id] = Incident(old.rule, old.camera, old.zone, old.opened, e.last_seen)
    return list(found.values())


def missed(full: list[Incident], gated: list[Incident], end: datetime) -> tuple[list[Incident], float]:
    """Incidents of full analysis that no gated incident of the same rule, camera and zone overlaps in time, and
    the largest delay (s) of a gated open after the full one it matches."""
    lost, delay = [], 0.0
    for a in full:
        overlapping = [
            b
            for b in gated
            if (b.rule, b.camera, b.zone) == (a.rule, a.camera, a.zone)
            and b.opened <= (a.closed or end)
            and a.opened <= (b.closed or end)
        ]
        if not overlapping:
            lost.append(a)
        else:
            delay = max(delay, (min(b.opened for b in overlapping) - a.opened).total_seconds())
    return lost, delay


def day_night(scene: Image, night_s: float, van_gone_s: float | None = None) -> Transform:
    """Night (the empty scene, dark and noisy, a fresh rendition each visit) until `night_s`, then the footage;
    from `van_gone_s` on the van is painted out."""
    mask = np.zeros(scene.shape[:2], np.uint8)
    x1, y1, x2, y2 = VAN
    mask[y1 - 8 : y2 + 8, x1 - 8 : x2 + 8] = 255

    def transform(image: Image, now_s: float) -> Image:
        shown = night(scene, np.random.default_rng(int(now_s * 1000))) if now_s < night_s else image
        if van_gone_s is not None and now_s >= van_gone_s:
            shown = np.asarray(cv2.inpaint(np.ascontiguousarray(shown), mask, 5, cv2.INPAINT_TELEA), np.uint8)
        return shown

    return transform


def closed(incidents: list[Incident]) -> int:
    return sum(i.closed is not None for i in incidents)


def _fixed(engine: RuleEngine) -> Callable[[], RuleEngine]:
    return lambda: engine


def incident_rows(detector: Detector, scene: Image, footage: Path) -> list[str]:
    os.environ.setdefault("GRIDWATCH_DEMO_MEDIA", str(footage.parent))
    demo = load_cameras(ROOT / "configs" / "demo" / "cameras.yaml")
    engine_rules = load_rule_files([ROOT / "configs" / "demo" / "rules"])
    slow = [c.model_copy(update={"revisit_s": 60.0}) for c in demo]
    cases: list[tuple[str, Sequence[Camera], float, Transform | None]] = [
        ("the shared footage, 4 demo cameras, a visit every 5 s, 1 h", demo, 3600.0, None),
        (
            "night 3 h (the empty scene, dark and noisy) then the footage 1 h, 4 cameras, every 60 s",
            slow,
            4 * 3600.0,
            day_night(scene, 3 * 3600.0),
        ),
        ("as above, the van leaves at 01:30 in the night", slow, 4 * 3600.0, day_night(scene, 3 * 3600.0, 5400.0)),
    ]
    rows = [
        "| footage | visits | analysed, gated | incidents, full / gated | closed, full / gated | missed "
        "| largest open delay |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, cameras, seconds, transform in cases:
        runs = {}
        for on in (False, True):
            engine = RuleEngine(engine_rules, detector.labels, categories=default_categories())
            memo = MemoDetector(detector)
            runs[on] = simulate_patrol(
                cameras,
                memo,
                _fixed(engine),
                start=T0,
                duration_s=seconds,
                transform=transform,
                gate=ChangeGate(GatingSettings()) if on else None,
            )
        end = T0 + timedelta(seconds=seconds)
        full, gated = incidents_of(runs[False].events), incidents_of(runs[True].events)
        lost, delay = missed(full, gated, end)
        analysed = sum(not v.gated for v in runs[True].visits)
        visits = len(runs[True].visits)
        rows.append(
            f"| {name} | {visits} | {analysed} ({analysed / visits:.0%}) | {len(full)} / {len(gated)} "
            f"| {closed(full)} / {closed(gated)} | {len(lost)} | {delay:.0f} s |"
        )
        for a in lost:
            logger.warning("missed: %s", a)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--visits", type=int, default=150, help="visits per camera of each mix")
    parser.add_argument("--write", action="store_true", help="replace the section in docs/benchmarks.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy_logger in ("ingest", "incidents", "rules", "gridwatch"):  # one line per incident step otherwise
        logging.getLogger(noisy_logger).setLevel(logging.WARNING)
    cv2.setNumThreads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    footage = media_mirror() / "vtest_h264.mp4"
    detector = Detector(
        create_session(model_mirror() / "yolox_nano.onnx", ["CPUExecutionProvider"], 1),
        load_manifest(ROOT / "models" / "yolox-nano.yaml"),
    )
    frames = read_frames(footage, every=10)
    scene = empty_scene(frames[::2])
    settings = GatingSettings()
    scores = score_rows(conditions(scene, frames, people(frames[::4], detector)), settings.threshold)
    logger.info("scores done")
    rules = load_rule_files([ROOT / "configs" / "demo" / "rules"])
    pool = quiet_pool(scene)
    decode = keyframe_decode_ms(footage)
    rates = [
        "| busy visits | analysed with gating | visits/s, full | visits/s, gated | x | x with keyframe decode |",
        "|---|---|---|---|---|---|",
    ]
    headline: dict[float, float] = {}
    for busy in (0.0, 0.1, 0.2, 0.35, 0.5, 1.0):
        r = mix_rate(detector, partial(RuleEngine, rules, detector.labels), Mix(busy, visits=args.visits), pool, frames)
        with_decode = (1000 / r.full + decode) / (1000 / r.gated + decode)
        rates.append(
            f"| {busy:.0%} | {r.analysed / r.visits:.0%} | {r.full:.1f} | {r.gated:.1f} | {r.gated / r.full:.2f} "
            f"| {with_decode:.2f} |"
        )
        headline[busy] = r.gated / r.full
        logger.info("busy %.2f: %s", busy, rates[-1])
    incidents = incident_rows(detector, scene, footage)
    text = section(scores, rates, incidents, settings, decode, args.visits, headline)
    if args.write:
        replace_section(ROOT / "docs" / "benchmarks.md", HEADING, text)
    print(text)


def section(
    scores: list[str],
    rates: list[str],
    incidents: list[str],
    settings: GatingSettings,
    decode: float,
    visits: int,
    headline: dict[float, float],
) -> str:
    nl = "\n"
    w, h = THUMB_SIZE
    return f"""{HEADING}

How to run: `make bench` (or `.venv/bin/python -m bench.gating --write`). Machine: {platform.machine()},
{os.cpu_count()} cores; one process pinned to one core, ONNX Runtime 1 thread, `cv2.setNumThreads(1)`.
Defaults: threshold {settings.threshold}, every_k {settings.every_k}, max_age_s {settings.max_age_s:g}; a
{w}x{h} grey thumbnail, blurred (sigma 1), normalised by its mean and standard deviation; the score is the
largest mean absolute difference over a 2x2 window, in units of the picture's contrast. The empty scene is the
per-pixel median of 40 frames of `vtest_h264.mp4` spread over the clip (the passers-by vanish, the parked van
and car stay); people are YOLOX-nano's confident person boxes in real frames, pasted at their own place with
their surroundings; the van is pasted elsewhere on the road.

Change scores (judged changed: score > {settings.threshold}):

{nl.join(scores)}

Effective visits per second per core (every visit counts, gated or analysed; CPU time of `VisitPipeline.visit`
with YOLOX-nano and the demo rules; the keyframe is decoded beforehand, and the last column adds the measured
keyframe decode, {decode:.1f} ms, to every visit). Each mix is a day of {visits} visits a minute apart on 4
cameras: the light goes from day to night and back in {LEVELS} levels (night: 30 % of the light, more noise,
more compression); "busy" visits, in blocks of {BLOCK}, show frames of the footage with its passers-by, the
others the empty scene:

{nl.join(rates)}

On a day/night mix where 10 % of the visits show activity gating gives {headline[0.1]:.2f}x the effective
visits of full analysis, {headline[0.2]:.2f}x at 20 %, {headline[0.0]:.2f}x on a camera that never sees anyone.
The ceiling is set by every_k: at most {settings.every_k - 1} of {settings.every_k} visits are gated, and every
busy visit, and the first quiet one after it, is analysed. Decoding the keyframe is not skipped (the comparison
needs the picture), so counting it the gain on CPU is smaller (last column).

Incidents opened by the demo rules (`configs/demo/rules`: walkway fence, kerb parking) through the simulated
patrol (`gridwatch.simulate.simulate_patrol`, the path of `gridwatch rules test`) with gating off and on; an
incident of full analysis is missed when no gated incident of the same rule, camera and zone overlaps it in time:

{nl.join(incidents)}
"""


if __name__ == "__main__":
    main()
