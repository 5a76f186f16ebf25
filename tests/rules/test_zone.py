from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from core.types import Detections
from rules.kinds.zone_intrusion import ZoneIntrusion, ZoneIntrusionRule
from rules.zone import ZoneMatcher, anchor_points
from tests.rules.builders import HEIGHT, LABELS, WIDTH, Box, judge, make_detections, make_rule


def compile_zone(rule: ZoneIntrusionRule) -> ZoneIntrusion:
    return ZoneIntrusion(rule, ZoneMatcher(rule, [LABELS.index(c) for c in rule.classes], LABELS))


# The zone is x 160..480, y 120..360 at 640x480. Each case: rule overrides, boxes, indices in the zone, fired.
CASES: list[tuple[str, dict[str, Any], list[Box], list[int], bool]] = [
    ("no detections", {}, [], [], False),
    ("feet inside", {}, [Box(200, 100, 260, 300)], [0], True),
    ("far outside", {}, [Box(10, 10, 50, 50)], [], False),
    ("feet on left edge", {}, [Box(140, 200, 180, 300)], [0], True),
    ("feet on bottom-left corner", {}, [Box(140, 300, 180, 360)], [0], True),
    ("feet on bottom edge", {}, [Box(200, 300, 260, 360)], [0], True),
    ("feet one pixel left of edge", {}, [Box(139, 200, 179, 300)], [], False),
    ("feet one pixel below zone", {}, [Box(200, 300, 260, 361)], [], False),
    ("head in, feet out: bottom_center", {}, [Box(200, 300, 260, 400)], [], False),
    ("head in, feet out: top_center", {"anchor": "top_center"}, [Box(200, 300, 260, 400)], [0], True),
    ("head in, feet out: center", {"anchor": "center"}, [Box(200, 300, 260, 400)], [0], True),
    ("centre below zone: center", {"anchor": "center"}, [Box(200, 300, 260, 440)], [], False),
    ("head on top edge: top_center", {"anchor": "top_center"}, [Box(200, 120, 260, 200)], [0], True),
    ("head above zone: top_center", {"anchor": "top_center"}, [Box(200, 100, 260, 200)], [], False),
    ("box overlaps corner: any_corner", {"anchor": "any_corner"}, [Box(100, 100, 170, 130)], [0], True),
    ("box overlaps corner: bottom_center", {}, [Box(100, 100, 170, 130)], [], False),
    ("box touches left edge: any_corner", {"anchor": "any_corner"}, [Box(100, 200, 160, 250)], [0], True),
    ("box left of zone: any_corner", {"anchor": "any_corner"}, [Box(100, 200, 159, 250)], [], False),
    ("box covers zone: any_corner", {"anchor": "any_corner"}, [Box(0, 0, 640, 480)], [0], True),
    ("car not watched", {}, [Box(200, 100, 260, 300, "car")], [], False),
    (
        "car and person watched",
        {"classes": ["person", "car"]},
        [Box(200, 100, 260, 300, "car"), Box(300, 100, 360, 300), Box(300, 100, 360, 300, "dog")],
        [0, 1],
        True,
    ),
    ("confidence below", {}, [Box(200, 100, 260, 300, conf=0.49)], [], False),
    ("confidence at threshold", {}, [Box(200, 100, 260, 300, conf=0.5)], [0], True),
    ("area below (1/16 of frame = 19200 px)", {"min_area": 0.0625}, [Box(200, 200, 359, 320)], [], False),
    ("area at threshold", {"min_area": 0.0625}, [Box(200, 200, 360, 320)], [0], True),
    ("one of two needed", {"min_count": 2}, [Box(200, 100, 260, 300), Box(10, 10, 50, 50)], [0], False),
    (
        "two of two needed",
        {"min_count": 2},
        [Box(10, 10, 50, 50), Box(200, 100, 260, 300), Box(300, 100, 360, 300)],
        [1, 2],
        True,
    ),
]


@pytest.mark.parametrize(("overrides", "boxes", "subjects", "fired"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_zone_intrusion(overrides: dict[str, Any], boxes: list[Box], subjects: list[int], fired: bool) -> None:
    # given
    zone = compile_zone(make_rule(**overrides))
    # when
    verdict = judge(zone, "cam-1", WIDTH, HEIGHT, make_detections(*boxes))
    # then
    assert verdict.subjects.tolist() == subjects
    assert verdict.subjects.dtype == np.int64
    assert verdict.fired is fired
    assert verdict.measures == {"count": float(len(subjects))}
    assert (verdict.rule_id, verdict.camera_id, verdict.zone) == ("walkway-intrusion", "cam-1", "walkway")


@pytest.mark.parametrize("scale", [1, 2, 3])
def test_zone_scales_with_frame_size(scale: int) -> None:
    # the same scene at 640x480, 1280x960 and 1920x1440, evaluated by one compiled rule (cached per size)
    zone = compile_zone(make_rule())
    inside, edge, outside = Box(200, 100, 260, 300), Box(140, 200, 180, 360), Box(139, 200, 179, 300)
    detections = make_detections(inside, edge, outside)
    scaled = Detections(detections.xyxy * scale, detections.confidence, detections.class_id)
    for _ in range(2):
        verdict = judge(zone, "cam-1", WIDTH * scale, HEIGHT * scale, scaled)
        assert verdict.subjects.tolist() == [0, 1]


@pytest.mark.parametrize(
    ("overrides", "boxes", "reason"),
    [
        ({}, [Box(200, 100, 260, 300), Box(300, 100, 360, 300)], "2 person in zone walkway"),
        ({}, [], "0 person in zone walkway"),
        ({"min_count": 2}, [Box(200, 100, 260, 300)], "1 person in zone walkway (needs 2)"),
        (
            {"classes": ["person", "car"]},
            [Box(200, 100, 260, 300, "car"), Box(300, 100, 360, 300), Box(310, 100, 360, 300, "car")],
            "1 person, 2 car in zone walkway",
        ),
    ],
)
def test_reason_counts_per_class(overrides: dict[str, Any], boxes: list[Box], reason: str) -> None:
    verdict = judge(compile_zone(make_rule(**overrides)), "cam-1", WIDTH, HEIGHT, make_detections(*boxes))
    assert verdict.reason == reason


def test_anchor_points_are_vectorised() -> None:
    xyxy = np.array([[0, 0, 10, 20], [10, 10, 30, 50]], np.float32)
    # (x of every box, y of every box)
    assert [a.tolist() for a in anchor_points(xyxy, "bottom_center")] == [[5, 20], [20, 50]]
    assert [a.tolist() for a in anchor_points(xyxy, "top_center")] == [[5, 20], [0, 10]]
    assert [a.tolist() for a in anchor_points(xyxy, "center")] == [[5, 20], [10, 30]]
    with pytest.raises(ValueError, match="any_corner"):
        anchor_points(xyxy, "any_corner")


def test_zero_frame_size_is_refused() -> None:
    zone = compile_zone(make_rule())
    with pytest.raises(ValueError, match="0x480"):
        judge(zone, "cam-1", 0, HEIGHT, make_detections(Box(200, 100, 260, 300)))
