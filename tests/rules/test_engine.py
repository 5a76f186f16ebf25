from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from core.errors import ConfigError
from rules.engine import RuleEngine
from rules.loader import RuleSet, load_rule_files
from tests.rules.builders import DATA, LABELS, ROOT, Box, make_detections, make_rule

SHANGHAI = ZoneInfo("Asia/Shanghai")
SATURDAY_2AM = datetime(2024, 1, 6, 2, 0, tzinfo=SHANGHAI)  # park-night is armed
MONDAY_NOON = datetime(2024, 1, 1, 12, 0, tzinfo=SHANGHAI)  # park-night is not


def test_unknown_class_names_the_file_line() -> None:
    ruleset = load_rule_files([DATA / "unknown_class.yaml"])
    with pytest.raises(ConfigError) as info:
        RuleEngine(ruleset, LABELS)
    assert info.value.problems == [
        f"{DATA}/unknown_class.yaml:6:23: rules[0].classes[1]: "
        "unknown class 'persn': not among the model's 80 labels; did you mean 'person'?"
    ]


def test_every_unknown_class_is_reported_even_in_disabled_rules() -> None:
    # given: rules built in code, so there is no file to point at
    ruleset = RuleSet(
        rules=(
            make_rule(id="a", classes=["person", "lamp post"]),
            make_rule(id="b", classes=["cars"], enabled=False),
        ),
        files=(),
        digest="0" * 64,
    )
    # when
    with pytest.raises(ConfigError) as info:
        RuleEngine(ruleset, LABELS)
    # then
    assert info.value.problems == [
        "rule 'a': classes[1]: unknown class 'lamp post': not among the model's 80 labels",
        "rule 'b': classes[0]: unknown class 'cars': not among the model's 80 labels; did you mean 'car'?",
    ]


def test_rules_for_camera_counts_only_enabled_rules_that_cover_it() -> None:
    engine = RuleEngine(load_rule_files([DATA / "valid"]), LABELS)
    assert [r.id for r in engine.rules_for("cam-7")] == ["walkway-intrusion"]
    assert [r.id for r in engine.rules_for("cam-park-2")] == ["walkway-intrusion", "park-night"]


@pytest.mark.parametrize(
    ("camera", "now", "fired"),
    [
        ("cam-park-1", SATURDAY_2AM, {"walkway-intrusion": True, "park-night": True}),
        ("cam-park-1", MONDAY_NOON, {"walkway-intrusion": True}),
        ("cam-7", SATURDAY_2AM, {"walkway-intrusion": True}),
    ],
)
def test_evaluate_applies_covering_armed_enabled_rules(camera: str, now: datetime, fired: dict[str, bool]) -> None:
    # given: a person with feet at (320, 400) of 640x480, inside the walkway and the lawn; a car on the kerb,
    # watched only by a disabled rule
    engine = RuleEngine(load_rule_files([DATA / "valid"]), LABELS)
    detections = make_detections(Box(300, 250, 340, 400), Box(100, 400, 200, 470, "car"))
    # when
    verdicts = engine.evaluate(camera, 640, 480, detections, now)
    # then
    assert {v.rule_id: v.fired for v in verdicts} == fired
    assert all(v.camera_id == camera and v.subjects.tolist() == [0] for v in verdicts)


def test_evaluate_reports_rules_that_did_not_fire() -> None:
    engine = RuleEngine(load_rule_files([DATA / "valid"]), LABELS)
    verdicts = engine.evaluate("cam-7", 640, 480, make_detections(Box(10, 10, 50, 50)), MONDAY_NOON)
    assert [(v.rule_id, v.fired, v.reason) for v in verdicts] == [
        ("walkway-intrusion", False, "0 person in zone walkway")
    ]


def test_demo_rules_compile_against_the_yolox_labels() -> None:
    ruleset = load_rule_files([ROOT / "configs" / "demo" / "rules"])
    engine = RuleEngine(ruleset, LABELS)
    assert engine.rules_for("any-camera")
