"""The grabber against the real RTSP test server: keyframes, bursts, concurrency, dead cameras, credentials."""

from __future__ import annotations

import itertools
import logging
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pytest

from core.errors import GrabError
from core.types import Frame
from ingest.grabber import Grabber, GrabTimeouts, VisitTiming
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.rtsp

FAST = GrabTimeouts(open_s=1.0, read_s=1.0, keyframe_s=4.0)
SLACK_S = 3.0  # generous: a loaded CI machine, thread start, the decoder
LEAKY_PASSWORD = "wr0ng-s3cret"


def assert_camera_frame(frame: Frame, camera_id: str, seq: int, source: str) -> None:
    assert (frame.camera_id, frame.seq, frame.source) == (camera_id, seq, source)
    assert frame.image.shape == (576, 768, 3)
    assert frame.image.dtype == np.uint8
    assert frame.image.std() > 20, "a real scene, not a flat or grey picture"
    assert frame.captured_at.tzinfo is not None


def assert_timing(timing: VisitTiming) -> None:
    assert timing.connect > 0 and timing.first_keyframe >= 0 and timing.decode > 0
    assert timing.total == pytest.approx(timing.connect + timing.first_keyframe + timing.decode)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_grabs_a_keyframe_over_rtsp(rtsp_server: RtspServer) -> None:
    frame, timing = Grabber(FAST).grab("cam-a", rtsp_server.url(0), 7)

    assert_camera_frame(frame, "cam-a", 7, rtsp_server.url(0))
    assert_timing(timing)


def test_grabs_twice_in_a_row_on_the_same_path(rtsp_server: RtspServer) -> None:
    grabber = Grabber(FAST)

    first, _ = grabber.grab("cam-a", rtsp_server.url(1), 1)
    second, _ = grabber.grab("cam-a", rtsp_server.url(1), 2)

    assert_camera_frame(first, "cam-a", 1, rtsp_server.url(1))
    assert_camera_frame(second, "cam-a", 2, rtsp_server.url(1))
    assert second.monotonic > first.monotonic


def test_grabs_from_four_paths_at_once(rtsp_server: RtspServer) -> None:
    grabber = Grabber(FAST)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(grabber.grab, f"cam-{i}", rtsp_server.url(i), i) for i in range(4)]
        frames = [future.result()[0] for future in futures]

    for i, frame in enumerate(frames):
        assert_camera_frame(frame, f"cam-{i}", i, rtsp_server.url(i))
    # each path plays from its own live position, so the four cameras show different pictures
    assert len({frame.image.tobytes() for frame in frames}) == 4


def test_refused_connection_raises_grab_error_naming_the_camera() -> None:
    url = f"rtsp://127.0.0.1:{free_port()}/cam0"
    started = time.monotonic()

    with pytest.raises(GrabError, match=r"camera cam-dead \(rtsp://127\.0\.0\.1:\d+/cam0\): .*refused"):
        Grabber(FAST).grab("cam-dead", url, 1)

    assert time.monotonic() - started < FAST.open_s + FAST.read_s + SLACK_S


def test_silent_camera_times_out_while_another_camera_still_answers(
    rtsp_server: RtspServer, silent_listener: int
) -> None:
    grabber = Grabber(FAST)
    silent_url = f"rtsp://127.0.0.1:{silent_listener}/cam0"
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as pool:
        silent: Future[tuple[Frame, VisitTiming]] = pool.submit(grabber.grab, "cam-silent", silent_url, 1)

        good, _ = grabber.grab("cam-good", rtsp_server.url(2), 1)

        with pytest.raises(
            GrabError, match=r"camera cam-silent \(rtsp://127\.0\.0\.1:\d+/cam0\): no answer within 1 s"
        ):
            silent.result()
        elapsed = time.monotonic() - started
    assert_camera_frame(good, "cam-good", 1, rtsp_server.url(2))
    assert elapsed < FAST.open_s + FAST.read_s + SLACK_S


def assert_burst(frames: list[Frame], camera_id: str, seq: int, source: str, count: int) -> None:
    for i, frame in enumerate(frames):
        assert_camera_frame(frame, camera_id, seq + i, source)
    assert len(frames) == count
    assert len({frame.image.tobytes() for frame in frames}) == count, "every frame shows another moment"
    assert all(a.monotonic < b.monotonic and a.captured_at < b.captured_at for a, b in itertools.pairwise(frames))


def test_grabs_a_burst_over_rtsp_without_leaking_credentials(rtsp_server: RtspServer) -> None:
    started = time.monotonic()

    frames, timing = Grabber(FAST).grab_burst("cam-auth", rtsp_server.auth_url(), 20, 5, 2.0)

    elapsed = time.monotonic() - started
    assert_burst(frames, "cam-auth", 20, f"rtsp://***@127.0.0.1:{rtsp_server.port}/auth", 5)
    # frame times come from the stream's timestamps: 10 fps, so exactly 0.5 s apart
    offsets = [frame.monotonic - frames[0].monotonic for frame in frames]
    assert offsets == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0], abs=0.02)
    assert (frames[-1].captured_at - frames[0].captured_at).total_seconds() == pytest.approx(2.0, abs=0.02)
    # a live camera shows the span in real time
    assert timing.connect > 0 and timing.decode > 0 and timing.span > 1000.0
    assert timing.total == pytest.approx(elapsed * 1000.0, rel=0.1)
    assert elapsed < FAST.keyframe_s + 2.0 + SLACK_S


def test_silent_camera_times_out_while_another_camera_still_bursts(
    rtsp_server: RtspServer, silent_listener: int
) -> None:
    grabber = Grabber(FAST)
    silent_url = f"rtsp://127.0.0.1:{silent_listener}/cam0"
    finished: list[float] = []
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as pool:
        silent = pool.submit(grabber.grab_burst, "cam-silent", silent_url, 1, 8, 4.0)
        silent.add_done_callback(lambda _: finished.append(time.monotonic() - started))

        good, _ = grabber.grab_burst("cam-good", rtsp_server.url(3), 1, 4, 1.5)

        with pytest.raises(
            GrabError, match=r"camera cam-silent \(rtsp://127\.0\.0\.1:\d+/cam0\): no answer within 1 s"
        ):
            silent.result()
        elapsed = time.monotonic() - started
    assert_burst(good, "cam-good", 1, rtsp_server.url(3), 4)
    assert finished[0] < FAST.open_s + FAST.read_s + SLACK_S, "the silent camera is given up at its open timeout"
    assert elapsed < FAST.keyframe_s + 1.5 + SLACK_S


def test_credentials_reach_the_camera_but_never_the_frame(rtsp_server: RtspServer) -> None:
    frame, _ = Grabber(FAST).grab("cam-auth", rtsp_server.auth_url(), 1)

    assert_camera_frame(frame, "cam-auth", 1, f"rtsp://***@127.0.0.1:{rtsp_server.port}/auth")
    assert rtsp_server.password not in frame.source


def leaky_url(server: RtspServer, kind: str) -> str:
    if kind == "wrong-password":
        return server.auth_url(LEAKY_PASSWORD)
    return f"rtsp://admin:{LEAKY_PASSWORD}@127.0.0.1:{free_port()}/x"


@pytest.mark.parametrize("kind", ["wrong-password", "refused"])
def test_credentials_never_appear_in_errors_or_logs(
    rtsp_server: RtspServer, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    with pytest.raises(GrabError) as raised:
        Grabber(FAST).grab("cam-leak", leaky_url(rtsp_server, kind), 1)

    message = str(raised.value)
    assert "cam-leak" in message and "rtsp://***@127.0.0.1:" in message
    assert LEAKY_PASSWORD not in message
    assert "rtsp://***@127.0.0.1:" in caplog.text, "the failure is logged, sanitised"
    assert LEAKY_PASSWORD not in caplog.text
