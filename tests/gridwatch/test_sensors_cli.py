"""`gridwatch sensors import` and `export` as a user runs them: exit codes, summaries, files, places of problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridwatch.cli import main
from ingest.sensors import load_sensors

CAMERAS = 'cameras:\n  - id: "cam-01"\n    url: "rtsp://10.0.0.1/s"\n  - id: "cam-02"\n    url: "rtsp://10.0.0.2/s"\n'
HEADER = "id,name,kind,unit,grid_code,lon,lat,cameras,range,enabled\n"
V1 = HEADER + "wl-07,人民路下穿积水,water_level,m,310101001001,121.4737,31.2304,cam-01;cam-02,0;10,true\n"
V1 += "smk-1,,smoke,,,,,,,\n"
V2 = HEADER + "wl-07,人民路下穿积水,water_level,m,310101001001,121.4737,31.2304,cam-01,0;10,true\n"
V2 += "nz-3,,noise,dB,,,,,30;130,false\n"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "cameras.yaml").write_text(CAMERAS, encoding="utf-8")
    return folder


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _import(path: Path, config: Path) -> int:
    return main(["sensors", "import", str(path), "--config", str(config)])


def test_import_writes_sensors_yaml_and_prints_what_changed(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _import(_file(tmp_path, "v1.csv", V1), config) == 0
    out = capsys.readouterr()
    assert "written, 2 sensors from" in out.out and "2 added, 0 changed, 0 removed, 0 unchanged" in out.out
    assert out.err == ""
    sensors = load_sensors(config / "sensors.yaml", {"cam-01", "cam-02"})  # what `gridwatch run` reads
    assert sensors[0].cameras == ("cam-01", "cam-02") and sensors[0].range == (0.0, 10.0)
    assert sensors[0].lon == 121.4737 and sensors[0].grid_code == "310101001001" and sensors[1].kind == "smoke"
    assert _import(_file(tmp_path, "v2.csv", V2), config) == 0
    assert "1 added, 1 changed, 1 removed, 0 unchanged" in capsys.readouterr().out
    assert _import(tmp_path / "v2.csv", config) == 0
    assert "unchanged, 2 sensors from" in capsys.readouterr().out
    assert not any(p.name.endswith(".tmp") for p in config.iterdir())  # the atomic write left nothing behind


def test_every_problem_is_placed_and_the_file_refused_whole(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _import(_file(tmp_path, "v1.csv", V1), config)
    before = (config / "sensors.yaml").read_bytes()
    capsys.readouterr()
    bad = HEADER + "wl-07,,water_level,m,,200,,cam-01;cam-99,5;1,maybe\nwl-07,,Smoke!,,,,,,,\n"
    path = _file(tmp_path, "bad.csv", bad)
    assert _import(path, config) == 2
    err = capsys.readouterr().err.splitlines()
    assert f"{path}:2:enabled: expected true or false, got 'maybe'" in err
    assert any(line.startswith(f"{path}:2:lon: ") for line in err)
    assert any(line.startswith(f"{path}:2:range: ") and "min < max" in line for line in err)
    assert any(line.startswith(f"{path}:3:kind: ") for line in err)
    assert err[-1] == f"{path}: refused, {len(err) - 1} problem(s); sensors.yaml left as it was"
    assert (config / "sensors.yaml").read_bytes() == before


def test_linked_cameras_are_checked_against_the_configs_cameras(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _file(
        tmp_path,
        "s.yaml",
        "sensors:\n  - id: a\n    kind: smoke\n    cameras: [cam-01, cam-99]\n  - id: a\n    kind: air\n",
    )
    assert _import(path, config) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{path}:4:23: sensors[0].cameras[1]: camera 'cam-99' is not in cameras.yaml"
    assert err[1].startswith(f"{path}:5:") and "appears more than once (first at line 2, sensors[0])" in err[1]
    assert not (config / "sensors.yaml").exists()
    headerless = _file(tmp_path, "h.csv", "id,kind,colour\nx,smoke,red\n")
    assert _import(headerless, config) == 2
    assert capsys.readouterr().err.startswith(f"{headerless}:1:colour: unknown column")


def test_export_round_trips_as_csv_and_yaml(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _import(_file(tmp_path, "v1.csv", V1), config)
    written = (config / "sensors.yaml").read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["sensors", "export", "--config", str(config)]) == 0
    exported = capsys.readouterr().out
    assert exported == V1.replace(",0;10,", ",0.0;10.0,").replace("smk-1,,smoke,,,,,,,", "smk-1,,smoke,,,,,,,true")
    out = tmp_path / "out.yaml"
    assert main(["sensors", "export", "--config", str(config), "-o", str(out)]) == 0
    assert f"{out}: 2 sensors as yaml" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == written
    again = tmp_path / "again"
    again.mkdir()
    (again / "cameras.yaml").write_text(CAMERAS, encoding="utf-8")
    for source in (_file(tmp_path, "back.csv", exported), out):
        assert _import(source, again) == 0
        assert (again / "sensors.yaml").read_text(encoding="utf-8") == written


def test_export_without_a_registry_says_so(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sensors", "export", "--config", str(config)]) == 2
    assert "sensors.yaml:1:1: no such file" in capsys.readouterr().err
