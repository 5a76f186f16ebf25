"""File sources behave like live cameras: paced by the clock, looping, one keyframe per visit."""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from av.container import OutputContainer
from av.packet import Packet
from av.stream import Stream

from core.errors import GrabError
from core.types import Image
from ingest.grabber import (
    FileCamera,
    Grabber,
    GrabTimeouts,
    _first_keyframe,
    file_path,
    file_start_offset,
    grab_stream,
)

DURATION_S = 79.5  # the shared footage: 795 frames at 10 fps, a keyframe every 2 s
GOP_S = 2.0


def grab_at(camera: FileCamera, now: float) -> Image:
    return camera.grab(1, now=now)[0].image


def mux_silence(out: OutputContainer, seconds: int = 1) -> None:
    """Add an audio stream to `out` and mux `seconds` of silence into it."""
    stream = out.add_stream("pcm_s16le", rate=8000)
    for second in range(seconds):
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.int16), format="s16", layout="mono")
        frame.rate = 8000
        frame.time_base = Fraction(1, 8000)
        frame.pts = second * 8000
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def write_audio_only(path: Path) -> Path:
    """A real media file without a video stream: one second of silence as WAV."""
    with av.open(str(path), "w", format="wav") as out:
        mux_silence(out)
    return path


def write_stalled_video(path: Path, audio_s: int = 1) -> Path:
    """A real Matroska file whose video stream never delivers a packet while its audio flows for `audio_s`: a
    camera whose picture stalled with the sound still on."""
    with av.open(str(path), "w", format="matroska") as out:
        video = out.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        mux_silence(out, seconds=audio_s)
    return path


def audio_packets(path: Path) -> list[Packet[Stream]]:
    with av.open(str(path)) as container:
        return [packet for packet in container.demux() if packet.size]


class SteppingClock:
    """A fake monotonic clock that moves on by `step_s` at every reading."""

    def __init__(self, step_s: float) -> None:
        self.step_s = step_s
        self.now = 0.0

    def __call__(self) -> float:
        self.now += self.step_s
        return self.now


def open_descriptors() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


@pytest.fixture
def camera(footage_path: Path) -> Iterator[FileCamera]:
    cam = FileCamera("file-cam", footage_path, t0=1000.0)
    yield cam
    cam.close()


def test_a_visit_gets_the_keyframe_at_or_before_the_live_position(camera: FileCamera) -> None:
    frame, timing = camera.grab(3, now=1000.0 + 5.0)

    assert (frame.camera_id, frame.seq, frame.source) == ("file-cam", 3, camera.url)
    assert frame.source.startswith("file:///") and frame.image.shape == (576, 768, 3)
    assert frame.image.std() > 20
    assert timing.decode > 0
    # 5.0 s lies in the GOP that starts at 4.0 s: same keyframe as 4.0 s and 5.9 s, another one at 6.0 s
    assert np.array_equal(frame.image, grab_at(camera, 1000.0 + 4.0))
    assert np.array_equal(frame.image, grab_at(camera, 1000.0 + 5.9))
    assert not np.array_equal(frame.image, grab_at(camera, 1000.0 + 6.0))


def test_pictures_change_as_time_passes(camera: FileCamera) -> None:
    images = [grab_at(camera, 1000.0 + t) for t in (0.0, 10.0, 20.0)]

    assert not np.array_equal(images[0], images[1])
    assert not np.array_equal(images[1], images[2])


@pytest.mark.parametrize("offset_s", [0.0, 10.0, 77.0])
def test_the_file_loops_past_its_end(camera: FileCamera, offset_s: float) -> None:
    first_pass = grab_at(camera, 1000.0 + offset_s)

    assert np.array_equal(grab_at(camera, 1000.0 + DURATION_S + offset_s), first_pass)
    assert np.array_equal(grab_at(camera, 1000.0 + 3 * DURATION_S + offset_s), first_pass)


def test_the_last_keyframe_holds_until_the_loop_restarts(camera: FileCamera) -> None:
    last = camera.keyframe_at(1000.0 + DURATION_S - 0.01)

    assert camera.keyframe_at(1000.0 + 78.0) == last
    assert camera.keyframe_at(1000.0 + DURATION_S) == camera.keyframe_at(1000.0)
    assert camera.keyframe_at(1000.0 + GOP_S) > camera.keyframe_at(1000.0)


def test_concurrent_visits_of_one_file_camera_take_turns(camera: FileCamera) -> None:
    times = [1000.0 + 2.0 * i for i in range(8)]
    expected = [grab_at(camera, t) for t in times]

    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda t: grab_at(camera, t), times))

    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))


def test_grabber_serves_file_urls_and_plain_paths(footage_path: Path) -> None:
    grabber = Grabber()
    try:
        by_url, _ = grabber.grab("cam-url", footage_path.as_uri(), 1)
        by_path, _ = grabber.grab("cam-path", str(footage_path), 2)
    finally:
        grabber.close()

    assert by_url.source == by_path.source == footage_path.resolve().as_uri()
    assert by_url.image.shape == by_path.image.shape == (576, 768, 3)


def test_bad_files_raise_grab_error_naming_the_camera(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(bytes(range(256)) * 64)
    cases = {
        "cam-garbage": (garbage, "Invalid data"),
        "cam-missing": (tmp_path / "missing.mp4", "no such file"),
        "cam-audio": (write_audio_only(tmp_path / "silence.wav"), "no video stream"),
    }
    grabber = Grabber()
    for camera_id, (path, cause) in cases.items():
        with pytest.raises(GrabError, match=rf"camera {camera_id} \(file://.*\): .*{cause}"):
            grabber.grab(camera_id, path.as_uri(), 1)


def test_unsupported_scheme_is_named_without_credentials() -> None:
    with pytest.raises(GrabError, match=r"camera cam-ftp \(ftp://\*\*\*@host/x\): unsupported scheme 'ftp'"):
        Grabber().grab("cam-ftp", "ftp://user:pw9@host/x", 1)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file:///data/v%20a.mp4", Path("/data/v a.mp4")),
        ("/data/v.mp4", Path("/data/v.mp4")),
        ("clips/v.mp4", Path("clips/v.mp4")),
        ("rtsp://h/x", None),
        ("https://h/x.mp4", None),
    ],
)
def test_file_path(url: str, expected: Path | None) -> None:
    assert file_path(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [("file:///v.mp4", 0.0), ("file:///v.mp4#t=25", 25.0), ("file:///v.mp4#t=12.5,20", 12.5), ("v.mp4#t=-3", 0.0)],
)
def test_file_start_offset(url: str, expected: float) -> None:
    assert file_start_offset(url) == expected


@pytest.mark.parametrize("start", ["soon", "abc", "", "inf", "-inf", "nan", "1e999"])
def test_a_bad_start_offset_is_named(start: str) -> None:
    with pytest.raises(ValueError, match=rf"file camera start 't={start}': expected #t=SECONDS"):
        file_start_offset(f"file:///v.mp4#t={start}")


@pytest.mark.parametrize("start", ["abc", "inf", "nan"])
def test_a_bad_start_offset_fails_the_visit_naming_the_camera(footage_path: Path, start: str) -> None:
    grabber = Grabber()
    try:
        with pytest.raises(GrabError, match=rf"camera cam-t \(file://.*#t={start}\): .*expected #t=SECONDS"):
            grabber.grab("cam-t", f"{footage_path.as_uri()}#t={start}", 1)
    finally:
        grabber.close()


def test_a_far_off_start_still_gets_a_keyframe(footage_path: Path) -> None:
    grabber = Grabber()
    try:
        frame, _ = grabber.grab("cam-far", f"{footage_path.as_uri()}#t=1e308", 1)
    finally:
        grabber.close()
    assert frame.image.shape == (576, 768, 3)


def test_file_cameras_with_different_starts_show_different_moments(footage_path: Path) -> None:
    grabber = Grabber()
    try:
        early, _ = grabber.grab("a", footage_path.as_uri(), 1)
        late, _ = grabber.grab("b", footage_path.as_uri() + "#t=30", 1)
    finally:
        grabber.close()
    assert np.abs(early.image.astype(np.int16) - late.image.astype(np.int16)).mean() > 2


def test_failed_visits_release_the_file(tmp_path: Path) -> None:
    stalled = write_stalled_video(tmp_path / "stalled.mkv")
    grabber = Grabber()
    gc.collect()
    gc.disable()  # the cycle collector would reclaim a leaked container at some point and hide the leak
    try:
        before = open_descriptors()
        for seq in range(20):
            with pytest.raises(GrabError, match=r"camera cam-stalled \(file://.*\): no keyframe in the file"):
                grabber.grab("cam-stalled", stalled.as_uri(), seq)
        after = open_descriptors()
    finally:
        gc.enable()
        grabber.close()
    assert after == before


def test_the_keyframe_budget_holds_while_only_other_streams_flow(tmp_path: Path, footage_path: Path) -> None:
    audio = audio_packets(write_audio_only(tmp_path / "silence.wav"))
    clock = SteppingClock(step_s=0.5)
    with (
        av.open(str(footage_path)) as footage,
        pytest.raises(TimeoutError, match="no keyframe within the keyframe budget"),
    ):
        _first_keyframe(itertools.cycle(audio), footage.streams.video[0], deadline=10.0, clock=clock)
    assert clock.now == 10.5  # given up at the first packet past the budget


def test_packets_of_other_streams_are_skipped(tmp_path: Path, footage_path: Path) -> None:
    audio = audio_packets(write_audio_only(tmp_path / "silence.wav"))
    camera = FileCamera("file-cam", footage_path, t0=1000.0)
    try:
        expected = grab_at(camera, 1000.0)
    finally:
        camera.close()
    with av.open(str(footage_path)) as footage:
        stream = footage.streams.video[0]
        packets = itertools.chain(audio, footage.demux())
        image, _, _ = _first_keyframe(packets, stream, deadline=float("inf"))
    assert np.array_equal(image, expected)


def test_a_stream_whose_video_stalls_is_given_up_at_the_keyframe_budget(tmp_path: Path) -> None:
    """Audio keeps arriving, video never does: the visit ends at the keyframe budget, not when the audio ends."""
    stalled = write_stalled_video(tmp_path / "stalled.mkv", audio_s=20)
    clock = SteppingClock(step_s=1.0)  # one second per reading: start, open, then one per packet

    with pytest.raises(GrabError, match=r"camera cam-mute \(file://.*\): no keyframe within the keyframe budget"):
        grab_stream(stalled.as_uri(), "cam-mute", 1, GrabTimeouts(keyframe_s=5.0), clock=clock)
    assert clock.now == 7.0  # the packet read at 7 s is the first past the budget (1 s + 5 s)
