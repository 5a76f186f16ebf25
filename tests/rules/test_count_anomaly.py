"""`count_anomaly`: a count far from its learned usual for the camera, zone and hour of the week."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from core.types import Detections, Verdict
from rules.kinds.count_anomaly import (
    SLOTS,
    Baseline,
    CountAnomaly,
    CountAnomalyRule,
    load_state,
    save_state,
)
from rules.zone import ZoneMatcher
from tests.rules.builders import LABELS, SQUARE, T0, Box, make_detections, observation

NIGHT = datetime(2026, 5, 3, 19, 0, tzinfo=UTC)  # Monday 03:00 in Shanghai (Sunday in UTC)


def make_rule(**overrides: Any) -> CountAnomalyRule:
    rule: dict[str, Any] = {
        "id": "plaza-count",
        "kind": "count_anomaly",
        "zone": {"name": "plaza", "polygon": [list(p) for p in SQUARE]},
        "classes": ["person"],
    }
    return CountAnomalyRule.model_validate({**rule, **overrides})


def compile_rule(**overrides: Any) -> CountAnomaly:
    rule = make_rule(**overrides)
    return CountAnomaly(rule, ZoneMatcher(rule, [LABELS.index(c) for c in rule.classes], LABELS))


def people(n: int) -> Detections:
    """n people with their feet in the zone (x 160..480, y 120..360 at 640x480) and one outside it."""
    return make_detections(*(Box(170 + 2 * i, 200, 190 + 2 * i, 300) for i in range(n)), Box(10, 10, 40, 80))


def weekly(counts: Sequence[int], start: datetime = T0) -> list[tuple[datetime, int]]:
    """One visit per quarter hour of the start's hour, then the same hour a week later: one sample each."""
    return [(start + timedelta(weeks=i // 4, minutes=15 * (i % 4)), c) for i, c in enumerate(counts)]


def run(compiled: CountAnomaly, visits: Sequence[tuple[datetime, int]], state: object = None) -> tuple[Verdict, object]:
    """The last visit's verdict and the state after all of them."""
    verdict = None
    for at, count in visits:
        result = compiled.evaluate(observation(people(count), at=at), state)
        verdict, state = result.verdicts[0], result.state
    assert verdict is not None
    return verdict, state


LATER = T0 + timedelta(weeks=10, minutes=30)  # Monday 17:30 in Shanghai, ten weeks on
STEADY = [4, 5, 3, 4, 4, 5, 4, 3, 4, 4, 5, 4, 4, 3, 4, 4]  # median 4, MAD 0 -> floor 0.5


@dataclass(frozen=True)
class Case:
    name: str
    history: list[tuple[datetime, int]]
    at: datetime
    count: int
    fired: bool
    rule: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


CASES = [
    Case(
        "no fire before min_history",
        weekly([4] * 7),
        LATER,
        14,
        False,
        reason="14 person in zone plaza; learning Mon 17:00 (7 of 8 samples)",
    ),
    Case("fires once min_history samples are in", weekly([4] * 8), LATER, 14, True),
    Case(
        "spike against a steady baseline",
        weekly(STEADY),
        LATER,
        14,
        True,
        reason="14 person in zone plaza, usual for Mon 17:00 is 4 (MAD 0.5, z 20.0)",
    ),
    Case("usual count does not fire", weekly(STEADY), LATER, 5, False),
    Case("a drop does not fire the high direction", weekly([10] * 8), LATER, 2, False),
    Case("0 -> 1 at night is not an anomaly", weekly([0] * 8, NIGHT), NIGHT + timedelta(weeks=9), 1, False),
    Case("0 -> 2 at night: z 4 but under min_delta", weekly([0] * 8, NIGHT), NIGHT + timedelta(weeks=9), 2, False),
    Case("0 -> 3 at night reaches min_delta", weekly([0] * 8, NIGHT), NIGHT + timedelta(weeks=9), 3, True),
    Case("min_delta 1 lets 0 -> 2 fire", weekly([0] * 8, NIGHT), NIGHT + timedelta(weeks=9), 2, True, {"min_delta": 1}),
    Case("low direction fires on a drop", weekly([10] * 8), LATER, 2, True, {"direction": "low"}),
    Case("low direction ignores a spike", weekly([10] * 8), LATER, 30, False, {"direction": "low"}),
    Case("both directions: drop", weekly([10] * 8), LATER, 2, True, {"direction": "both"}),
    Case("both directions: spike", weekly([10] * 8), LATER, 30, True, {"direction": "both"}),
    Case(
        "wide spread needs a larger change",
        weekly([2, 8, 4, 10, 6, 3, 9, 5]),
        LATER,
        14,
        False,
        reason="14 person in zone plaza, usual for Mon 17:00 is 5.5 (MAD 3.7, z 2.3)",
    ),
    Case(
        "another hour of the week has its own slot",
        weekly([4] * 8),
        LATER + timedelta(hours=1),
        14,
        False,
        reason="14 person in zone plaza; learning Mon 18:00 (0 of 8 samples)",
    ),
    Case("another day has its own slot", weekly([4] * 8), LATER + timedelta(days=1), 14, False),
    Case(
        "slots follow the rule's time zone",
        weekly([4] * 8),
        LATER,
        14,
        True,
        {"timezone": "Europe/Berlin"},
        "14 person in zone plaza, usual for Mon 11:00 is 4 (MAD 0.5, z 20.0)",
    ),
    Case(
        "one visit per sample interval is learned",
        [(T0 + timedelta(minutes=m), 4) for m in range(0, 120, 1)],
        T0 + timedelta(weeks=1),
        14,
        False,
        reason="14 person in zone plaza; learning Mon 17:00 (4 of 8 samples)",
    ),
    Case(
        "sample_every_s 0 learns every visit",
        [(T0 + timedelta(minutes=m), 4) for m in range(8)],
        T0 + timedelta(minutes=9),
        14,
        True,
        {"sample_every_s": 0},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_count_anomaly(case: Case) -> None:
    # given
    compiled = compile_rule(**case.rule)
    _, state = run(compiled, case.history)
    # when
    verdict, _ = run(compiled, [(case.at, case.count)], state)
    # then
    assert verdict.fired is case.fired, verdict.reason
    assert verdict.measures["count"] == case.count
    assert verdict.subjects.tolist() == list(range(case.count))
    if case.reason is not None:
        assert verdict.reason == case.reason


def test_a_fired_verdict_is_one_zone_incident_with_its_measures() -> None:
    compiled = compile_rule()
    _, state = run(compiled, weekly(STEADY))
    verdict, _ = run(compiled, [(LATER, 14)], state)
    assert (verdict.fired, verdict.key, verdict.zone, verdict.frame) == (True, "", "plaza", -1)
    assert verdict.measures == {
        "count": 14.0,
        "median": 4.0,
        "mad": 0.5,
        "z": 20.0,
        "slot": 17.0,
        "samples": 16.0,
    }
    assert verdict.overlay is not None and verdict.overlay.polygons == (SQUARE,)


@pytest.mark.parametrize(
    ("counts", "fired", "frame", "count"),
    [
        ([14, 2, 13], True, -1, 13),  # median 13: the last frame is the nearest
        ([13, 14, 2], True, -3, 13),
        ([4, 20, 4], False, -1, 4),  # one frame's spike is not the visit's count
        ([4, 14, 15, 4], True, -3, 9),  # median of an even number of frames; 4 and 14 as near: the larger
        ([12, 4, 3, 13], True, -4, 8),
    ],
)
def test_a_burst_counts_the_median_of_its_frames(counts: list[int], fired: bool, frame: int, count: float) -> None:
    compiled = compile_rule()
    _, state = run(compiled, weekly(STEADY))
    result = compiled.evaluate(observation([people(c) for c in counts], at=LATER), state)
    verdict = result.verdicts[0]
    assert (verdict.fired, verdict.frame, verdict.measures["count"]) == (fired, frame, count)
    assert len(verdict.subjects) == counts[frame]


def test_an_ongoing_anomaly_stays_one_but_a_lasting_change_becomes_normal() -> None:
    # given: a steady 4 at Monday 17:00, then a crowd of 14 at that hour every week from week 5 on
    compiled = compile_rule()
    _, state = run(compiled, weekly(STEADY))
    fired = []
    for at, count in weekly([14] * 16, T0 + timedelta(weeks=5)):
        verdict, state = run(compiled, [(at, count)], state)
        fired.append(verdict.fired)
    # then: a fired count is learned only as the edge of normal, so a whole hour of crowd (4 samples) is still
    # an anomaly the next week; after history / 2 samples (two weeks of that hour) it is what that hour looks like
    assert fired == [True] * 8 + [False] * 8


def test_a_state_of_another_history_is_started_afresh() -> None:
    _, state = run(compile_rule(), weekly([4] * 8))
    verdict, fresh = run(compile_rule(history=32), [(LATER, 14)], state)
    assert not verdict.fired and verdict.measures["samples"] == 0
    assert isinstance(fresh, Baseline) and fresh.history == 32


def test_learning_never_changes_a_state_in_place() -> None:
    compiled = compile_rule(sample_every_s=0)
    _, state = run(compiled, weekly([4] * 3))
    assert isinstance(state, Baseline)
    before = state.table.copy()
    _, after = run(compiled, [(LATER, 5)], state)
    assert np.array_equal(state.table, before) and after is not state


def test_the_ring_keeps_the_last_history_counts_and_saturates_at_255() -> None:
    baseline = Baseline.empty(4)
    for i, count in enumerate([1, 2, 3, 4, 5, 6, 300]):
        baseline = baseline.learned(17, count, i)
    assert sorted(baseline.values(17).tolist()) == [4, 5, 6, 255]
    for i in range(20):  # the write counter wraps and keeps cycling through the ring
        baseline = baseline.learned(17, 9, 100 + i)
    assert baseline.values(17).tolist() == [9, 9, 9, 9] and int(baseline.table[17, 0]) < 8
    assert baseline.values(16).tolist() == []


def test_save_and_load_state_round_trip() -> None:
    _, state = run(compile_rule(), weekly(STEADY))
    assert isinstance(state, Baseline)
    data = save_state(state)
    assert (data["version"], data["dtype"], data["shape"]) == (1, "uint8", [SLOTS, 17])
    loaded = load_state(data)
    assert np.array_equal(loaded.table, state.table) and loaded.last_sample == state.last_sample


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 2}, "not a count_anomaly state of version 1: 2"),
        ({"shape": [24, 17]}, "count_anomaly state has shape [24, 17], expected [168, 1 + history]"),
        ({"table": "not base64!"}, "count_anomaly state table is not base64 of zlib data"),
        ({"shape": [SLOTS, 9]}, "count_anomaly state table has 2856 bytes, expected 1512"),
        ({"last_sample": "x"}, "count_anomaly state has history 16, last_sample 'x'"),
    ],
)
def test_load_state_refuses_what_save_state_did_not_write(change: dict[str, Any], message: str) -> None:
    data = {**save_state(Baseline.empty(16)), **change}
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("+", r"\+")):
        load_state(data)


def test_state_memory_fits_a_city() -> None:
    # 12,000 cameras x 20 rules share ~300 MB; one count_anomaly rule on every camera takes ~35 MB of it
    state = Baseline.empty(make_rule().history)
    assert state.table.nbytes == SLOTS * 17 == 2856
    assert 12_000 * state.table.nbytes < 35e6
