"""`gridwatch rules test`: a dry run of rules over real footage and photos with the real model."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import pytest

from gridwatch.cli import main
from gridwatch.modelstore import fetch_model
from tests.support.assets import ROOT

RULES = """\
rules:
  - id: walkway
    kind: zone_intrusion
    zone:
      name: walkway
      polygon: [[0.0, 0.31], [0.85, 0.31], [1.0, 0.45], [1.0, 0.85], [0.55, 0.61], [0.3, 0.48], [0.0, 0.41]]
    classes: [person]
  - id: lawn
    kind: zone_intrusion
    zone: {name: lawn, polygon: [[0.02, 0.78], [0.3, 0.78], [0.3, 0.99], [0.02, 0.99]]}
    classes: [person]
  - id: bus-anywhere
    kind: zone_intrusion
    zone: {name: frame, polygon: [[0, 0], [1, 0], [1, 1], [0, 1]]}
    classes: [bus]
  - id: night-only
    kind: zone_intrusion
    zone: {name: frame, polygon: [[0, 0], [1, 0], [1, 1], [0, 1]]}
    classes: [person]
    armed: [{days: [mon, tue, wed, thu, fri, sat, sun], start: "22:00", end: "06:00"}]
"""


@pytest.fixture(scope="module")
def rules_file(tmp_path_factory: pytest.TempPathFactory, yolox_path: Path) -> Path:
    root = tmp_path_factory.mktemp("dry")
    models = root / "models"
    models.mkdir()
    shutil.copy(ROOT / "models" / "yolox-nano.yaml", models)
    fetch_model(models / "yolox-nano.yaml", models, str(yolox_path.parent))
    (root / "settings.yaml").write_text(f"models_dir: {models}\n")
    (root / "site.yaml").write_text(RULES)
    return root / "site.yaml"


def run(rules_file: Path, *extra: str) -> int:
    return main(
        ["--log-level", "WARNING", "rules", "test", str(rules_file), "--config", str(rules_file.parent), *extra]
    )


def test_dry_run_over_the_footage_fires_the_walkway_only(
    rules_file: Path, footage_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "hits"
    code = run(
        rules_file, "--on", str(footage_path), "--every", "20", "--at", "2026-05-04T10:00:00+08:00", "--out", str(out)
    )
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    # visits at 0, 20, 40 and 60 s: the walkway incident opens at once and updates after its 60 s cooldown
    assert lines[-1] == (
        "4 visits over 80 s: walkway: 1 opened, 1 updated, 0 closed; lawn: 0 opened, 0 updated, 0 closed; "
        "bus-anywhere: 0 opened, 0 updated, 0 closed; night-only: 0 opened, 0 updated, 0 closed"
    )
    assert lines[0].startswith("     0.0s  walkway  opened  incident ")
    assert lines[1].startswith("    60.0s  walkway  updated  incident " + lines[0].split()[4])
    assert "zone=walkway" in lines[0] and "person in zone walkway" in lines[0]
    snapshots = sorted(out.iterdir())
    assert len(snapshots) == 2
    assert cv2.imread(str(snapshots[0])).shape == (576, 768, 3)


def test_arming_windows_follow_the_given_time(
    rules_file: Path, footage_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(rules_file, "--on", str(footage_path), "--every", "40", "--at", "2026-05-04T23:30:00+08:00") == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("night-only: 1 opened, 0 updated, 0 closed")


def test_dry_run_on_a_photo(rules_file: Path, bus_jpg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(rules_file, "--on", str(bus_jpg), "--at", "2026-05-04T10:00:00+08:00") == 0
    out = capsys.readouterr().out
    assert "bus-anywhere  opened  incident " in out and "zone=frame  1 bus in zone frame" in out
    assert out.splitlines()[-1].startswith("1 visits over 0 s: ")


def test_a_time_without_a_zone_is_refused(rules_file: Path, bus_jpg: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        run(rules_file, "--on", str(bus_jpg), "--at", "2026-05-04T10:00:00")
    assert exit_.value.code == 2


def test_a_missing_clip_is_a_clear_error(rules_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(rules_file, "--on", str(tmp_path / "nope.mp4")) == 2
    assert "nope.mp4: no such clip, image or folder" in capsys.readouterr().err


def test_a_simulated_hour_loops_the_clip_and_reports_incidents_not_hits(
    rules_file: Path, footage_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # an hour of patrol at one visit a minute over the 79.5 s clip, looped
    code = run(
        rules_file,
        "--on",
        str(footage_path),
        "--every",
        "60",
        "--duration",
        "3600",
        "--at",
        "2026-05-04T10:00:00+08:00",
    )
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    # people are on the walkway at every visit: one incident, opened once and updated at each visit after it
    assert lines[-1].startswith("61 visits over 3600 s: walkway: 1 opened, 60 updated, 0 closed;")
    assert len({line.split()[4] for line in lines[:-1] if " walkway " in line}) == 1


LINE = """\
rules:
  - id: lawn-line
    kind: line_crossing
    line: {name: lawn-edge, a: [0.2995, 0.309], b: [0.2995, 0.521]}
    in_side: right
    classes: [person]
    cooldown_s: 0
"""


def test_a_burst_camera_is_simulated_with_bursts(
    rules_file: Path, footage_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: a line rule, which needs bursts; the clip visited as a burst camera, 8 frames over 4 s every 4 s
    line = rules_file.parent / "line.yaml"
    line.write_text(LINE, encoding="utf-8")
    args = [
        "--on",
        str(footage_path),
        "--mode",
        "burst",
        "--every",
        "4",
        "--duration",
        "44",
        "--at",
        "2026-05-04T10:00:00+08:00",
    ]
    # when
    code = main(["--log-level", "WARNING", "rules", "test", str(line), "--config", str(rules_file.parent), *args])
    # then: people crossed the lawn edge in those bursts, and the crossings are incidents of the line
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[-1].startswith("12 visits over 44 s: lawn-line: 1 opened")
    assert any(" lawn-line  opened  incident " in line and "zone=lawn-edge" in line for line in lines)
