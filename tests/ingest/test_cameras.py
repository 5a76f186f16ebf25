from __future__ import annotations

import pytest

from core.errors import ConfigError
from ingest.cameras import parse_cameras

GOOD = """\
cameras:
  - id: cam-01
    name: 东门
    url: rtsp://admin:${TEST_CAM_PW}@10.0.0.5:554/ch1
    grid_code: "310101001001"
    lon: 121.47
    lat: 31.23
  - id: cam-02
    url: file:///data/v.mp4
"""


def test_cameras_load_and_take_passwords_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_CAM_PW", "s3cret")
    cams = parse_cameras(GOOD, "cameras.yaml")
    assert [c.id for c in cams] == ["cam-01", "cam-02"]
    assert cams[0].url == "rtsp://admin:s3cret@10.0.0.5:554/ch1"
    assert cams[0].safe_url == "rtsp://***@10.0.0.5:554/ch1"
    assert "s3cret" not in repr(cams[0])


def test_missing_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_CAM_PW", raising=False)
    with pytest.raises(ConfigError, match="TEST_CAM_PW"):
        parse_cameras(GOOD, "cameras.yaml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "cameras:\n  - id: a\n    url: rtsp://h/x\n  - id: b\n    url: http://h/x\n",
            "cams.yaml:5:10: cameras[1].url: Value error, url must start with one of rtsp://, rtsps://, file://,"
            " got 'http://h/x'",
        ),
        (
            "cameras:\n  - id: a\n    url: rtsp://h/x\n    lat: 120\n",
            "cams.yaml:4:10: cameras[0].lat: Input should be less than or equal to 90",
        ),
        (
            "cameras:\n  - id: a\n    url: rtsp://h/x\n    ur1: x\n",
            "cams.yaml:4:5: cameras[0].ur1: extra key not allowed",
        ),
        (
            "cameras:\n  - id: a\n    url: rtsp://h/x\n  - id: a\n    url: rtsp://h/y\n",
            "cams.yaml:4:9: cameras[1].id: camera id 'a' appears more than once (first at line 2, cameras[0])",
        ),
        (
            "cameras:\n  - id: a\n  - url: rtsp://h/x\n",
            "cams.yaml:2:5: cameras[0].url: Field required",
        ),
        ("cameras:\n  - id: [a\n", "cams.yaml:3:1: expected ',' or ']', but got '<stream end>'"),
    ],
)
def test_a_malformed_row_names_its_row(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_cameras(text, "cams.yaml")
    assert expected in err.value.problems


def test_a_password_with_url_characters_is_percent_encoded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_CAM_PW", "p@ss/w#1")
    cam = parse_cameras(GOOD, "cameras.yaml")[0]
    assert cam.url == "rtsp://admin:p%40ss%2Fw%231@10.0.0.5:554/ch1"
    assert cam.safe_url == "rtsp://***@10.0.0.5:554/ch1"


def test_a_bad_file_start_is_reported_at_its_row() -> None:
    with pytest.raises(ConfigError) as err:
        parse_cameras("cameras:\n  - id: a\n    url: file:///v.mp4#t=soon\n", "cams.yaml")
    assert err.value.problems[0].startswith("cams.yaml:3:10: cameras[0].url: Value error, file camera start")
