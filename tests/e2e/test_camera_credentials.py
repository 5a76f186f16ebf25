"""A camera password with URL characters, from the environment, against the real RTSP server's basic auth."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import GrabError
from ingest.cameras import parse_cameras
from ingest.grabber import GrabTimeouts, grab_keyframe
from tests.support.rtsp import RtspServer, _stop, start_server

PASSWORD = "p@ss/w#1:x"


@pytest.fixture(scope="module")
def server(footage_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RtspServer]:
    proc, srv = start_server(footage_path, tmp_path_factory.mktemp("rtsp") / "log", paths=1, password=PASSWORD)
    try:
        yield srv
    finally:
        _stop(proc)


def camera_url(server: RtspServer) -> str:
    text = f"cameras:\n  - id: gate\n    url: rtsp://admin:${{GATE_PW}}@127.0.0.1:{server.port}/auth\n"
    return parse_cameras(text, "cameras.yaml")[0].url


@pytest.mark.rtsp
def test_a_password_from_the_environment_with_url_characters_authenticates(
    server: RtspServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATE_PW", PASSWORD)
    frame, _ = grab_keyframe(camera_url(server), "gate", 1, GrabTimeouts())
    assert frame.image.shape == (576, 768, 3)
    assert frame.source == f"rtsp://***@127.0.0.1:{server.port}/auth"


@pytest.mark.rtsp
def test_a_wrong_password_with_url_characters_never_shows(
    server: RtspServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "n0t/it@all"
    monkeypatch.setenv("GATE_PW", wrong)
    with caplog.at_level(logging.DEBUG), pytest.raises(GrabError) as err:
        grab_keyframe(camera_url(server), "gate", 1, GrabTimeouts(open_s=3, read_s=3))
    for text in (str(err.value), caplog.text):
        assert wrong not in text and "n0t%2Fit%40all" not in text
