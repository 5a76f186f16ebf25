"""Burst visits over real footage: file cameras, short and stalled streams, budgets, and `mode: burst` rows.

The bursts over the real RTSP server are in `test_grabber.py`, beside the keyframe visits they mirror.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import numpy as np
import pytest

from core.errors import ConfigError, GrabError
from core.types import Frame
from ingest.burst import check_burst, sample_times
from ingest.cameras import parse_cameras
from ingest.grabber import FileCamera, Grabber, GrabTimeouts, grab_burst_stream

T0 = 1000.0
DURATION_S = 79.5  # the shared footage: 795 frames at 10 fps, a keyframe every 2 s
WALL = datetime(2025, 3, 1, 8, 30, tzinfo=UTC)


class SteppingClock:
    """A fake monotonic clock that moves on by `step_s` at every reading."""

    def __init__(self, step_s: float) -> None:
        self.step_s = step_s
        self.now = 0.0

    def __call__(self) -> float:
        self.now += self.step_s
        return self.now


def write_clip(source: Path, path: Path, seconds: float) -> Path:
    """The first `seconds` of `source`'s video, remuxed as they are (no re-encoding): a camera that stops."""
    with av.open(str(source)) as src, av.open(str(path), "w") as out:
        video = src.streams.video[0]
        copy = out.add_stream_from_template(video)
        for packet in src.demux(video):
            if packet.pts is None or video.time_base is None or packet.pts * video.time_base >= seconds:
                continue
            packet.stream = copy
            out.mux(packet)
    return path


def span_s(frames: list[Frame]) -> float:
    return (frames[-1].captured_at - frames[0].captured_at).total_seconds()


def assert_burst(frames: list[Frame], count: int, seq: int, source: str) -> None:
    assert [f.seq for f in frames] == list(range(seq, seq + count))
    assert {(f.camera_id, f.source, f.image.shape) for f in frames} == {(frames[0].camera_id, source, (576, 768, 3))}
    assert all(f.image.std() > 20 for f in frames), "real scenes, not flat pictures"
    assert len({f.image.tobytes() for f in frames}) == count, "every frame shows another moment"
    assert all(a.monotonic < b.monotonic for a, b in itertools.pairwise(frames))
    assert all(a.captured_at < b.captured_at for a, b in itertools.pairwise(frames))
    assert all(f.captured_at.tzinfo is not None for f in frames)
    for f in frames:  # both clocks tell the same intervals
        wall_s = (f.captured_at - frames[0].captured_at).total_seconds()
        assert wall_s == pytest.approx(f.monotonic - frames[0].monotonic, abs=1e-3)


@pytest.fixture
def camera(footage_path: Path) -> Iterator[FileCamera]:
    cam = FileCamera("file-cam", footage_path, t0=T0, wall=lambda: WALL)
    yield cam
    cam.close()


def test_a_file_burst_gives_frames_evenly_spaced_over_the_span(camera: FileCamera) -> None:
    frames, timing = camera.grab_burst(10, 8, 4.0, now=T0 + 10.0)

    assert_burst(frames, 8, 10, camera.url)
    assert span_s(frames) == pytest.approx(4.0, abs=0.05)
    gaps = np.diff([f.monotonic for f in frames])
    assert gaps.min() > 0.4 and gaps.max() < 0.7  # 4 s / 7 = 0.57 s, to the nearest 0.1 s frame
    assert timing.decode > 0 and timing.total == pytest.approx(
        timing.connect + timing.first_keyframe + timing.decode + timing.span
    )


def test_a_file_burst_is_the_span_before_the_live_position(camera: FileCamera) -> None:
    keyframe_6s, _ = camera.grab(1, now=T0 + 6.0)

    at_10s, _ = camera.grab_burst(1, 8, 4.0, now=T0 + 10.0)
    at_11s, _ = camera.grab_burst(1, 8, 4.0, now=T0 + 11.0)

    # live at 10 s: the keyframe at 6 s starts the burst, the last frame is the live one
    assert np.array_equal(at_10s[0].image, keyframe_6s.image)
    assert at_10s[-1].captured_at == WALL
    assert at_10s[-1].monotonic == pytest.approx(T0 + 10.0)
    # live at 11 s: 7 s is in the same GOP, so the same burst, now 1 s old
    assert all(np.array_equal(a.image, b.image) for a, b in zip(at_10s, at_11s, strict=True))
    assert at_11s[-1].captured_at == WALL - timedelta(seconds=1)
    assert at_11s[-1].monotonic == pytest.approx(T0 + 10.0)


def test_a_burst_near_the_loop_start_is_clamped_to_the_file_start(camera: FileCamera) -> None:
    first_keyframe, _ = camera.grab(1, now=T0)

    early, _ = camera.grab_burst(1, 8, 4.0, now=T0 + 1.0)
    next_loop, _ = camera.grab_burst(1, 8, 4.0, now=T0 + 2 * DURATION_S + 1.0)

    assert np.array_equal(early[0].image, first_keyframe.image)
    assert span_s(early) == pytest.approx(4.0, abs=0.05)
    assert early[-1].captured_at == WALL, "a clamped burst ends at the present, never in the future"
    assert all(np.array_equal(a.image, b.image) for a, b in zip(early, next_loop, strict=True))


def test_a_burst_across_the_loop_end_reads_the_last_seconds_of_the_file(camera: FileCamera) -> None:
    frames, _ = camera.grab_burst(1, 8, 4.0, now=T0 + DURATION_S - 0.05)

    assert_burst(frames, 8, 1, camera.url)
    assert frames[-1].monotonic <= T0 + DURATION_S - 0.05


def test_keyframe_visits_after_a_burst_still_see_keyframes(camera: FileCamera) -> None:
    before = [camera.grab(1, now=T0 + t)[0].image for t in (4.0, 9.0)]

    camera.grab_burst(1, 8, 4.0, now=T0 + 40.0)

    after = [camera.grab(1, now=T0 + t)[0].image for t in (4.0, 9.0)]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def test_a_file_shorter_than_the_span_gives_what_it_has(footage_path: Path, tmp_path: Path) -> None:
    clip = write_clip(footage_path, tmp_path / "three.mp4", 3.0)  # frames at 0.0 .. 2.9 s, keyframes at 0 and 2 s
    short = FileCamera("cam-short", clip, t0=T0, wall=lambda: WALL)
    try:
        keyframe_before = short.grab(1, now=T0 + 2.5)[0].image
        frames, _ = short.grab_burst(1, 8, 4.0, now=T0 + 2.5)  # clamped, then the file ends: the decoder drains
        keyframe_after = short.grab(1, now=T0 + 2.5)[0].image
    finally:
        short.close()

    assert_burst(frames, 6, 1, short.url)  # 0.57 s apart: 6 of 8 fit in 2.9 s, at least half
    assert frames[-1].captured_at == WALL
    assert np.array_equal(keyframe_before, keyframe_after)


def test_the_grabber_bursts_file_cameras_with_its_wall_clock(footage_path: Path) -> None:
    grabber = Grabber(wall=lambda: WALL)
    try:
        frames, _ = grabber.grab_burst("cam-file", footage_path.as_uri() + "#t=30", 3, 4, 2.0)
        keyframe, _ = grabber.grab("cam-file", footage_path.as_uri() + "#t=30", 7)
    finally:
        grabber.close()

    assert_burst(frames, 4, 3, footage_path.resolve().as_uri())
    assert frames[-1].captured_at <= WALL and keyframe.captured_at == WALL
    assert span_s(frames) == pytest.approx(2.0, abs=0.05)


def test_a_burst_that_asks_more_than_the_camera_has_is_refused(camera: FileCamera) -> None:
    """10 fps cannot give 64 frames over 2 s: every frame is sampled once (21), fewer than half."""
    with pytest.raises(
        GrabError,
        match=r"camera file-cam \(file://.*\): burst got 21 of 64 frames: the stream's frames are too far apart",
    ):
        camera.grab_burst(1, 64, 2.0, now=T0 + 10.0)


def test_a_stream_that_ends_mid_burst_keeps_what_it_got_when_that_is_half(footage_path: Path, tmp_path: Path) -> None:
    clip = write_clip(footage_path, tmp_path / "short.mp4", 1.5).as_uri()  # frames at 0.0 .. 1.4 s

    frames, _ = grab_burst_stream(clip, "cam-short", 1, 8, 2.0, GrabTimeouts())  # 0.29 s apart: 5 fit

    assert [round(f.monotonic - frames[0].monotonic, 1) for f in frames] == [0.0, 0.3, 0.6, 0.9, 1.2]
    with pytest.raises(GrabError, match=r"camera cam-short \(file://.*\): burst got 3 of 8 frames: the stream ended"):
        grab_burst_stream(clip, "cam-short", 1, 8, 4.0, GrabTimeouts())  # 0.57 s apart: 3 fit


def test_a_burst_past_its_budget_fails_with_too_few_frames(footage_path: Path) -> None:
    clock = SteppingClock(step_s=1.0)  # budget 5 + 1 s: the keyframe, then one more frame before it runs out

    with pytest.raises(GrabError, match=r"camera cam-slow \(file://.*\): burst got 1 of 3 frames: the burst budget"):
        grab_burst_stream(footage_path.as_uri(), "cam-slow", 1, 3, 1.0, GrabTimeouts(keyframe_s=5.0), clock=clock)


def test_a_file_that_fails_names_the_camera(tmp_path: Path) -> None:
    grabber = Grabber()
    with pytest.raises(GrabError, match=r"camera cam-gone \(file://.*\): no such file"):
        grabber.grab_burst("cam-gone", (tmp_path / "gone.mp4").as_uri(), 1, 8, 4.0)


@pytest.mark.parametrize(
    ("frames", "span", "message"),
    [
        (1, 4.0, "burst frames 1: expected 2..64"),
        (65, 4.0, "burst frames 65: expected 2..64"),
        (8, 0.0, "burst span 0.0 s: expected more than 0 and at most 30"),
        (8, 30.5, "burst span 30.5 s: expected more than 0 and at most 30"),
    ],
)
def test_a_burst_outside_its_bounds_is_a_value_error(frames: int, span: float, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        check_burst(frames, span)
    with pytest.raises(ValueError, match=f"^{message}$"):
        Grabber().grab_burst("cam", "rtsp://10.0.0.1/x", 1, frames, span)


def test_sample_times_run_from_the_keyframe_to_the_span() -> None:
    assert sample_times(5, 2.0) == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert sample_times(2, 4.0) == [0.0, 4.0]


def test_burst_rows_load_with_their_defaults() -> None:
    text = (
        "cameras:\n  - id: a\n    url: rtsp://h/x\n    mode: burst\n"
        "  - id: b\n    url: rtsp://h/y\n    mode: burst\n    burst_frames: 16\n    burst_span_s: 2\n"
        "  - id: c\n    url: rtsp://h/z\n"
    )

    a, b, c = parse_cameras(text, "cams.yaml")

    assert (a.mode, a.burst_frames, a.burst_span_s) == ("burst", 8, 4.0)
    assert (b.mode, b.burst_frames, b.burst_span_s) == ("burst", 16, 2.0)
    assert c.mode == "keyframe"


ROW = "cameras:\n  - id: a\n    url: rtsp://h/x\n"


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (
            "    burst_frames: 4\n",
            [
                "cams.yaml:4:19: cameras[0].burst_frames: Value error, burst_frames applies only to mode: burst, and"
                " this camera's mode is 'keyframe'"
            ],
        ),
        (
            "    mode: keyframe\n    burst_span_s: 2\n",
            [
                "cams.yaml:5:19: cameras[0].burst_span_s: Value error, burst_span_s applies only to mode: burst, and"
                " this camera's mode is 'keyframe'"
            ],
        ),
        (
            "    mode: burst\n    burst_frames: 1\n    burst_span_s: 31\n",
            [
                "cams.yaml:5:19: cameras[0].burst_frames: Input should be greater than or equal to 2",
                "cams.yaml:6:19: cameras[0].burst_span_s: Input should be less than or equal to 30",
            ],
        ),
        (
            "    mode: burst\n    burst_frames: 65\n    burst_span_s: 0\n",
            [
                "cams.yaml:5:19: cameras[0].burst_frames: Input should be less than or equal to 64",
                "cams.yaml:6:19: cameras[0].burst_span_s: Input should be greater than 0",
            ],
        ),
        (
            "    mode: burst\n    burst_frames: '8'\n    burst_span_s: true\n",
            [
                "cams.yaml:5:19: cameras[0].burst_frames: Input should be a valid integer",
                "cams.yaml:6:19: cameras[0].burst_span_s: Input should be a valid number",
            ],
        ),
        (
            "    mode: burst\n    burst_count: 8\n",
            ["cams.yaml:5:5: cameras[0].burst_count: extra key not allowed"],
        ),
        (
            "    mode: sometimes\n",
            ["cams.yaml:4:11: cameras[0].mode: Input should be 'keyframe', 'burst' or 'continuous'"],
        ),
    ],
)
def test_a_bad_burst_row_names_its_row(rows: str, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        parse_cameras(ROW + rows, "cams.yaml")
    assert err.value.problems == expected
