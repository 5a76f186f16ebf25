"""loitering on built detections: dwell within a burst, across visits by class and IoU, and when it cannot work."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from core.types import Observation, Verdict
from rules.engine import RuleEngine
from rules.kinds.base import CompileContext, Labels
from rules.kinds.loitering import Loitering, LoiteringRule, Sightings, compile_rule
from rules.ruleset import RuleSet
from tests.rules.builders import LABELS, SQUARE, T0, Box, make_detections, observation

ZONE = {"name": "bench", "polygon": [list(p) for p in SQUARE]}  # x 160..480, y 120..360 of 640x480
SITTER = Box(280, 200, 320, 300)  # feet at (300, 300): in the zone
PASSER = Box(20, 200, 60, 300)  # feet at (40, 300): outside
EDGE, STEPPED_OUT = Box(280, 250, 320, 350), Box(280, 270, 320, 370)  # feet 10 px inside the zone's bottom edge, out
S: list[Box] = [SITTER]
E: list[Box] = []


def make(**overrides: Any) -> Loitering:
    fields = {"id": "bench-loiter", "kind": "loitering", "zone": ZONE, "classes": ["person"], "min_dwell_s": 3.0}
    rule = LoiteringRule.model_validate({**fields, **overrides})
    compiled = compile_rule(rule, CompileContext(RuleSet((rule,), (), "0" * 64), Labels(LABELS)))
    assert compiled is not None
    return compiled


def shifted(box: Box, dx: float, label: str | None = None) -> Box:
    return box._replace(x1=box.x1 + dx, x2=box.x2 + dx, label=label or box.label)


def burst(frames: list[list[Box]], at_s: float = 0.0, step_s: float = 0.5, revisit_s: float = 60.0) -> Observation:
    return observation(
        [make_detections(*f) for f in frames], at=T0 + timedelta(seconds=at_s), step_s=step_s, revisit_s=revisit_s
    )


def keyframe(boxes: list[Box], at_s: float, revisit_s: float = 10.0) -> Observation:
    return observation(make_detections(*boxes), at=T0 + timedelta(seconds=at_s), revisit_s=revisit_s)


BURSTS: list[tuple[str, list[list[Box]], bool, float, list[int]]] = [
    ("sits through the burst", [[SITTER]] * 8, True, 3.5, [0]),
    ("sits, but not long enough", [[SITTER]] * 6, False, 2.5, []),
    ("a passer-by and a sitter", [[PASSER, SITTER]] * 8, True, 3.5, [1]),
    ("walking along inside the zone", [[shifted(SITTER, 4 * i)] for i in range(8)], True, 3.5, [0]),
    ("steps out and back: the dwell restarts", [[EDGE]] * 4 + [[STEPPED_OUT]] + [[EDGE]] * 4, False, 1.5, []),
    ("missed by the detector for a frame", [[SITTER]] * 4 + [[]] + [[SITTER]] * 4, True, 4.0, [0]),
    ("gone in the last frame still counts", [[SITTER]] * 8 + [[]], True, 3.5, []),
    ("nobody in the zone", [[PASSER]] * 8, False, 0.0, []),
]


@pytest.mark.parametrize(("frames", "fired", "dwell", "subjects"), [c[1:] for c in BURSTS], ids=[c[0] for c in BURSTS])
def test_dwell_within_a_burst(frames: list[list[Box]], fired: bool, dwell: float, subjects: list[int]) -> None:
    result = make().evaluate(burst(frames), None)
    [verdict] = result.verdicts
    assert (verdict.fired, verdict.measures["dwell_s"], verdict.subjects.tolist()) == (fired, dwell, subjects)
    assert verdict.measures["count"] == (1.0 if fired else 0.0)
    assert (verdict.zone, verdict.key, verdict.frame) == ("bench", "", -1)
    assert result.state is None  # visits 60 s apart cannot show a 3 s dwell across visits: nothing kept


def test_the_reason_says_who_and_how_long() -> None:
    [verdict] = make().evaluate(burst([[SITTER, shifted(SITTER, 100)]] * 8), None).verdicts
    assert verdict.reason == "2 person in zone bench for 3 s or more (longest 4 s)"
    assert verdict.overlay is not None and verdict.overlay.polygons == (SQUARE,)


def test_weak_detections_keep_a_sitter_tracked() -> None:
    frames = [[SITTER]] * 2 + [[SITTER._replace(conf=0.3)]] * 4 + [[SITTER]] * 2
    [verdict] = make(min_confidence=0.5).evaluate(burst(frames), None).verdicts
    assert (verdict.fired, verdict.measures["dwell_s"]) == (True, 3.5)


def visits(rule: Loitering, plan: list[tuple[float, list[Box]]], revisit_s: float = 10.0) -> list[Verdict]:
    state: object | None = None
    out = []
    for at_s, boxes in plan:
        result = rule.evaluate(keyframe(boxes, at_s, revisit_s), state)
        state = result.state
        assert isinstance(state, Sightings)
        out.append(result.verdicts[0])
    return out


ACROSS: list[tuple[str, list[tuple[float, list[Box]]], list[float]]] = [
    ("stays: dwell from the first visit", [(0, S), (10, S), (20, S), (30, S)], [0, 10, 20, 30]),
    ("small moves are the same object", [(0, S), (10, [shifted(SITTER, 8)]), (20, [shifted(SITTER, 16)])], [0, 10, 20]),
    ("moved too far: someone else", [(0, S), (10, S), (20, [shifted(SITTER, 40)])], [0, 10, 0]),
    ("another class on the spot", [(0, S), (10, S), (20, [SITTER._replace(label="dog")])], [0, 10, 0]),
    ("one missed visit is bridged", [(0, S), (10, S), (20, E), (30, S)], [0, 10, 0, 30]),
    ("a longer gap starts afresh", [(0, S), (10, S), (20, E), (31, S)], [0, 10, 0, 0]),
    (
        "outside the zone for 2 visits",
        [(0, S), (10, [PASSER]), (20, [PASSER]), (30, [PASSER]), (40, S)],
        [0, 0, 0, 0, 0],
    ),
]


@pytest.mark.parametrize(("plan", "dwells"), [c[1:] for c in ACROSS], ids=[c[0] for c in ACROSS])
def test_dwell_across_keyframe_visits(plan: list[tuple[float, list[Box]]], dwells: list[float]) -> None:
    # given: keyframe visits every 10 s, a 25 s dwell (plus the "dog" class for the class change)
    rule = make(min_dwell_s=25.0, classes=["person", "dog"])
    # when
    verdicts = visits(rule, plan)
    # then
    assert [v.measures["dwell_s"] for v in verdicts] == dwells
    assert [v.fired for v in verdicts] == [d >= 25.0 for d in dwells]


def test_two_sitters_are_kept_apart_across_visits() -> None:
    rule = make(min_dwell_s=15.0)
    other = shifted(SITTER, 120)
    verdicts = visits(rule, [(0, [SITTER]), (10, [SITTER, other]), (20, [other, SITTER])])
    assert [v.measures["count"] for v in verdicts] == [0, 0, 1]
    assert verdicts[-1].subjects.tolist() == [1] and verdicts[-1].measures["dwell_s"] == 20.0


def test_the_state_forgets_when_the_zone_empties() -> None:
    rule = make(min_dwell_s=25.0)
    first = rule.evaluate(keyframe([SITTER], 0.0), None)
    emptied = rule.evaluate(keyframe([], 30.0), first.state)
    assert isinstance(emptied.state, Sightings) and len(emptied.state.rows) == 0
    assert rule.evaluate(keyframe([], 0.0), None).state is emptied.state  # shared: an empty zone costs nothing


def test_a_keyframe_camera_visited_too_rarely_fires_nothing_and_says_why() -> None:
    # given: a stored sighting from a minute ago (as if the revisit had been shorter then)
    rule = make(min_dwell_s=30.0)
    earlier = rule.evaluate(keyframe([SITTER], 0.0, revisit_s=10.0), None)
    # when: visits are now 60 s apart
    result = rule.evaluate(keyframe([SITTER], 60.0, revisit_s=60.0), earlier.state)
    # then
    [verdict] = result.verdicts
    assert not verdict.fired and verdict.measures == {"dwell_s": 0.0, "count": 0.0}
    assert verdict.reason == (
        "a keyframe every 60 s cannot show one object staying 30 s: needs burst visits or revisit_s below min_dwell_s"
    )
    assert result.state is None


def test_bursts_and_visits_together() -> None:
    # given: 2 s bursts (5 frames 0.5 s apart) every 10 s, a 15 s dwell
    rule = make(min_dwell_s=15.0)
    state: object | None = None
    dwells = []
    # when
    for at_s in (2.0, 12.0, 22.0):
        result = rule.evaluate(burst([[SITTER]] * 5, at_s=at_s, revisit_s=10.0), state)
        state = result.state
        dwells.append((result.verdicts[0].measures["dwell_s"], result.verdicts[0].fired))
    # then: counted from the first frame of the first burst, at 0 s
    assert dwells == [(2.0, False), (12.0, False), (22.0, True)]


def test_the_engine_runs_it_on_keyframe_cameras_and_keeps_its_state() -> None:
    rule = LoiteringRule.model_validate(
        {"id": "bench-loiter", "kind": "loitering", "zone": ZONE, "classes": ["person"], "min_dwell_s": 25.0}
    )
    engine = RuleEngine(RuleSet((rule,), (), "0" * 64), LABELS)
    fired = []
    for at_s in (0.0, 10.0, 20.0, 30.0):
        [outcome] = engine.observe(keyframe([SITTER], at_s))
        fired.append(outcome.verdicts[0].fired)
    assert fired == [False, False, False, True]
    assert len(engine.state) == 1
    assert engine.motion_problems({"cam-1": "keyframe"}) == ([], [])
