from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.errors import ConfigError
from rules.categories import default_categories, load_categories
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


def test_compile_errors_of_every_rule_are_reported_in_file_order() -> None:
    bad = DATA / "compile_errors.yaml"
    with pytest.raises(ConfigError) as info:
        RuleEngine(load_rule_files([bad]), LABELS, categories=default_categories())
    assert info.value.problems == [
        f"{bad}:6:22: rules[0].families[0][1]: unknown class 'lorry': not among the model's 80 labels",
        f"{bad}:7:15: rules[0].min_hits: min_hits 6 is more than window 5",
        f"{bad}:9:15: rules[0].category: category '0599' is not in GB/T 30428.2-2013 事件分类 + gridwatch 99 "
        "(version 2013.1)",
    ]


def test_a_city_table_replaces_the_default_categories(tmp_path: Path) -> None:
    # given: a city's own table that knows only its own codes
    (tmp_path / "categories.yaml").write_text(
        'name: 示例市 city table\nversion: "2026.1"\nclasses:\n'
        '  - {code: "05", zh: 街面秩序, children: [{code: "0599", zh: 占道晾晒}]}\n',
        encoding="utf-8",
    )
    table = load_categories(tmp_path)
    # when / then: its code compiles, and the default's 9904 no longer does
    assert table.label("0599") == "05 街面秩序 / 0599 占道晾晒"
    with pytest.raises(ConfigError, match="category '9904' is not in 示例市 city table"):
        RuleEngine(load_rule_files([DATA / "compile_errors.yaml"]), LABELS, categories=table)


def test_a_category_table_with_bad_nesting_names_its_place(tmp_path: Path) -> None:
    (tmp_path / "categories.yaml").write_text(
        'name: t\nversion: "1"\nclasses:\n  - {code: "05", zh: a, children: [{code: "0601", zh: b}]}\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_categories(tmp_path)
    assert info.value.problems == [
        f"{tmp_path}/categories.yaml:1:1: (top): class 0601 is not two digits more than its parent 05"
    ]
