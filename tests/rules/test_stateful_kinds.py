"""crowd, absence and persistence on built detections: counts, timing across visits, object identity."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from core.errors import ConfigError
from core.types import Detections
from rules.engine import RuleEngine
from rules.kinds.absence import AbsenceRule
from rules.kinds.crowd import CrowdRule
from rules.kinds.persistence import PersistenceRule, similarity
from rules.ruleset import RuleSet
from tests.rules.builders import LABELS, SQUARE, T0, Box, make_detections, observation

ZONE = {"name": "square", "polygon": [list(p) for p in SQUARE]}
IN1, IN2, IN3, OUT = Box(200, 100, 260, 300), Box(300, 100, 360, 300), Box(400, 100, 440, 300), Box(10, 10, 50, 50)


def engine(model: Any, **fields: Any) -> RuleEngine:
    rule = model.model_validate({"id": "r", "zone": ZONE, **fields})
    return RuleEngine(RuleSet(rules=(rule,), files=(), digest="0" * 64), LABELS)


def visit(eng: RuleEngine, dets: Detections | list[Detections], at_s: float = 0.0, **kw: Any) -> list[Any]:
    [outcome] = eng.observe(observation(dets, at=T0 + timedelta(seconds=at_s), **kw))
    return outcome.verdicts


@pytest.mark.parametrize(
    ("frames", "fired", "count"),
    [
        ([[IN1, IN2, IN3]], True, 3),
        ([[IN1, IN2, OUT]], False, 2),
        # a burst: the median count, so one frame with a double detection is no crowd
        ([[IN1, IN2], [IN1, IN2, IN3], [IN1, IN2]], False, 2),
        ([[IN1, IN2, IN3], [IN1, IN2, IN3], [IN1]], True, 3),
    ],
)
def test_crowd_counts_the_median_of_a_burst(frames: list[list[Box]], fired: bool, count: int) -> None:
    eng = engine(CrowdRule, kind="crowd", classes=["person"], min_count=3)
    [verdict] = visit(eng, [make_detections(*f) for f in frames])
    assert (verdict.fired, verdict.measures["count"]) == (fired, count)
    assert len(verdict.subjects) == count and verdict.overlay is not None


def test_crowd_confirms_over_two_of_three_visits_by_default() -> None:
    rule = CrowdRule.model_validate({"id": "r", "kind": "crowd", "zone": ZONE, "classes": ["person"], "min_count": 3})
    assert (rule.confirm.hits, rule.confirm.of) == (2, 3)


def absence_rule(**fields: Any) -> RuleEngine:
    return engine(AbsenceRule, kind="absence", min_absent_s=300, **fields)


def test_absence_is_timed_from_the_first_empty_visit() -> None:
    eng = absence_rule()
    guard, empty = make_detections(IN1), make_detections(OUT)
    results = [visit(eng, d, t)[0] for d, t in [(guard, 0), (empty, 60), (empty, 300), (empty, 360), (guard, 420)]]
    assert [v.fired for v in results] == [False, False, False, True, False]
    assert [v.measures["absent_s"] for v in results] == [0, 0, 240, 300, 0]


def test_absence_starts_again_after_a_long_gap() -> None:
    eng = absence_rule(max_gap_s=600)
    empty = make_detections()
    assert not visit(eng, empty, 0)[0].fired
    # eight hours later (disarmed overnight, say): the timing starts again, no instant alarm
    later = visit(eng, empty, 8 * 3600)[0]
    assert (later.fired, later.measures["absent_s"]) == (False, 0)
    assert visit(eng, empty, 8 * 3600 + 300)[0].fired


def parking(**fields: Any) -> RuleEngine:
    base = {"kind": "persistence", "classes": ["car", "truck", "bus"], "min_hits": 3, "window": 5, "min_span_s": 120}
    return engine(PersistenceRule, **{**base, **fields})


def scene(seed: int) -> np.ndarray:
    """A textured picture so appearance thumbnails differ between seeds."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)


CAR, VAN_AS_TRUCK, VAN_AS_CAR = (
    Box(200, 150, 320, 250, "car"),
    Box(330, 150, 460, 260, "truck"),
    Box(332, 152, 458, 258, "car", 0.6),
)


def test_persistence_fires_on_a_parked_car_after_its_span_and_hits() -> None:
    eng, image = parking(), scene(1)
    fired = [visit(eng, make_detections(CAR), t * 60, images=[image])[0].fired for t in range(5)]
    assert fired == [False, False, True, True, True]  # 3 hits and 120 s span reached at the third visit


def test_one_vehicle_seen_as_car_and_truck_is_one_object() -> None:
    eng, image = parking(), scene(1)
    verdicts = visit(eng, make_detections(VAN_AS_TRUCK, VAN_AS_CAR), images=[image])
    assert len(verdicts) == 1 and verdicts[0].key == "o1"


def test_a_missed_detection_keeps_the_object_but_a_new_car_after_it_left_is_new() -> None:
    eng, image = parking(gone_after_visits=2), scene(1)
    keys = []
    for t, present in enumerate([1, 1, 0, 1, 0, 0, 1]):
        verdicts = visit(eng, make_detections(CAR) if present else make_detections(), t * 60, images=[image])
        keys.append(verdicts[0].key if verdicts else None)
    # one missed visit is tolerated (o1 again); two in a row mean it left, and the next car is o2
    assert keys == ["o1", "o1", None, "o1", None, None, "o2"]


def test_another_car_parked_in_the_same_place_between_visits_is_a_new_object() -> None:
    eng = parking()
    first = visit(eng, make_detections(CAR), 0, images=[scene(1)])
    second = visit(eng, make_detections(CAR), 60, images=[scene(2)])  # same box, another look
    assert (first[0].key, second[0].key) == ("o1", "o2")


def test_thumbnail_similarity() -> None:
    a = np.arange(64, dtype=np.uint8).reshape(8, 8)
    assert similarity(a, a) == pytest.approx(1.0)
    assert similarity(a, a[::-1, ::-1].copy()) < 0
    flat = np.full((8, 8), 100, np.uint8)
    assert similarity(flat, flat + 5) == 1.0 and similarity(flat, flat + 60) == 0.0


def test_min_hits_above_the_window_is_refused() -> None:
    with pytest.raises(ConfigError, match="min_hits 6 is more than window 5"):
        parking(min_hits=6)
