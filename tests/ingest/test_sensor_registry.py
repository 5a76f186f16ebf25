"""`sensors.yaml`: strict rows, errors at file:line:col, linked cameras checked against `cameras.yaml`."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from core.errors import ConfigError
from ingest.sensors import load_sensors, parse_sensors

GOOD = """\
sensors:
  - id: wl-07
    name: 人民路下穿积水
    kind: water_level
    unit: m
    grid_code: "310101001001"
    lon: 121.4737
    lat: 31.2304
    cameras: [cam-01]
    range: [0, 10]
  - {id: smoke-1, kind: smoke, enabled: false}
"""

BAD = """\
sensors:
  - id: wl-07
    kind: water_level
    range: [10, 0]
    cameras: [cam-01, cam-99]
  - id: wl-07
    kind: Water Level
    colour: blue
"""


def test_a_good_registry() -> None:
    wl, smoke = parse_sensors(GOOD, "sensors.yaml", {"cam-01"})
    assert (wl.id, wl.unit, wl.cameras, wl.range) == ("wl-07", "m", ("cam-01",), (0.0, 10.0))
    assert not smoke.enabled
    assert [wl.problem(v) for v in (0.0, 10.0, 10.5, -1.0, math.nan)] == [
        "",
        "",
        "out_of_range",
        "out_of_range",
        "not_finite",
    ]


def test_problems_point_at_file_line_col() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_sensors(BAD, "sensors.yaml", {"cam-01"})
    assert caught.value.problems == [
        "sensors.yaml:4:12: sensors[0].range: Value error, range must be [min, max] with min < max, got [10.0, 0.0]",
        "sensors.yaml:7:11: sensors[1].kind: String should match pattern '^[a-z][a-z0-9_]{0,31}$'",
        "sensors.yaml:8:5: sensors[1].colour: extra key not allowed",
    ]
    fixed = BAD.replace("[10, 0]", "[0, 10]").replace("Water Level", "water_level").replace("    colour: blue\n", "")
    with pytest.raises(ConfigError) as caught:
        parse_sensors(fixed, "sensors.yaml", {"cam-01"})
    assert caught.value.problems == [
        "sensors.yaml:5:23: sensors[0].cameras[1]: camera 'cam-99' is not in cameras.yaml",
        "sensors.yaml:6:9: sensors[1].id: sensor id 'wl-07' appears more than once",
    ]


def test_no_file_is_no_sensors(tmp_path: Path) -> None:
    assert load_sensors(tmp_path / "sensors.yaml") == []
