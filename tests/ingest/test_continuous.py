"""Visit mode `continuous`: a held stream sampled at a rate, in windows that share their edge frame; over a file
camera (paced, looped), over the real RTSP server, and reconnecting with backoff when the stream is lost."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.types import Frame
from ingest.cameras import Camera, parse_cameras
from ingest.continuous import ContinuousWatch, Observer, Window, windows
from ingest.grabber import GrabTimeouts, VisitTiming
from ingest.scheduling import Health, HealthChange
from tests.support.rtsp import RtspServer

FAST = GrabTimeouts(open_s=2, read_s=2, keyframe_s=4)


def take(camera: Camera, count: int) -> list[Window]:
    return list(itertools.islice(windows(camera, FAST, time.monotonic, 0), count))


def test_a_file_camera_gives_windows_of_samples_at_the_rate_sharing_their_edge_frame(footage_path: Path) -> None:
    camera = Camera(id="cam-c", url=f"file://{footage_path}#t=20", mode="continuous", sample_fps=5, window_s=1)
    started = time.monotonic()
    got = take(camera, 3)
    elapsed = time.monotonic() - started
    # 5 pictures a second of the footage (10 fps): every other frame, 0.2 s apart by their capture times
    for window in got:
        gaps = [(b.captured_at - a.captured_at).total_seconds() for a, b in itertools.pairwise(window.frames)]
        assert len(window.frames) == 6 and all(abs(g - 0.2) < 0.021 for g in gaps), gaps
    # consecutive windows share their edge frame: each pair of successive samples is in exactly one window
    for before, after in itertools.pairwise(got):
        assert before.frames[-1] is after.frames[0]
    seqs = [f.seq for f in itertools.chain.from_iterable(w.frames[1:] for w in got)]
    assert seqs == sorted(set(seqs))
    # paced in real time (a file is read no faster than a camera would send it); only the first window waited
    assert elapsed >= 2.5
    assert got[0].timing.connect > 0 and got[1].timing.connect == 0
    assert {f.image.shape for w in got for f in w.frames} == {(576, 768, 3)}


@pytest.mark.rtsp
def test_an_rtsp_camera_is_held_open_and_observed_window_after_window(rtsp_server: RtspServer) -> None:
    camera = Camera(id="cam-live", url=rtsp_server.url(1), mode="continuous", sample_fps=5, window_s=1)
    seen: list[list[Frame]] = []
    done = threading.Event()

    def observe(cam: Camera, frames: list[Frame], timing: VisitTiming) -> None:
        seen.append(frames)
        if len(seen) >= 4:
            done.set()

    watch = ContinuousWatch(camera, Observer(observe), FAST)
    watch.start()
    assert done.wait(30)
    watch.stop()
    assert watch.join(10)
    # one connection for all four windows, the camera online, frames in time order across windows
    assert watch.stats.reconnects == 0 and watch.stats.health is Health.online
    times = [f.captured_at for f in itertools.chain.from_iterable(w[1:] for w in seen[:4])]
    assert times == sorted(times) and len(times) >= 4 * 4
    assert all(f.source == rtsp_server.url(1) for w in seen for f in w)


def test_a_lost_camera_is_retried_with_backoff_and_goes_offline_then_reported() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    camera = Camera(id="cam-gone", url=f"rtsp://admin:hunter22@127.0.0.1:{port}/x", mode="continuous")
    changes: list[HealthChange] = []
    offline = threading.Event()

    def on_health(cam: Camera, change: HealthChange) -> None:
        changes.append(change)
        if change.after is Health.offline:
            offline.set()

    watch = ContinuousWatch(camera, Observer(lambda *a: None, on_health), FAST, backoff_base_s=0.05, backoff_max_s=0.2)
    watch.start()
    assert offline.wait(20)
    watch.stop()
    assert watch.join(10)
    assert [(c.before, c.after) for c in changes] == [
        (Health.unknown, Health.degraded),
        (Health.degraded, Health.offline),
    ]
    assert watch.stats.failures >= 3 and "hunter22" not in watch.stats.last_error
    assert all("hunter22" not in c.error for c in changes)


def test_continuous_settings_belong_to_continuous_cameras() -> None:
    rows = parse_cameras(
        "cameras:\n  - {id: a, url: 'file:///x.mp4', mode: continuous, sample_fps: 10, window_s: 3}\n", "c.yaml"
    )
    assert (rows[0].mode, rows[0].sample_fps, rows[0].window_s) == ("continuous", 10, 3)
    with pytest.raises(ConfigError, match=r"c\.yaml:2:\d+: cameras\[0\]\.sample_fps: .*only to mode: continuous"):
        parse_cameras("cameras:\n  - {id: a, url: 'file:///x.mp4', sample_fps: 10}\n", "c.yaml")
