"""Composition-root pieces that run without cameras: settings loading and rule hot reload."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import Settings
from detectors.session import usable_cores
from gridwatch.runtime import RulesHolder, inference_workers, load_settings
from ingest.cameras import Camera

LABELS = ["person", "bicycle", "car"]
RULE = """\
rules:
  - id: {rule_id}
    kind: zone_intrusion
    zone: {{name: gate, polygon: [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]}}
    classes: [{cls}]
"""


def write_rule(folder: Path, rule_id: str = "gate", cls: str = "person") -> None:
    (folder / "site.yaml").write_text(RULE.format(rule_id=rule_id, cls=cls))


def test_a_bad_rule_file_keeps_the_last_good_rules_running(tmp_path: Path) -> None:
    write_rule(tmp_path)
    holder = RulesHolder(tmp_path, LABELS)
    running = holder.engine()

    (tmp_path / "site.yaml").write_text(RULE.format(rule_id="gate", cls="person") + "    max_dwell_s: 3\n")
    holder.poll()
    assert holder.engine() is running
    assert holder.status() == {
        "rules": 1,
        "errors": [f"{tmp_path / 'site.yaml'}:6:5: rules[0].max_dwell_s: extra key not allowed"],
        "warnings": [],
        "open_incidents": 0,
        "states": 0,
    }

    write_rule(tmp_path, rule_id="gate-2")
    holder.poll()
    assert holder.engine() is not running
    assert [r.id for r in holder.engine().ruleset.rules] == ["gate-2"]
    assert holder.status()["errors"] == []


def test_a_reload_naming_an_unknown_class_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_rule(tmp_path)
    holder = RulesHolder(tmp_path, LABELS)
    running = holder.engine()
    write_rule(tmp_path, cls="persn")
    holder.poll()
    assert holder.engine() is running
    assert "unknown class 'persn'" in str(holder.status()["errors"])
    assert "last good rules keep running" in caplog.text


def test_bad_rules_at_start_stop_the_start(tmp_path: Path) -> None:
    write_rule(tmp_path, cls="persn")
    with pytest.raises(ConfigError, match="did you mean 'person'"):
        RulesHolder(tmp_path, LABELS)


def test_settings_file_errors_name_file_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "settings.yaml").write_text("patrol:\n  max_in_flight: 0\n  typo: 1\n")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path)
    assert err.value.problems == [
        f"{tmp_path / 'settings.yaml'}:2:18: patrol.max_in_flight: Input should be greater than or equal to 1",
        f"{tmp_path / 'settings.yaml'}:3:3: patrol.typo: extra key not allowed",
    ]


def test_environment_overrides_the_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "settings.yaml").write_text("patrol:\n  max_in_flight: 3\n  open_timeout_s: 7\n")
    monkeypatch.setenv("GRIDWATCH_PATROL__MAX_IN_FLIGHT", "9")
    settings = load_settings(tmp_path, port=8123)
    assert (settings.patrol.max_in_flight, settings.patrol.open_timeout_s, settings.api.port) == (9, 7, 8123)


def test_rules_naming_unknown_cameras_are_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "site.yaml").write_text(RULE.format(rule_id="gate", cls="person") + "    cameras: [cam-1, cam-9]\n")
    holder = RulesHolder(tmp_path, LABELS, [Camera(id=c, url="file:///x.mp4") for c in ("cam-1", "cam-2")])
    expected = f"{tmp_path / 'site.yaml'}:6:22: rules[0].cameras[1]: camera 'cam-9' is not in cameras.yaml"
    assert holder.status()["warnings"] == [expected]
    assert expected in caplog.text


def test_a_bad_environment_value_is_reported_at_its_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "settings.yaml").write_text("patrol:\n  max_in_flight: 3\n  open_timeout_s: -1\n")
    monkeypatch.setenv("GRIDWATCH_PATROL__MAX_IN_FLIGHT", "abc")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path)
    assert err.value.problems == [
        "GRIDWATCH_PATROL__MAX_IN_FLIGHT: patrol.max_in_flight: Input should be a valid integer, "
        "unable to parse string as an integer",
        f"{tmp_path / 'settings.yaml'}:3:19: patrol.open_timeout_s: Input should be greater than 0",
    ]


def test_a_bad_port_flag_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--port: Input should be less than or equal to 65535"):
        load_settings(tmp_path, port=70000)


def test_inference_workers_default_to_the_cores_but_never_beyond_the_visits_in_flight(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cpu = ["CPUExecutionProvider"]

    assert inference_workers(Settings(patrol={"max_in_flight": 64}), cpu) == usable_cores()
    assert inference_workers(Settings(patrol={"max_in_flight": 1}), cpu) == 1
    assert inference_workers(Settings(patrol={"max_in_flight": 64}), ["CUDAExecutionProvider", *cpu]) == 2
    assert not caplog.records

    explicit = Settings(detector={"inference_workers": 4}, patrol={"max_in_flight": 2})
    assert inference_workers(explicit, cpu) == 4
    assert "at most 2 inferences can run at once" in caplog.text


LINE_RULE = """\
rules:
  - id: gate-line
    kind: line_crossing
    cameras: [{cameras}]
    line: {{name: gate, a: [0.1, 0.5], b: [0.9, 0.5]}}
    in_side: left
    classes: [person]
"""


def test_a_rule_that_needs_bursts_on_a_keyframe_camera_is_refused_at_its_line(tmp_path: Path) -> None:
    # given: a line rule naming a keyframe camera and a burst camera
    (tmp_path / "site.yaml").write_text(LINE_RULE.format(cameras="gate-kf, gate-burst"))
    cameras = [
        Camera(id="gate-kf", url="file:///x.mp4"),
        Camera(id="gate-burst", url="file:///x.mp4", mode="burst"),
    ]
    # when / then
    with pytest.raises(ConfigError) as info:
        RulesHolder(tmp_path, LABELS, cameras)
    assert info.value.problems == [
        f"{tmp_path / 'site.yaml'}:4:15: rules[0].cameras[0]: camera 'gate-kf' is a keyframe camera; "
        "line_crossing needs mode: burst"
    ]


def test_a_rule_that_needs_bursts_for_every_camera_skips_keyframe_cameras_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text(LINE_RULE.format(cameras='"*"'))
    cameras = [Camera(id="gate-kf", url="file:///x.mp4"), Camera(id="gate-burst", url="file:///x.mp4", mode="burst")]
    holder = RulesHolder(tmp_path, LABELS, cameras)
    assert holder.warnings == [
        f"{tmp_path / 'site.yaml'}:4:14: rules[0].cameras: line_crossing skips keyframe cameras gate-kf"
    ]


def test_bursts_too_sparse_for_tracking_are_reported(tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text(LINE_RULE.format(cameras="gate-burst"))
    sparse = Camera(id="gate-burst", url="file:///x.mp4", mode="burst", burst_frames=2, burst_span_s=8)
    holder = RulesHolder(tmp_path, LABELS, [sparse])
    assert holder.warnings == [
        f"{tmp_path / 'site.yaml'}:4:14: rules[0].cameras: camera 'gate-burst' takes a burst frame every 8.0 s; "
        "line_crossing tracks objects only between frames at most 3 s apart: raise its burst_frames or shorten "
        "burst_span_s"
    ]
