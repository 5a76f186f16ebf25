"""Visit mode `continuous`: a held connection, sampled at a rate, for the few cameras whose rules must see every
moment (a line crossed in real time), beside the patrol.

Each continuous camera has a thread of its own (`ContinuousWatch`) that opens the stream with the patrol's tuned
options, waits for a keyframe, then decodes every frame and converts to BGR only the ones on the sample grid
(`sample_fps`, by the frames' pts). Every `window_s` the samples so far are one observation through the same
visit pipeline as a burst (rules that follow motion, incidents, evidence); consecutive windows share their edge
frame, so each pair of successive samples is in exactly one window and a crossing between windows is seen once.

A lost stream (an error, a read that stalls past FFmpeg's timeout, the end of a file) is reconnected after a
backoff with jitter that grows with consecutive failures; health changes are reported like the patrol's. A file
camera (`file://`) is read paced in real time and looped, so demos and tests use the same path.

Capacity: each continuous camera holds one connection and one decode for good, so it takes one of the patrol's
`max_in_flight` slots (`Patrol` starts that many fewer workers).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import av
import numpy as np
from av.container import InputContainer
from av.packet import Packet
from av.stream import Stream
from av.video.stream import VideoStream

from core.errors import GrabError
from core.redact import redact_text, sanitize_url
from core.types import Frame
from ingest.burst import next_keyframe
from ingest.cameras import Camera
from ingest.grabber import (
    STREAM_ERRORS,
    GrabTimeouts,
    VisitTiming,
    file_path,
    file_start_offset,
    grab_error,
    open_network,
)
from ingest.scheduling import Health, HealthChange

logger = logging.getLogger(__name__)

TOLERANCE_S = 0.02  # a frame this close before a sample time is taken for it


@dataclass(frozen=True, slots=True)
class Sample:
    image: np.ndarray
    offset_s: float  # seconds after the first keyframe, by pts
    arrived: float  # the caller's monotonic clock when its packet arrived


def samples(
    container: InputContainer, fps: float, deadline: float, clock: Callable[[], float], *, pace: bool = False
) -> Iterator[Sample]:
    """Every `1/fps` seconds of the stream (by pts) one BGR picture, from its first keyframe on, until the packets
    end (`EOFError`) or an error. `deadline`: the first keyframe's budget. `pace`: wait so that the pictures come
    no faster than real time (a file)."""
    stream = container.streams.video[0]
    if stream.time_base is None:
        raise ValueError("the video stream has no time base")
    base = stream.time_base
    packets = container.demux()  # every stream: next_keyframe checks the budget on each packet
    keyframe, arrived = next_keyframe(packets, stream, deadline, clock)
    codec = stream.codec_context
    codec.thread_count = 1
    anchor: int | None = keyframe.pts
    started = clock()
    step, next_at = 1.0 / fps, 0.0
    for packet in _chain(keyframe, packets, stream):
        arrived = clock()
        for picture in codec.decode(packet):
            if picture.pts is None:
                continue
            if anchor is None:
                anchor = picture.pts
            offset = float((picture.pts - anchor) * base)
            if offset < next_at - TOLERANCE_S:
                continue
            if pace and (ahead := started + offset - clock()) > 0:
                time.sleep(ahead)
            yield Sample(np.asarray(picture.to_ndarray(format="bgr24"), dtype=np.uint8), offset, arrived)
            while next_at <= offset + TOLERANCE_S:
                next_at += step
    raise EOFError("the stream ended")


def _chain(first: Packet[Stream], rest: Iterator[Packet[Stream]], stream: VideoStream) -> Iterator[Packet[Stream]]:
    yield first
    for packet in rest:
        if packet.stream is stream and packet.size:
            yield packet


def _open(camera: Camera, timeouts: GrabTimeouts, clock: Callable[[], float]) -> tuple[InputContainer, bool]:
    """The container and whether it is a file (paced, looped)."""
    path = file_path(camera.url)
    if path is not None:
        try:
            container = av.open(str(path))
            if (offset := file_start_offset(camera.url)) > 0:
                container.seek(int(offset * av.time_base))  # to the keyframe at or before it
        except STREAM_ERRORS as exc:
            raise grab_error(camera.id, camera.url, exc) from None
        return container, True
    return open_network(camera.url, camera.id, timeouts, clock(), clock), False


@dataclass(frozen=True, slots=True)
class Window:
    frames: list[Frame]
    timing: VisitTiming


def windows(camera: Camera, timeouts: GrabTimeouts, clock: Callable[[], float], seq: int) -> Iterator[Window]:
    """One connection's observation windows: `window_s` of samples each, sharing their edge frame."""
    started = clock()
    container, is_file = _open(camera, timeouts, clock)
    opened = clock()
    source = sanitize_url(camera.url)
    try:
        if not container.streams.video:
            raise grab_error(camera.id, camera.url, "no video stream")
        # the first sample's (wall, monotonic) time; each later one's is that plus its offset by pts, as in a burst
        zero: tuple[datetime, float] | None = None
        window: list[Frame] = []
        first_wait = 0.0
        for sample in samples(container, camera.sample_fps, started + timeouts.keyframe_s, clock, pace=is_file):
            if zero is None:
                zero = (datetime.now(UTC) - timedelta(seconds=clock() - sample.arrived), sample.arrived)
                first_wait = (sample.arrived - opened) * 1000.0
            at = zero[0] + timedelta(seconds=sample.offset_s)
            window.append(Frame(camera.id, seq, at, zero[1] + sample.offset_s, sample.image, source))
            seq += 1
            if len(window) > 1 and window[-1].monotonic - window[0].monotonic >= camera.window_s - TOLERANCE_S:
                connect = (opened - started) * 1000.0 if first_wait else 0.0
                yield Window(window, VisitTiming(connect, first_wait, 0.0))
                first_wait = 0.0
                started = opened = clock()
                window = [window[-1]]
    except STREAM_ERRORS as exc:
        raise grab_error(camera.id, camera.url, exc) from None
    finally:
        container.close()


@dataclass
class WatchStats:
    windows: int = 0
    reconnects: int = 0
    failures: int = 0
    health: Health = Health.unknown
    last_error: str = ""


class Observer:
    """What a watch hands each window to: the visit pipeline's `observe_frames`, and the patrol's callbacks."""

    def __init__(
        self,
        observe: Callable[[Camera, list[Frame], VisitTiming], object],
        on_health: Callable[[Camera, HealthChange], None] | None = None,
    ) -> None:
        self.observe = observe
        self.on_health = on_health


@dataclass
class ContinuousWatch:
    """The thread that holds one continuous camera's stream, reconnecting with backoff when it is lost."""

    camera: Camera
    observer: Observer
    timeouts: GrabTimeouts
    backoff_base_s: float = 2.0
    backoff_max_s: float = 60.0
    offline_after: int = 3
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)
    stats: WatchStats = field(default_factory=WatchStats)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"continuous-{self.camera.id}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _run(self) -> None:
        seq = 0
        while not self._stop.is_set():
            try:
                for window in windows(self.camera, self.timeouts, self.clock, seq):
                    seq += len(window.frames) - 1
                    self._healthy()
                    self.observer.observe(self.camera, window.frames, window.timing)
                    self.stats.windows += 1
                    if self._stop.is_set():
                        return
            except GrabError as exc:
                self._failed(str(exc))
            except Exception as exc:  # loop boundary: one camera's watch never ends on a bug; it reconnects
                logger.exception("continuous watch of camera %s failed", self.camera.id)
                self._failed(redact_text(f"{type(exc).__name__}: {exc}"))
            self.stats.reconnects += 1
            self._stop.wait(self._delay())

    def _delay(self) -> float:
        if self.stats.failures == 0:
            return 0.0  # a file that ended, or a window loop left cleanly: reconnect at once
        raw = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** (self.stats.failures - 1))
        return float(raw * self.rng.uniform(0.8, 1.2))

    def _healthy(self) -> None:
        self.stats.failures, self.stats.last_error = 0, ""
        self._set(Health.online, "")

    def _failed(self, error: str) -> None:
        self.stats.failures += 1
        self.stats.last_error = error
        logger.warning("continuous camera %s: %s", self.camera.id, error)
        self._set(Health.offline if self.stats.failures >= self.offline_after else Health.degraded, error)

    def _set(self, health: Health, error: str) -> None:
        before = self.stats.health
        if before == health:
            return
        self.stats.health = health
        if self.observer.on_health is not None:
            try:
                self.observer.on_health(self.camera, HealthChange(self.camera.id, before, health, error))
            except Exception:  # a failing observer never stops the watch
                logger.exception("health observer failed for camera %s", self.camera.id)
