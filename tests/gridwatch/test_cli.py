"""The `gridwatch` command as a user runs it: exit codes and the messages they read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gridwatch.cli import main
from tests.support.assets import ROOT

BAD_RULES = """\
rules:
  - id: fence
    kind: zone_intrusion
    zone:
      name: gate
      polygon: [[0.1, 0.1], [0.9, 0.9]]
    classes: [person]
    max_dwell_s: 30
"""


def test_rules_check_accepts_the_demo_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", str(ROOT / "configs" / "demo" / "rules")]) == 0
    assert capsys.readouterr().out.startswith("ok:")


def test_rules_check_reports_every_problem_with_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "site.yaml"
    bad.write_text(BAD_RULES)
    assert main(["rules", "check", str(bad)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith(f"{bad}:6:16: rules[0].zone.polygon:") for line in out), out
    assert f"{bad}:8:5: rules[0].max_dwell_s: extra key not allowed" in out


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(ROOT / "models" / "yolox-nano.yaml", models)
    monkeypatch.setenv("GRIDWATCH_MODELS_DIR", str(models))
    return models


def test_models_fetch_copies_and_verifies(
    models_dir: Path, yolox_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "fetch", "yolox-nano", "--mirror", str(yolox_path.parent)]) == 0
    assert (models_dir / "yolox_nano.onnx").read_bytes() == yolox_path.read_bytes()
    assert "sha256 verified" in capsys.readouterr().out


def test_models_fetch_rejects_a_corrupt_mirror_copy_naming_the_expected_hash(
    tmp_path: Path, models_dir: Path, yolox_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    data = bytearray(yolox_path.read_bytes())
    data[1000] ^= 0xFF
    (mirror / "yolox_nano.onnx").write_bytes(bytes(data))
    assert main(["models", "fetch", "yolox-nano", "--mirror", str(mirror)]) == 2
    err = capsys.readouterr().err
    assert "695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14" in err
    assert not (models_dir / "yolox_nano.onnx").exists()


def test_run_refuses_a_malformed_camera_row(
    tmp_path: Path, models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config"
    (config / "rules").mkdir(parents=True)
    shutil.copy(ROOT / "configs" / "demo" / "rules" / "walkway.yaml", config / "rules")
    (config / "cameras.yaml").write_text("cameras:\n  - id: a\n    url: rtsp://h/1\n  - id: b\n    url: ftp://h/2\n")
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{config / 'cameras.yaml'}:5:10: cameras[1].url:" in err
