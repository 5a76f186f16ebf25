"""Sensor rule kinds: hysteresis, rate, sum and stale, the engine's routing, and rule-file errors at file:line:col."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.sensors import SensorObservation
from rules.engine import RuleEngine
from rules.loader import load_rule_files
from tests.rules.builders import make_detections, observation
from tests.support.sensors import T0, THRESHOLD_RULES, engine_of, readings


def fired(engine: RuleEngine, values: list[float], step_s: float = 10.0) -> list[bool]:
    out = []
    for reading in readings(values, step_s=step_s):
        outcomes = engine.observe_sensor(SensorObservation.of(reading, "m"))
        out.append(any(o.fired for o in outcomes))
    return out


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # crossing 3.5 fires; wavering inside the band (3.2..3.5) keeps firing; under 3.2 clears
        ([3.0, 3.6, 3.4, 3.3, 3.55, 3.21, 3.1, 3.4, 3.6], [False, True, True, True, True, True, False, False, True]),
        ([3.5, 3.49, 3.51], [False, False, True]),  # strictly above
    ],
)
def test_threshold_hysteresis(tmp_path: Path, values: list[float], expected: list[bool]) -> None:
    assert fired(engine_of(THRESHOLD_RULES, tmp_path), values) == expected


def test_threshold_below_with_clear_above(tmp_path: Path) -> None:
    text = "rules:\n  - {id: low-o2, kind: sensor_threshold, sensors: ['*'], below: 19.5, clear_above: 20.0}\n"
    assert fired(engine_of(text, tmp_path), [21, 19.0, 19.8, 20.1]) == [False, True, True, False]


def test_rate_per_minute_over_a_window(tmp_path: Path) -> None:
    text = (
        "rules:\n  - {id: rising, kind: sensor_rate, sensors: [wl-07], window_s: 120, min_span_s: 30,"
        " rise_per_min: 0.5}\n"
    )
    # 10 s apart: +0.05 / 10 s is 0.3/min (no); +0.2 / 10 s is 1.2/min once the window spans 30 s
    values = [1.0, 1.05, 1.1, 1.15, 1.35, 1.55, 1.75, 1.75, 1.75]
    assert fired(engine_of(text, tmp_path), values) == [False, False, False, False, True, True, True, True, True]


def test_sum_over_a_window(tmp_path: Path) -> None:
    text = "rules:\n  - {id: rain, kind: sensor_sum, sensors: [wl-07], window_s: 30, above: 10}\n"
    # 10 s apart, window 30 s: the last four readings count
    assert fired(engine_of(text, tmp_path), [4, 4, 4, 0, 0, 0]) == [False, False, True, True, False, False]


def test_stale_fires_on_ticks_once_readings_stop(tmp_path: Path) -> None:
    engine = engine_of("rules:\n  - {id: quiet, kind: sensor_stale, sensors: ['*'], after_s: 60}\n", tmp_path)
    for reading in readings([1.0, 1.1]):
        engine.observe_sensor(SensorObservation.of(reading))
    last = T0 + timedelta(seconds=10)

    def tick(after_s: float) -> bool:
        outcomes = engine.observe_sensor(SensorObservation("wl-07", last + timedelta(seconds=after_s)))
        return any(o.fired for o in outcomes)

    assert [tick(30), tick(59), tick(60), tick(600)] == [False, False, True, True]


def test_engine_routes_cameras_and_sensors_apart(tmp_path: Path) -> None:
    text = THRESHOLD_RULES + "  - {id: quiet, kind: sensor_stale, sensors: ['*'], after_s: 60}\n"
    engine = engine_of(text, tmp_path)
    # a camera observation never reaches a sensor rule
    assert engine.observe(observation(make_detections())) == []
    assert engine.rules_for("wl-07") == ()
    # a tick reaches only the kinds that judge silence
    tick = engine.observe_sensor(SensorObservation("wl-07", T0))
    assert [o.rule.id for o in tick] == ["quiet"]
    reading = engine.observe_sensor(SensorObservation.of(readings([1.0])[0]))
    assert [o.rule.id for o in reading] == ["underpass-flood", "quiet"]
    assert [r.id for r in engine.sensor_rules_for("other")] == ["quiet"]


BAD = """\
rules:
  - id: flood
    kind: sensor_threshold
    sensors: [wl-07]
    cameras: [cam-01]
    above: 3.5
  - id: band
    kind: sensor_threshold
    sensors: [wl-07]
    above: 3.5
    clear_below: 3.8
  - id: rate
    kind: sensor_rate
    sensors: []
    rise_per_min: 1
"""


def test_sensor_rule_errors_point_at_file_line_col(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_rule_files([path])
    assert caught.value.problems == [
        f"{path}:5:5: rules[0].cameras: extra key not allowed",
        f"{path}:11:18: rules[1].clear_below: clear_below 3.8 is more than above 3.5",
        f"{path}:14:14: rules[2].sensors: Tuple should have at least 1 item after validation, not 0",
    ]


def test_camera_rule_fingerprints_did_not_change() -> None:
    """Camera rules keep the fingerprints (and so their saved state) they had before sensor kinds came."""
    ruleset = load_rule_files([Path("configs/demo/rules")])
    assert {r.id: r.fingerprint() for r in ruleset.rules if r.id in ("kerb-parking", "walkway-intrusion")} == {
        "kerb-parking": "cb29cc16735f36dfc41508c035c67407",
        "walkway-intrusion": "382e0a38959d74ccef956c57600bc758",
    }
