"""line_crossing on built tracks (sides, segment ends, once per direction, streams) and on the real footage."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from core.types import Observation, ObservedFrame
from detectors.detector import Detector
from detectors.manifest import load_manifest
from detectors.session import create_session
from rules.engine import RuleEngine
from rules.kinds.base import CompileContext, Labels
from rules.kinds.line_crossing import LineCrossing, LineCrossingRule, LineState, compile_rule
from rules.ruleset import RuleSet
from tests.rules.builders import LABELS, ROOT, T0, Box, blank, make_detections, observation

# A vertical line across the middle of 640x480, drawn bottom to top: x = 320 px from y = 360 to y = 120. Walking
# from A to B (up the picture) the right-hand side is the right of the picture, the "in" side here.
LINE = {"name": "gate", "a": [0.5, 0.75], "b": [0.5, 0.25]}


def make(**overrides: Any) -> LineCrossing:
    fields = {"id": "gate-count", "kind": "line_crossing", "line": LINE, "in_side": "right", "classes": ["person"]}
    rule = LineCrossingRule.model_validate({**fields, **overrides})
    compiled = compile_rule(rule, CompileContext(RuleSet((rule,), (), "0" * 64), Labels(LABELS)))
    assert compiled is not None
    return compiled


def feet(x: float, y: float = 300.0, label: str = "person", conf: float = 0.9) -> Box:
    """A 40x100 box whose bottom centre (the default anchor) is (x, y)."""
    return Box(x - 20, y - 100, x + 20, y, label, conf)


def walk(*xs: float, y: float = 300.0, label: str = "person") -> list[list[Box]]:
    return [[feet(x, y, label)] for x in xs]


def burst(frames: list[list[Box]]) -> Observation:
    return observation([make_detections(*f) for f in frames], step_s=0.1)


def stream(frames: list[list[Box]], start_s: float) -> Observation:
    """One evaluation of a continuous stream: frames 0.1 s apart from `start_s` after T0."""
    return Observation(
        "cam-1",
        "continuous",
        tuple(
            ObservedFrame(T0 + timedelta(seconds=start_s + 0.1 * i), start_s + 0.1 * i, make_detections(*f), blank())
            for i, f in enumerate(frames)
        ),
    )


CASES: list[tuple[str, dict[str, Any], list[list[Box]], tuple[int, int], bool]] = [
    ("left to right is in", {}, walk(290, 300, 310, 330, 340), (1, 0), True),
    ("right to left is out", {}, walk(350, 340, 330, 310, 300), (0, 1), True),
    ("stepping on the line keeps the side it came from", {}, walk(300, 310, 320, 320, 330, 340), (1, 0), True),
    ("there and back", {}, walk(290, 300, 310, 330, 340, 330, 310, 300), (1, 1), True),
    ("touching the line is no crossing", {}, walk(290, 300, 310, 320, 310, 300), (0, 0), False),
    ("beyond the segment's end", {}, walk(290, 300, 310, 330, 340, y=400), (0, 0), False),
    ("through the segment's end point", {}, walk(300, 310, 330, 340, y=360), (1, 0), True),
    ("jitter counts once per direction", {}, walk(310, 330, 310, 330, 310, 330, 310), (1, 1), True),
    ("direction in ignores out", {"direction": "in"}, walk(350, 340, 330, 310, 300), (0, 1), False),
    ("direction out fires on out", {"direction": "out"}, walk(350, 340, 330, 310, 300), (0, 1), True),
    ("in_side left swaps in and out", {"in_side": "left"}, walk(290, 300, 310, 330, 340), (0, 1), True),
    ("other classes do not count", {}, walk(290, 300, 310, 330, 340, label="car"), (0, 0), False),
    ("two people, both ways", {}, [[feet(300 + 10 * i), feet(340 - 10 * i, 200)] for i in range(5)], (1, 1), True),
    ("first seen already across", {}, walk(330, 340, 350), (0, 0), False),
    ("a single sighting on each side is not a track", {}, [[feet(310)], [], [], [], [], [feet(330)]], (0, 0), False),
]


@pytest.mark.parametrize(("overrides", "frames", "counts", "fired"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_crossings_in_one_burst(
    overrides: dict[str, Any], frames: list[list[Box]], counts: tuple[int, int], fired: bool
) -> None:
    result = make(**overrides).evaluate(burst(frames), None)
    [verdict] = result.verdicts
    assert (verdict.measures["in"], verdict.measures["out"]) == counts
    assert verdict.fired is fired
    assert (verdict.zone, verdict.key) == ("gate", "")
    assert result.state is None  # a burst keeps nothing: the next visit is a new scene


def test_a_default_burst_is_dense_enough() -> None:
    # given: 8 frames over 4 s (the cameras' default burst), someone walking 25 px between frames across the line
    obs = observation([make_detections(feet(240 + 25 * i)) for i in range(8)], step_s=4.0 / 7)
    # when
    [verdict] = make().evaluate(obs, None).verdicts
    # then
    assert (verdict.fired, verdict.measures["in"]) == (True, 1)


def test_weak_detections_alone_start_no_track() -> None:
    frames = [[feet(x, conf=0.3)] for x in (290, 300, 310, 330, 340)]
    [verdict] = make(min_confidence=0.4).evaluate(burst(frames), None).verdicts
    assert (verdict.measures["in"], verdict.measures["out"]) == (0, 0)


def test_subjects_index_the_frame_of_the_last_crossing() -> None:
    # given: a bystander (index 0) and a walker who crosses between frames 2 and 3, then walks on
    frames = [[feet(100), feet(x)] for x in (290, 300, 310, 330, 340)]
    # when
    [verdict] = make().evaluate(burst(frames), None).verdicts
    # then
    assert (verdict.frame, verdict.subjects.tolist()) == (3, [1])
    assert verdict.reason == "1 in, 0 out across line gate"


def test_reason_names_the_direction_that_counts() -> None:
    [verdict] = make(direction="in").evaluate(burst(walk(350, 330, 310)), None).verdicts
    assert verdict.reason == "0 in, 1 out across line gate (counts in only)"
    assert (verdict.frame, verdict.subjects.tolist()) == (-1, [])


def test_overlay_marks_the_in_side() -> None:
    overlay = make().overlay
    [(a, b, mark)] = overlay.lines
    assert (a, b) == ((0.5, 0.75), (0.5, 0.25))
    assert mark == pytest.approx((0.55, 0.5))  # right of the picture: the in side
    [(_, _, left)] = make(in_side="left").overlay.lines
    assert left == pytest.approx((0.45, 0.5))


def test_a_stream_carries_tracks_and_crossings_between_evaluations() -> None:
    # given: a continuous stream evaluated once a second (10 frames each)
    rule, state = make(), None
    seconds = [
        [[feet(250 + 5 * i)] for i in range(10)],  # walks up to x = 295
        [[feet(300 + 5 * i)] for i in range(10)],  # crosses at x = 320 in the second evaluation
        [[feet(350 - 5 * i)] for i in range(10)],  # turns back and crosses out
        [[feet(300 + 5 * i)] for i in range(10)],  # and in again: already counted for this track
    ]
    counts = []
    # when
    for k, frames in enumerate(seconds):
        result = rule.evaluate(stream(frames, start_s=float(k)), state)
        state = result.state
        counts.append((result.verdicts[0].measures["in"], result.verdicts[0].measures["out"]))
    # then
    assert counts == [(0, 0), (1, 0), (0, 1), (0, 0)]
    assert isinstance(state, LineState) and state.tracks.ids.tolist() == [1]


def test_a_stream_that_paused_starts_afresh() -> None:
    rule = make()
    first = rule.evaluate(stream(walk(280, 290, 300, 310), start_s=0.0), None)
    # the next evaluation comes 10 s later: the person on the other side is a new track, nothing crossed
    later = rule.evaluate(stream(walk(330, 340, 350), start_s=10.0), first.state)
    assert (later.verdicts[0].measures["in"], later.verdicts[0].measures["out"]) == (0, 0)


def test_burst_visits_ignore_a_stored_stream_state() -> None:
    rule = make()
    first = rule.evaluate(stream(walk(280, 290, 300, 310), start_s=0.0), None)
    [verdict] = rule.evaluate(burst(walk(330, 340)), first.state).verdicts
    assert verdict.measures["in"] == 0


def test_a_keyframe_visit_says_why_it_cannot_count() -> None:
    [verdict] = make().evaluate(observation(make_detections(feet(330))), None).verdicts
    assert not verdict.fired
    assert verdict.reason == "0 in, 0 out across line gate: one frame, and a crossing needs two sightings of one track"


def deep_size(state: LineState) -> int:
    tracks = state.tracks
    parts: list[object] = [state, tracks, tracks.rows, state.memory, tracks.last_t, tracks.next_id]
    return sum(sys.getsizeof(p) for p in parts)


def test_stream_state_stays_small() -> None:
    # given: four people walking for a second on a continuous stream; then the street empties for 2 s
    rule = make()
    busy = rule.evaluate(stream([[feet(100 + 5 * i, 150 + 60 * p) for p in range(4)] for i in range(10)], 0.0), None)
    empty = rule.evaluate(stream([[] for _ in range(20)], 1.0), busy.state)
    # then: 12,000 cameras x 20 rules in ~300 MB leaves ~1.3 KB a state
    assert isinstance(busy.state, LineState) and len(busy.state.tracks) == 4
    assert deep_size(busy.state) < 1_000
    assert isinstance(empty.state, LineState) and len(empty.state.tracks) == 0
    assert empty.state is rule.evaluate(stream([[]], 3.0), None).state  # one shared idle state for every camera


def test_the_engine_skips_keyframe_visits_and_flags_keyframe_cameras() -> None:
    rule = LineCrossingRule.model_validate(
        {"id": "gate-count", "kind": "line_crossing", "line": LINE, "in_side": "right", "classes": ["person"]}
    )
    engine = RuleEngine(RuleSet((rule,), (), "0" * 64), LABELS)
    assert engine.observe(observation(make_detections(feet(330)))) == []
    [outcome] = engine.observe(burst(walk(290, 300, 310, 330, 340)))
    assert [v.fired for v in outcome.verdicts] == [True]
    errors, _ = engine.motion_problems({"cam-1": "keyframe"})
    assert errors == []  # a `*` rule skips keyframe cameras: a warning, not an error


# The footage check: vtest_h264.mp4 (768x576, 10 fps), seconds 15.0-45.0 (frames 150-449), and a line across the
# walkway at x = 230 px from y = 178 px (the parking area's tape) to y = 300 px (the lawn's edge), drawn top to
# bottom, so `in_side: right` of A->B is the left of the picture: "in" = walking right to left, "out" = left to right.
FOOTAGE_LINE = {"name": "walkway", "a": [230 / 768, 178 / 576], "b": [230 / 768, 300 / 576]}
FIRST, LAST = 150, 449
HAND_IN, HAND_OUT = 4, 2


@pytest.mark.slow
def test_footage_crossings_match_the_hand_count(yolox_path: Path, footage_path: Path) -> None:
    """Counted by hand from pictures of the stretch, then YOLOX-nano + the rule over every frame.

    How the hand count was made: an x-t image (for each frame, the column-wise share of pixels differing from the
    clip's median background in a band around the line, stacked over time at 3 rows per frame, coloured by where the
    lowest foreground pixel lies: on the segment's y-range or below it on the lawn) showed where tracks cross
    x = 230; every candidate was then checked on contact sheets of crops (x 130-330, y 130-310, line drawn) every
    0.1-0.2 s. What they show, by the feet:
      in (right to left):  17.8 s woman in a light-blue jacket; 20.0 s man in a striped top; 24.5 s man in a dark
                           jacket (he turns back at x ~ 135 at 27.5 s); 30.4 s man in black (he stops at x ~ 180
                           at 31.3 s and turns back)                                                      = 4
      out (left to right): 30.5 s the man in the dark jacket again, passing the man in black at the line;
                           32.3 s the man in black again                                                  = 2
      not crossings: a man in a dark jacket who walks in from the right at 26.4 s and turns back at x ~ 271;
                     a man in a leather jacket who turns back at x ~ 262 at 32 s; a man who comes down at
                     38-45 s and stands at x ~ 280-300. Nobody is near the line at 15.0 s or at 45.0 s.
    The stream is evaluated once a second (10 frames each), carrying the rule's state, as a continuous camera does.
    """
    detector = Detector(create_session(yolox_path), load_manifest(ROOT / "models" / "yolox-nano.yaml"))
    rule = make(line=FOOTAGE_LINE, id="walkway-count")
    state: object | None = None
    totals = {"in": 0.0, "out": 0.0}
    frames: list[ObservedFrame] = []
    with av.open(str(footage_path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i > LAST:
                break
            if i < FIRST:
                continue
            image = np.asarray(frame.to_ndarray(format="bgr24"), np.uint8)
            frames.append(ObservedFrame(T0 + timedelta(seconds=i / 10), i / 10, detector.detect(image), image))
            if len(frames) == 10:
                result = rule.evaluate(Observation("cam-1", "continuous", tuple(frames)), state)
                state, frames = result.state, []
                for direction in totals:
                    totals[direction] += result.verdicts[0].measures[direction]
    assert abs(totals["in"] - HAND_IN) <= 1 and abs(totals["out"] - HAND_OUT) <= 1, totals
