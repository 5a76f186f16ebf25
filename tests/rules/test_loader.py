from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from rules.kinds.zone_intrusion import ZoneIntrusionRule
from rules.loader import check_rule_files, load_rule_files
from rules.registry import KINDS
from tests.rules.builders import DATA

BAD = DATA / "bad"

BAD_FILES: list[tuple[Path, list[str]]] = [
    (BAD / "unknown_key.yaml", [f"{BAD}/unknown_key.yaml:10:5: rules[1].max_dwell_s: extra key not allowed"]),
    (
        BAD / "two_point_polygon.yaml",
        [f"{BAD}/two_point_polygon.yaml:6:16: rules[0].zone.polygon: a polygon needs at least 3 points, got 2"],
    ),
    (
        BAD / "self_intersecting.yaml",
        [
            f"{BAD}/self_intersecting.yaml:7:9: rules[0].zone.polygon: "
            "polygon is not a simple polygon: Self-intersection[0.5 0.5]"
        ],
    ),
    (BAD / "syntax_error.yaml", [f"{BAD}/syntax_error.yaml:5:5: expected ',' or '}}', but got '<scalar>'"]),
    (BAD / "duplicate_key.yaml", [f"{BAD}/duplicate_key.yaml:7:5: min_confidence: duplicate key"]),
    (
        BAD / "count_anomaly_values.yaml",
        [
            f"{BAD}/count_anomaly_values.yaml:7:16: rules[0].direction: Input should be 'high', 'low' or 'both'",
            f"{BAD}/count_anomaly_values.yaml:8:16: rules[0].threshold: Input should be greater than 0",
            f"{BAD}/count_anomaly_values.yaml:9:16: rules[0].min_delta: Input should be greater than or equal to 0",
            f"{BAD}/count_anomaly_values.yaml:10:14: rules[0].history: Input should be less than or equal to 64",
            f"{BAD}/count_anomaly_values.yaml:11:21: rules[0].sample_every_s: "
            "Input should be less than or equal to 3600",
            f"{BAD}/count_anomaly_values.yaml:12:5: rules[1]: min_history 12 is more than history 8: "
            "a slot keeps only 8 samples, so the rule could never fire",
        ],
    ),
    (
        BAD / "crowd_absence_values.yaml",
        [
            f"{BAD}/crowd_absence_values.yaml:6:16: rules[0].min_count: Input should be greater than or equal to 2",
            f"{BAD}/crowd_absence_values.yaml:7:14: rules[0].confirm: hits 4 is more than of 3: "
            "at most 3 of the last 3 visits can fire",
            f"{BAD}/crowd_absence_values.yaml:11:19: rules[1].min_absent_s: Input should be greater than 0",
            f"{BAD}/crowd_absence_values.yaml:12:20: rules[1].close_after_s: Input should be greater than 0",
        ],
    ),
    (
        BAD / "line_loitering_values.yaml",
        [
            f"{BAD}/line_loitering_values.yaml:4:11: rules[0].line: a and b are both [0.5, 0.2]: "
            "a line needs two different points",
            f"{BAD}/line_loitering_values.yaml:5:14: rules[0].in_side: Input should be 'left' or 'right'",
            f"{BAD}/line_loitering_values.yaml:6:16: rules[0].direction: Input should be 'in', 'out' or 'both'",
            f"{BAD}/line_loitering_values.yaml:8:13: rules[0].anchor: "
            "Input should be 'bottom_center', 'center' or 'top_center'",
            f"{BAD}/line_loitering_values.yaml:13:18: rules[1].min_dwell_s: Input should be greater than 0",
            f"{BAD}/line_loitering_values.yaml:14:22: rules[1].same_object_iou: "
            "Input should be less than or equal to 1",
            f"{BAD}/line_loitering_values.yaml:15:5: rules[2].classes: Field required",
            f"{BAD}/line_loitering_values.yaml:17:43: rules[2].line.b[0]: Input should be less than or equal to 1",
        ],
    ),
    (
        BAD / "video_quality_values.yaml",
        [
            f"{BAD}/video_quality_values.yaml:4:21: rules[0].checks[1]: "
            "Input should be 'no_signal', 'black', 'frozen', 'blurred', 'covered' or 'shifted'",
            f"{BAD}/video_quality_values.yaml:5:20: rules[0].frozen_visits: Input should be greater than or equal to 2",
            f"{BAD}/video_quality_values.yaml:6:24: rules[0].blurred_min_ratio: Input should be less than 1",
            f"{BAD}/video_quality_values.yaml:7:24: rules[0].covered_min_share: Input should be greater than 0",
            f"{BAD}/video_quality_values.yaml:10:13: rules[1].checks: check 'black' is listed more than once",
            f"{BAD}/video_quality_values.yaml:11:21: rules[1].black_max_luma: "
            "Input should be less than or equal to 255",
            f"{BAD}/video_quality_values.yaml:12:29: rules[1].shifted_min_similarity: Input should be greater than 0",
            f"{BAD}/video_quality_values.yaml:15:13: rules[2].checks: "
            "Tuple should have at least 1 item after validation, not 0",
            f"{BAD}/video_quality_values.yaml:16:23: rules[2].reference_visits: "
            "Input should be greater than or equal to 1",
        ],
    ),
    (
        DATA / "duplicate_ids",
        [
            f"{DATA}/duplicate_ids/b.yaml:6:11: rules[1].id: duplicate rule id 'walkway-intrusion', "
            f"first at {DATA}/duplicate_ids/a.yaml:2:9"
        ],
    ),
]


@pytest.mark.parametrize(("path", "expected"), BAD_FILES, ids=[p.stem for p, _ in BAD_FILES])
def test_bad_files_report_file_line_col(path: Path, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_rule_files([path])
    assert info.value.problems == expected
    assert str(info.value) == "\n".join(expected)
    assert check_rule_files([path]) == expected


def test_every_problem_in_every_file_is_reported_at_once() -> None:
    # given: every bad file together; a directory expands sorted by name. Rule ids are compared across all
    # files, invalid ones included, so `walkway-intrusion` of bad/unknown_key.yaml comes first.
    paths = [BAD, DATA / "duplicate_ids"]
    first = f"first at {BAD}/unknown_key.yaml:2:9"
    expected = [
        *(line for _, lines in sorted(BAD_FILES[:-1]) for line in lines),
        f"{DATA}/duplicate_ids/a.yaml:2:9: rules[0].id: duplicate rule id 'walkway-intrusion', {first}",
        f"{DATA}/duplicate_ids/b.yaml:6:11: rules[1].id: duplicate rule id 'walkway-intrusion', {first}",
    ]
    # when / then
    assert check_rule_files(paths) == expected


def test_valid_directory_loads_yaml_and_yml_sorted() -> None:
    ruleset = load_rule_files([DATA / "valid"])
    assert ruleset.files == (DATA / "valid" / "10-walkway.yaml", DATA / "valid" / "20-night.yml")
    assert [r.id for r in ruleset.rules] == ["walkway-intrusion", "park-night", "parked-disabled"]
    assert check_rule_files([DATA / "valid"]) == []


def test_defaults_fill_what_a_rule_leaves_out() -> None:
    rule = load_rule_files([DATA / "valid" / "20-night.yml"]).rules[1]
    assert isinstance(rule, ZoneIntrusionRule)
    assert rule.cameras == ("*",)
    assert (rule.anchor, rule.min_confidence, rule.min_area, rule.min_count) == ("bottom_center", 0.4, 0.0, 1)
    assert (rule.timezone, rule.cooldown_s, rule.category, rule.severity) == (
        "Asia/Shanghai",
        60.0,
        "",
        "minor",
    )
    assert (rule.armed, rule.enabled, rule.name) == ((), False, "")


def test_rule_origin_points_into_the_file() -> None:
    ruleset = load_rule_files([DATA / "valid"])
    night = f"{DATA}/valid/20-night.yml"
    assert ruleset.locate("park-night", ("classes", 1)) == f"{night}:7:23: rules[0].classes[1]"
    assert ruleset.locate("parked-disabled") == f"{night}:11:5: rules[1]"
    assert ruleset.locate("parked-disabled", ("timezone",)) == f"{night}:11:5: rules[1].timezone"
    assert ruleset.locate("nowhere", ("classes", 0)) == "rule 'nowhere': classes[0]"


def test_digest_follows_content(tmp_path: Path) -> None:
    # given
    source = (DATA / "valid" / "10-walkway.yaml").read_text(encoding="utf-8")
    file = tmp_path / "site.yaml"
    file.write_text(source, encoding="utf-8")
    first = load_rule_files([tmp_path])
    # when / then: same content, same digest; one byte more, another digest
    assert load_rule_files([file]).digest == first.digest
    file.write_text(source + "\n", encoding="utf-8")
    assert load_rule_files([tmp_path]).digest != first.digest
    assert len(first.digest) == 64


def test_missing_and_empty_files(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("# nothing yet\n", encoding="utf-8")
    assert load_rule_files([tmp_path / "empty.yaml"]).rules == ()
    assert check_rule_files([tmp_path / "gone.yaml"]) == [
        f"{tmp_path}/gone.yaml:1:1: cannot read: No such file or directory"
    ]


RULE = """\
rules:
  - id: r1
    kind: zone_intrusion
    zone: {{name: z, polygon: [[0, 0], [1, 0], [1, 1]]}}
    classes: [person]
    {line}
"""

# One extra line in an otherwise valid rule (line 6, column 5), and the problem it causes.
FIELD_CASES: list[tuple[str, str]] = [
    (
        "min_confidence: high",
        "6:21: rules[0].min_confidence: Input should be a valid number, unable to parse string as a number",
    ),
    ("min_confidence: 1.5", "6:21: rules[0].min_confidence: Input should be less than or equal to 1"),
    ("min_count: 0", "6:16: rules[0].min_count: Input should be greater than or equal to 1"),
    ("cooldown_s: -1", "6:17: rules[0].cooldown_s: Input should be greater than or equal to 0"),
    (
        "anchor: feet",
        "6:13: rules[0].anchor: Input should be 'bottom_center', 'center', 'top_center' or 'any_corner'",
    ),
    ("severity: urgent", "6:15: rules[0].severity: Input should be 'info', 'minor', 'major' or 'critical'"),
    ("cameras: []", "6:14: rules[0].cameras: Tuple should have at least 1 item after validation, not 0"),
    (
        "category: 0501",
        '6:15: rules[0].category: write the category code in quotes, e.g. "0501": YAML read it as the number 321',
    ),
    (
        "category: '05a1'",
        "6:15: rules[0].category: expected a category code of digits such as '0501', got '05a1'",
    ),
    (
        "timezone: Asia/Shangai",
        "6:15: rules[0].timezone: unknown time zone 'Asia/Shangai': expected an IANA name such as 'Asia/Shanghai'",
    ),
    (
        'armed: [{start: 22:00, end: "06:00"}]',
        '6:21: rules[0].armed[0].start: write the time in quotes, e.g. "22:00": '
        "YAML reads an unquoted 22:00 as the number 1320",
    ),
    (
        'armed: [{start: "08:00", end: "24:00"}]',
        '6:35: rules[0].armed[0].end: expected a time "HH:MM" from "00:00" to "23:59", got \'24:00\'',
    ),
    (
        'armed: [{start: "08:00", end: "08:00"}]',
        "6:13: rules[0].armed[0]: start and end are both 08:00: leave out `armed` to be armed all day",
    ),
    (
        'armed: [{days: [mon, monday], start: "08:00", end: "09:00"}]',
        "6:26: rules[0].armed[0].days[1]: Input should be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun'",
    ),
]


@pytest.mark.parametrize(("line", "expected"), FIELD_CASES, ids=[c[0] for c in FIELD_CASES])
def test_field_problems(tmp_path: Path, line: str, expected: str) -> None:
    file = tmp_path / "rule.yaml"
    file.write_text(RULE.format(line=line), encoding="utf-8")
    assert check_rule_files([file]) == [f"{file}:{expected}"]


# Whole files for problems outside that one line.
FILE_CASES: list[tuple[str, str, list[str]]] = [
    (
        "bad id",
        "rules:\n  - id: Walkway Intrusion\n    kind: zone_intrusion\n",
        [
            "2:5: rules[0].zone: Field required",
            "2:5: rules[0].classes: Field required",
            "2:9: rules[0].id: expected a rule id of lowercase letters, digits, '-' and '_', got 'Walkway Intrusion'",
        ],
    ),
    (
        "unknown kind",
        "rules:\n  - id: r1\n    kind: dwell\n",
        [
            "2:5: rules[0]: Input tag 'dwell' found using 'kind' "
            f"does not match any of the expected tags: {', '.join(repr(k) for k in KINDS)}"
        ],
    ),
    (
        "coordinate out of range",
        "rules:\n  - id: r1\n    kind: zone_intrusion\n    classes: [person]\n"
        "    zone: {name: z, polygon: [[0, 0], [1.5, 0], [1, 1]]}\n",
        ["5:40: rules[0].zone.polygon[1][0]: Input should be less than or equal to 1"],
    ),
    (
        "collinear polygon",
        "rules:\n  - id: r1\n    kind: zone_intrusion\n    classes: [person]\n"
        "    zone: {name: z, polygon: [[0, 0], [0.5, 0.5], [1, 1]]}\n",
        ["5:30: rules[0].zone.polygon: polygon is not a simple polygon: Self-intersection[0.5 0.5]"],
    ),
    (
        "not a mapping",
        "- id: r1\n",
        ["1:1: (top): Input should be a valid dictionary or instance of RuleFile"],
    ),
    ("top-level typo", "rule: []\n", ["1:1: rule: extra key not allowed"]),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_file_problems(tmp_path: Path, text: str, expected: list[str]) -> None:
    file = tmp_path / "rule.yaml"
    file.write_text(text, encoding="utf-8")
    assert check_rule_files([file]) == [f"{file}:{line}" for line in expected]
