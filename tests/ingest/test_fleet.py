"""Camera fleets as files: real CSV and YAML files, 100,000-row round trips, every problem at its row."""

from __future__ import annotations

import os
import stat
from datetime import datetime
from pathlib import Path

import pytest

from core.errors import ConfigError
from ingest.cameras import Camera, load_cameras
from ingest.fleet import CredentialsError, export_fleet, gb_id_problem, import_fleet, read_fleet
from ingest.fleet_files import COLUMNS, render_csv, render_yaml
from tests.support.fleet import make_fleet

BIG = 100_000
HEADER = "id,name,url,gb_device_id,tags,priority,enabled,arming\n"


@pytest.fixture(scope="module")
def big_fleet() -> list[Camera]:
    return make_fleet(BIG)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    return folder


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        read_fleet(path)
    return err.value.problems


@pytest.mark.slow
def test_a_100k_csv_fleet_round_trips_through_import_and_export(
    big_fleet: list[Camera], tmp_path: Path, config: Path
) -> None:
    # given a CSV of 100,000 cameras using every column
    source = _write(tmp_path / "fleet.csv", render_csv(big_fleet))
    # when it is imported and exported again, in both formats
    report = import_fleet(source, config)
    as_csv = export_fleet(config, "csv").text
    as_yaml = export_fleet(config, "yaml").text
    # then nothing is lost on the way
    assert (report.cameras, report.diff.added, report.written) == (BIG, BIG, True)
    assert as_csv == source.read_text(encoding="utf-8")
    assert read_fleet(_write(tmp_path / "again.csv", as_csv)).cameras == big_fleet
    assert read_fleet(_write(tmp_path / "again.yaml", as_yaml)).cameras == big_fleet
    assert as_yaml == (config / "cameras.yaml").read_text(encoding="utf-8")


@pytest.mark.slow
def test_a_100k_yaml_fleet_imports_and_loads(
    big_fleet: list[Camera], tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(50):
        monkeypatch.setenv(f"CAM_PW_{i}", "pw")
    source = _write(tmp_path / "fleet.yaml", render_yaml(big_fleet))
    assert import_fleet(source, config).diff.added == BIG
    # importing the same fleet again changes nothing and leaves the file alone
    before = (config / "cameras.yaml").stat().st_mtime_ns
    again = import_fleet(source, config)
    assert (again.diff.unchanged, again.written) == (BIG, False)
    assert (config / "cameras.yaml").stat().st_mtime_ns == before
    loaded = load_cameras(config / "cameras.yaml")
    assert len(loaded) == BIG
    assert loaded[1].url == "rtsp://viewer:pw@10.0.0.1:554/ch1"
    assert loaded[1].model_copy(update={"url": big_fleet[1].url}) == big_fleet[1]


@pytest.mark.slow
def test_a_hand_written_100k_yaml_fleet_loads_with_aliases(tmp_path: Path) -> None:
    # plain scalars and one anchor shared by every row: read by the YAML parser, not the fast path
    rows = "".join(
        f"  - id: cam-{i}\n    url: rtsp://10.0.{i // 256 % 256}.{i % 256}/s\n    tags: *t\n" for i in range(BIG)
    )
    path = _write(
        tmp_path / "cameras.yaml", f"cameras:\n  - id: first\n    url: rtsp://h/s\n    tags: &t [gate, north]\n{rows}"
    )
    cameras = load_cameras(path)
    assert len(cameras) == BIG + 1 and cameras[-1].tags == ("gate", "north")


def test_an_alias_bomb_is_still_refused(tmp_path: Path) -> None:
    levels = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 9)]
    path = _write(tmp_path / "cameras.yaml", "\n".join(levels) + "\ncameras: *a8\n")
    with pytest.raises(ConfigError) as err:
        load_cameras(path)
    assert err.value.problems == [f"{path}:1:1: too large: more than 100000 values once aliases are expanded"]


def test_csv_problems_name_the_line_and_the_column(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "cameras.csv",
        HEADER
        + "cam-1,东门,rtsp://10.0.0.1/s,,gate;north,3,true,mon-fri 07:00-19:00\n"
        + "cam 2,,http://10.0.0.2/s,,,12,maybe,\n"
        + '"cam-3","multi\nline",rtsp://10.0.0.3/s,,a;;b,x,false,25:00-06:00\n'
        + "cam-4,,rtsp://10.0.0.4/s,,,,,08:00-08:00;sat 22:00-06:00\n",
    )
    problems = _problems(path)
    assert problems == [
        f"{path}:3:enabled: expected true or false, got 'maybe'",
        f"{path}:3:id: String should match pattern '^[A-Za-z0-9][A-Za-z0-9_.-]{{0,63}}$'",
        f"{path}:3:url: Value error, url must start with one of rtsp://, rtsps://, file://, got 'http://10.0.0.2/s'",
        f"{path}:3:priority: Input should be less than or equal to 9",
        f"{path}:4:priority: expected an integer, got 'x'",
        f"{path}:4:arming: Value error, arming window '25:00-06:00': 25:00 is not a time of day"
        " (00:00 .. 23:59, or 24:00 as end)",
        f"{path}:6:arming: Value error, arming window '08:00-08:00' is empty: for all day write 00:00-24:00",
    ]


def test_unknown_and_missing_columns_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "cameras.csv", "id,nmae,id\ncam-1,x,y\n")
    assert _problems(path) == [
        f"{path}:1:nmae: unknown column, expected some of {', '.join(COLUMNS)}",
        f"{path}:1:id: column appears more than once",
        f"{path}:1:url: required column missing",
    ]


def test_duplicate_ids_name_both_rows(tmp_path: Path) -> None:
    csv_path = _write(tmp_path / "cameras.csv", "id,url\na,rtsp://h/1\nb,rtsp://h/2\n\na,rtsp://h/3\n")
    assert _problems(csv_path) == [f"{csv_path}:5:id: camera id 'a' appears more than once (first at line 2)"]
    yaml_path = _write(
        tmp_path / "c.yaml", "cameras:\n  - id: a\n    url: rtsp://h/1\n  - id: a\n    url: rtsp://h/2\n"
    )
    assert _problems(yaml_path) == [
        f"{yaml_path}:4:9: cameras[1].id: camera id 'a' appears more than once (first at line 2, cameras[0])"
    ]


def test_yaml_problems_keep_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.yaml", 'cameras:\n  - id: "a"\n    url: "rtsp://h/1"\n    tags: ["a;b"]\n    lat: 91\n')
    assert _problems(path) == [
        f"{path}:4:12: cameras[0].tags[0]: String should match pattern '^[^;\\s](?:[^;]{{0,62}}[^;\\s])?$'",
        f"{path}:5:10: cameras[0].lat: Input should be less than or equal to 90",
    ]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("34020000001320000001", None),
        ("3402000000132000001", "GB/T 28181 id '3402000000132000001' has 19 digits, expected 20"),
        ("3402000000132000000A", "GB/T 28181 id '3402000000132000000A' holds characters other than digits"),
        ("34020000009990000001", "GB/T 28181 id '34020000009990000001' has type code 999, which is no device type"),
    ],
)
def test_gb_ids_are_checked(value: str, problem: str | None) -> None:
    found = gb_id_problem(value)
    assert found == problem if problem is None else (found or "").startswith(problem)


def test_a_bad_gb_id_is_a_warning_with_its_row_not_a_refusal(tmp_path: Path, config: Path) -> None:
    path = _write(
        tmp_path / "cameras.csv", "id,url,gb_device_id,gb_channel_id\na,rtsp://h/1,123,34020000001320000001\n"
    )
    report = import_fleet(path, config)
    assert report.diff.added == 1
    assert report.warnings == [f"{path}:2:gb_device_id: warning: GB/T 28181 id '123' has 3 digits, expected 20"]
    assert load_cameras(config / "cameras.yaml")[0].gb_device_id == "123"


def test_a_refused_file_leaves_cameras_yaml_untouched(tmp_path: Path, config: Path) -> None:
    good = import_fleet(_write(tmp_path / "good.csv", "id,url\na,rtsp://h/1\n"), config)
    assert good.written
    target = config / "cameras.yaml"
    before, mtime = target.read_bytes(), target.stat().st_mtime_ns
    with pytest.raises(ConfigError):
        import_fleet(_write(tmp_path / "bad.csv", "id,url\nb,rtsp://h/2\nc,ftp://h/3\n"), config)
    assert (target.read_bytes(), target.stat().st_mtime_ns) == (before, mtime)
    assert sorted(p.name for p in config.iterdir()) == ["cameras.yaml"]  # no temporary file left behind


def test_the_import_counts_what_changed(tmp_path: Path, config: Path) -> None:
    import_fleet(_write(tmp_path / "v1.csv", "id,url\na,rtsp://h/1\nb,rtsp://h/2\nc,rtsp://h/3\n"), config)
    report = import_fleet(
        _write(tmp_path / "v2.csv", "id,url,priority\na,rtsp://h/1,\nb,rtsp://h/2,5\nd,rtsp://h/4,\n"), config
    )
    assert report.diff.text() == "1 added, 1 changed, 1 removed, 1 unchanged"


def test_credentials_are_never_printed(tmp_path: Path, config: Path) -> None:
    # a literal password in a valid row and in a row with an error
    path = _write(
        tmp_path / "cameras.csv",
        "id,url,priority\na,rtsp://admin:hunter2@h/1,1\nb,rtsp://admin:hunter2@h/2,high\nc,http://u:hunter2@h/3,\n",
    )
    with pytest.raises(ConfigError) as err:
        import_fleet(path, config)
    assert len(err.value.problems) == 2
    assert not any("hunter2" in line for line in err.value.problems), err.value.problems
    assert not (config / "cameras.yaml").exists()


def test_export_keeps_env_references_and_refuses_literal_passwords(tmp_path: Path, config: Path) -> None:
    source = _write(tmp_path / "c.csv", "id,url\na,rtsp://admin:${A_PW}@h/1\nb,rtsp://admin:hunter2@h/2\n")
    import_fleet(source, config)
    assert stat.S_IMODE((config / "cameras.yaml").stat().st_mode) == 0o600  # it holds a password
    with pytest.raises(CredentialsError) as err:
        export_fleet(config, "csv")
    message = str(err.value)
    assert "hunter2" not in message
    assert f"{config / 'cameras.yaml'}:5:10: cameras[1].url: rtsp://***@h/2" in message
    assert "--include-credentials" in message
    export = export_fleet(config, "csv", include_credentials=True)
    assert export.holds_credentials and "${A_PW}@h/1" in export.text and "hunter2@h/2" in export.text
    assert read_fleet(_write(tmp_path / "out.csv", export.text)).cameras == read_fleet(source).cameras


def test_arming_windows_and_armed_at() -> None:
    camera = Camera.model_validate(
        {"id": "a", "url": "rtsp://h/s", "arming": ["Mon-Fri 07:00-19:00".lower(), "fri-sun 22:00-06:00"]}
    )
    assert [str(w) for w in camera.arming] == ["mon-fri 07:00-19:00", "fri-sun 22:00-06:00"]
    # 2026-06-01 is a Monday
    cases = {
        datetime(2026, 6, 1, 7, 0): True,
        datetime(2026, 6, 1, 19, 0): False,  # the end is not armed
        datetime(2026, 6, 1, 3, 0): True,  # Sunday's night window runs into Monday morning
        datetime(2026, 6, 2, 3, 0): False,  # Monday has no night window
        datetime(2026, 6, 6, 12, 0): False,  # Saturday noon
        datetime(2026, 6, 6, 23, 30): True,
    }
    assert {moment: camera.armed_at(moment) for moment in cases} == cases
    assert Camera(id="b", url="rtsp://h/s").armed_at(datetime(2026, 6, 6, 12, 0))
    full_day = Camera.model_validate({"id": "c", "url": "rtsp://h/s", "arming": ["sat,sun 00:00-24:00"]})
    assert full_day.armed_at(datetime(2026, 6, 7, 23, 59)) and not full_day.armed_at(datetime(2026, 6, 8, 0, 0))


@pytest.mark.parametrize("text", ["7:00-19:00", "mon-fri07:00-19:00", "monday 07:00-19:00", "24:00-06:00", "07:00"])
def test_a_malformed_arming_window_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="arming window"):
        Camera.model_validate({"id": "a", "url": "rtsp://h/s", "arming": [text]})


def test_export_writes_a_file_in_the_config_folders_own_mode(tmp_path: Path, config: Path) -> None:
    import_fleet(_write(tmp_path / "c.csv", "id,url\na,rtsp://h/1\n"), config)
    assert stat.S_IMODE((config / "cameras.yaml").stat().st_mode) == 0o644
    assert os.access(config / "cameras.yaml", os.R_OK)


@pytest.mark.parametrize("fmt", ["csv", "yaml"])
def test_every_visit_mode_round_trips_with_its_own_settings(tmp_path: Path, config: Path, fmt: str) -> None:
    rows = (
        "id,url,mode,burst_frames,burst_span_s,sample_fps,window_s\n"
        "k,rtsp://h/1,,,,,\n"
        "b,rtsp://h/2,burst,6,3.0,,\n"
        "c,rtsp://h/3,continuous,,,10.0,1.5\n"
    )
    import_fleet(_write(tmp_path / "in.csv", rows), config)
    exported = export_fleet(config, fmt)
    again = tmp_path / f"again.{fmt}"
    _write(again, exported.text)
    report = import_fleet(again, config)
    assert report.diff.text() == "0 added, 0 changed, 0 removed, 3 unchanged"
    modes = {c.id: (c.mode, c.burst_frames, c.sample_fps, c.window_s) for c in load_cameras(config / "cameras.yaml")}
    assert modes == {"k": ("keyframe", 8, 5.0, 2.0), "b": ("burst", 6, 5.0, 2.0), "c": ("continuous", 8, 10.0, 1.5)}
