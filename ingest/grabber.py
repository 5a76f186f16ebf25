"""Grab one keyframe per visit, or a burst of frames (`ingest.burst`), from RTSP cameras (PyAV, tuned open
options, hard timeouts) or from files that behave like cameras (looping, paced in real time).

Every failure raises `GrabError` naming the camera id and the sanitised source; credentials never appear in
a message, a log line or `Frame.source`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from urllib.parse import unquote, urlsplit

import av
import av.error
import numpy as np
from av.container import InputContainer
from av.packet import Packet
from av.stream import Stream
from av.video.stream import VideoStream

from core.errors import GrabError
from core.redact import redact_text, sanitize_url
from core.types import Frame, Image
from ingest.burst import Burst, check_burst, next_keyframe, read_burst

logger = logging.getLogger(__name__)

NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "http", "https"})
RTSP_SCHEMES = frozenset({"rtsp", "rtsps"})
# What PyAV and FFmpeg raise on a failed open, read or decode (av.error.* subclass OSError for errno codes).
AV_ERRORS = (av.error.FFmpegError, OSError, EOFError)
STREAM_ERRORS = (*AV_ERRORS, TimeoutError)
FILE_ERRORS = (*AV_ERRORS, ValueError)
# The smallest probe FFmpeg allows. The stream description (SDP) already gives the codec and its parameters;
# a larger probe (32 KB) only moves the keyframe wait into the open (the H.264 probe waits for 7 decoded
# frames), so `connect` would hide it. The visit's total wall time is the same either way (measured).
PROBESIZE = "32"


@dataclass(frozen=True, slots=True)
class GrabTimeouts:
    """Seconds: `open_s` to connect and read the stream description, `read_s` for any single read,
    `keyframe_s` the whole budget from open to a decoded keyframe (checked as packets of any stream arrive,
    so a camera whose video stalls while audio or metadata flows, or a silent one, is given up after at most
    `keyframe_s + read_s`). A burst of `span_s` seconds has `keyframe_s + span_s` from open to its last frame,
    checked the same way."""

    open_s: float = 5.0
    read_s: float = 5.0
    keyframe_s: float = 10.0


@dataclass(frozen=True, slots=True)
class VisitTiming:
    """Milliseconds spent by one visit: `connect` (open and stream description), `first_keyframe` (from open
    to the keyframe packet), `decode` (decode and BGR conversion: of the keyframe; for a burst, of every frame),
    `span` (a burst only: the rest of the time from the keyframe packet to the burst's end, mostly waiting for
    a live camera's frames)."""

    connect: float
    first_keyframe: float
    decode: float
    span: float = 0.0

    @property
    def total(self) -> float:
        return self.connect + self.first_keyframe + self.decode + self.span


def _ms(start: float, end: float) -> float:
    return (end - start) * 1000.0


def grab_error(camera_id: str, url: str, cause: object) -> GrabError:
    """A `GrabError` naming the camera and the sanitised source, with the cause's text redacted."""
    password = urlsplit(url).password if "://" in url else None
    secrets = tuple(s for s in {password, unquote(password)} if s) if password else ()
    detail = redact_text(str(cause) or type(cause).__name__, secrets)
    return GrabError(f"camera {camera_id} ({sanitize_url(url)}): {detail}")


def decode_keyframe(stream: VideoStream, packet: Packet[Stream]) -> Image | None:
    """Decode one keyframe packet to BGR; flush the decoder if it holds the picture back."""
    codec = stream.codec_context
    frames = codec.decode(packet)
    if not frames:
        frames = codec.decode(None)
    if not frames:
        return None
    return np.asarray(frames[0].to_ndarray(format="bgr24"), dtype=np.uint8)


def _prepare_decoder(stream: VideoStream) -> None:
    codec = stream.codec_context
    codec.skip_frame = "NONKEY"
    codec.thread_count = 1  # one keyframe per visit: thread start-up costs more than it saves


def _network_options(scheme: str, timeouts: GrabTimeouts) -> dict[str, str]:
    options = {"probesize": PROBESIZE, "analyzeduration": "0"}
    if scheme in RTSP_SCHEMES:
        # FFmpeg >= 5: `timeout` is the RTSP socket I/O timeout in microseconds (`stimeout` is gone).
        options |= {"rtsp_transport": "tcp", "timeout": str(int(timeouts.read_s * 1_000_000))}
    return options


def _first_keyframe(
    packets: Iterable[Packet[Stream]], stream: VideoStream, deadline: float, clock: Callable[[], float] = time.monotonic
) -> tuple[Image, float, float]:
    """(image, when the keyframe packet arrived, when it was decoded); `TimeoutError` past `deadline`.

    `packets` may come from every stream of the container: the deadline is checked on each one, so packets of
    other streams (audio, metadata) cannot keep a visit alive while the video stalls; they are skipped."""
    iterator = iter(packets)
    while True:
        packet, arrived = next_keyframe(iterator, stream, deadline, clock)
        image = decode_keyframe(stream, packet)
        if image is not None:
            return image, arrived, clock()


def grab_stream(
    url: str, camera_id: str, seq: int, timeouts: GrabTimeouts, *, clock: Callable[[], float] = time.monotonic
) -> tuple[Frame, VisitTiming]:
    """Connect to a network camera, wait for the next keyframe, decode it to BGR, disconnect. `clock` (monotonic
    seconds) measures the keyframe budget and the timings; FFmpeg's own open and read timeouts use real time."""
    started = clock()
    container = open_network(url, camera_id, timeouts, started, clock)
    try:
        opened = clock()
        stream = _video_stream(container, camera_id, url)
        # every stream: the keyframe budget must be checked even when only audio or metadata packets arrive
        image, arrived, decoded = _first_keyframe(container.demux(), stream, started + timeouts.keyframe_s, clock)
    except STREAM_ERRORS as exc:
        raise _logged(grab_error(camera_id, url, exc)) from None
    finally:
        container.close()
    frame = Frame(camera_id, seq, datetime.now(UTC), arrived, image, sanitize_url(url))
    return frame, _timing(frame, started, opened, arrived, decoded)


def open_network(
    url: str, camera_id: str, timeouts: GrabTimeouts, started: float, clock: Callable[[], float]
) -> InputContainer:
    try:
        return av.open(
            url,
            options=_network_options(urlsplit(url).scheme.lower(), timeouts),
            timeout=(timeouts.open_s, timeouts.read_s),
        )
    except AV_ERRORS as exc:
        waited = clock() - started
        # PyAV's interrupt callback makes FFmpeg fail with whatever error the step it stopped reports
        cause = f"no answer within {timeouts.open_s:g} s ({exc})" if waited >= timeouts.open_s else exc
        raise _logged(grab_error(camera_id, url, cause)) from None


def _video_stream(container: InputContainer, camera_id: str, url: str) -> VideoStream:
    """The first video stream, its decoder set to keyframes only."""
    if not container.streams.video:
        raise _logged(grab_error(camera_id, url, "no video stream"))
    stream = container.streams.video[0]
    _prepare_decoder(stream)
    return stream


def grab_burst_stream(
    url: str,
    camera_id: str,
    seq: int,
    frames: int,
    span_s: float,
    timeouts: GrabTimeouts,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[list[Frame], VisitTiming]:
    """Connect to a network camera, wait for the next keyframe, sample `frames` frames over the next `span_s`
    seconds (`ingest.burst`), disconnect. Budgets: `keyframe_s` to the keyframe and `keyframe_s + span_s` to the
    burst's end, from open (a read that stalls is cut by FFmpeg after `read_s`). See `burst_frames` for what a
    burst cut short returns, and for the frames' times and sequence numbers."""
    started = clock()
    container = open_network(url, camera_id, timeouts, started, clock)
    try:
        opened = clock()
        stream = _video_stream(container, camera_id, url)
        deadlines = (started + timeouts.keyframe_s, started + timeouts.keyframe_s + span_s)
        burst = read_burst(container.demux(), stream, frames, span_s, deadlines, clock)
    except (*STREAM_ERRORS, ValueError) as exc:
        raise _logged(grab_error(camera_id, url, exc)) from None
    finally:
        container.close()
    ended = clock()
    # the keyframe's wall time, as far back from now as it is on the monotonic clock
    wall = datetime.now(UTC) - timedelta(seconds=ended - burst.keyframe_arrived)
    shot_frames = burst_frames(burst, camera_id, url, seq, frames, (burst.keyframe_arrived, wall))
    return shot_frames, _burst_timing(camera_id, burst, (started, opened, ended))


def burst_frames(
    burst: Burst, camera_id: str, url: str, seq: int, frames: int, keyframe_time: tuple[float, datetime]
) -> list[Frame]:
    """The burst's shots as Frames, numbered `seq, seq + 1, ...` (one number per frame returned: a caller that
    numbers its visits goes on at `seq + len(frames)`). `keyframe_time` is the keyframe's (monotonic, UTC)
    time; each frame's is that plus its offset from the keyframe's pts. A burst cut short (stalled, ended,
    out of budget, or too few frames on the camera) returns what it got if that is at least half of `frames`,
    else raises `GrabError` with the reason."""
    got = len(burst.shots)
    if burst.cut_short:
        error = grab_error(camera_id, url, f"burst got {got} of {frames} frames: {burst.cut_short}")
        if 2 * got < frames:
            raise _logged(error)
        logger.debug("burst cut short, kept: %s", error)
    monotonic, wall = keyframe_time
    source = sanitize_url(url)
    return [
        Frame(camera_id, seq + i, wall + timedelta(seconds=s.offset_s), monotonic + s.offset_s, s.image, source)
        for i, s in enumerate(burst.shots)
    ]


def _burst_timing(camera_id: str, burst: Burst, marks: tuple[float, float, float]) -> VisitTiming:
    started, opened, ended = marks
    decode = burst.decode_s * 1000.0
    timing = VisitTiming(
        _ms(started, opened),
        _ms(opened, burst.keyframe_arrived),
        decode,
        max(0.0, _ms(burst.keyframe_arrived, ended) - decode),
    )
    logger.debug(
        "camera %s: burst of %d frames, connect %.1f ms, keyframe wait %.1f ms, decode %.1f ms, span %.1f ms",
        camera_id,
        len(burst.shots),
        timing.connect,
        timing.first_keyframe,
        timing.decode,
        timing.span,
    )
    return timing


def _logged(error: GrabError) -> GrabError:
    logger.debug("grab failed: %s", error)
    return error


def _timing(frame: Frame, started: float, opened: float, arrived: float, decoded: float) -> VisitTiming:
    timing = VisitTiming(_ms(started, opened), _ms(opened, arrived), _ms(arrived, decoded))
    logger.debug(
        "camera %s (%s): keyframe %dx%d, connect %.1f ms, keyframe wait %.1f ms, decode %.1f ms",
        frame.camera_id,
        frame.source,
        frame.width,
        frame.height,
        timing.connect,
        timing.first_keyframe,
        timing.decode,
    )
    return timing


def file_path(url: str) -> Path | None:
    """The local path of a `file://` URL or a plain path; None for any other scheme."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(unquote(parts.netloc + parts.path))
    if parts.scheme == "":
        return Path(parts.path)
    return None


def file_start_offset(url: str) -> float:
    """The media-fragment start `#t=SECONDS` of a file camera (0 without one): where its clock starts, so several
    demo cameras over one file show different moments. Negative starts count as 0; `ValueError` for a start
    that is not a finite number."""
    fragment = urlsplit(url).fragment
    for part in fragment.split("&"):
        key, _, value = part.partition("=")
        if key == "t":
            try:
                start = float(value.split(",")[0])
            except ValueError:
                start = math.nan
            if not math.isfinite(start):
                raise ValueError(f"file camera start {fragment!r}: expected #t=SECONDS")
            return max(0.0, start)
    return 0.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class FileCamera:
    """A video file that behaves like a live camera: it loops, and a visit at monotonic time `now` gets the
    keyframe at or before position `(now - t0) mod duration`. Holds the file open between visits; a lock
    makes concurrent visits of the same camera take turns. `wall` gives the frames' capture times (UTC; a
    simulated patrol passes its own clock)."""

    def __init__(
        self, camera_id: str, path: Path, *, t0: float | None = None, wall: Callable[[], datetime] = utc_now
    ) -> None:
        self.camera_id = camera_id
        self.path = path
        self.url = path.resolve().as_uri()
        self.t0 = time.monotonic() if t0 is None else t0
        self.wall = wall
        self._lock = threading.Lock()
        self._container: InputContainer | None = None
        self._keyframes: list[int] = []  # pts of every keyframe, in stream time base, ascending
        self._duration = 0  # pts units
        self._time_base = Fraction(0)  # seconds per pts unit

    def grab(self, seq: int, *, now: float | None = None) -> tuple[Frame, VisitTiming]:
        """The keyframe live at monotonic time `now` (default: the present)."""
        with self._lock:
            try:
                return self._grab(seq, time.monotonic() if now is None else now)
            except FILE_ERRORS as exc:
                self._close()
                raise _logged(grab_error(self.camera_id, self.url, exc)) from None

    def grab_burst(
        self, seq: int, frames: int, span_s: float, *, now: float | None = None
    ) -> tuple[list[Frame], VisitTiming]:
        """The burst a live camera would have shown over the `span_s` seconds before monotonic time `now`
        (default: the present), returned at once: `frames` frames sampled over `span_s` seconds from the
        keyframe at or before position `- span_s` (`ingest.burst`). Near the start of a loop, where that lies
        before the file's start, the burst starts at the file's start instead (clamped, not wrapped), and its
        last frame is taken as live at `now`. A frame's capture time is `wall()` minus its age, its monotonic
        time `now` minus its age; numbering and short bursts as `burst_frames`."""
        check_burst(frames, span_s)
        with self._lock:
            try:
                return self._grab_burst(seq, frames, span_s, time.monotonic() if now is None else now)
            except FILE_ERRORS as exc:
                self._close()
                raise _logged(grab_error(self.camera_id, self.url, exc)) from None

    def keyframe_at(self, now: float) -> int:
        """The pts (stream time base) of the keyframe at or before the live position at monotonic `now`."""
        with self._lock:
            try:
                return self._keyframe_at(now)
            except FILE_ERRORS as exc:
                self._close()
                raise _logged(grab_error(self.camera_id, self.url, exc)) from None

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def _grab(self, seq: int, now: float) -> tuple[Frame, VisitTiming]:
        started = time.monotonic()
        container = self._container or self._open()
        opened = time.monotonic()
        stream = container.streams.video[0]
        target = self._keyframe_at(now)
        container.seek(target, stream=stream, backward=True, any_frame=False)
        stream.codec_context.flush_buffers()
        image, arrived, decoded = _first_keyframe(container.demux(), stream, float("inf"))
        frame = Frame(self.camera_id, seq, self.wall(), arrived, image, self.url)
        return frame, _timing(frame, started, opened, arrived, decoded)

    def _grab_burst(self, seq: int, frames: int, span_s: float, now: float) -> tuple[list[Frame], VisitTiming]:
        started = time.monotonic()
        container = self._container or self._open()
        opened = time.monotonic()
        stream = container.streams.video[0]
        position = self._position(now)
        anchor = self._keyframe_before(max(self._keyframes[0], position - int(Fraction(span_s) / self._time_base)))
        container.seek(anchor, stream=stream, backward=True, any_frame=False)
        stream.codec_context.flush_buffers()
        try:
            burst = read_burst(container.demux(), stream, frames, span_s, (math.inf, math.inf))
        finally:
            stream.codec_context.skip_frame = "NONKEY"  # the next keyframe visit reuses this decoder
        ended = time.monotonic()
        # seconds from the keyframe to the live position, or to the last frame where the burst was clamped
        last_s = burst.shots[-1].offset_s if burst.shots else 0.0
        live_s = max(float((position - anchor) * self._time_base), last_s)
        keyframe_time = (now - live_s, self.wall() - timedelta(seconds=live_s))
        shot_frames = burst_frames(burst, self.camera_id, self.url, seq, frames, keyframe_time)
        return shot_frames, _burst_timing(self.camera_id, burst, (started, opened, ended))

    def _keyframe_at(self, now: float) -> int:
        return self._keyframe_before(self._position(now))

    def _position(self, now: float) -> int:
        """The live position at monotonic `now`, in pts (stream time base)."""
        if not self._keyframes:
            self._open()
        # exact arithmetic: a float quotient overflows to inf for a far-off start (`#t=1e308`)
        return int(Fraction(now - self.t0) / self._time_base) % self._duration + self._keyframes[0]

    def _keyframe_before(self, position: int) -> int:
        index = max(0, bisect_right(self._keyframes, position) - 1)
        return self._keyframes[index]

    def _open(self) -> InputContainer:
        if not self.path.is_file():
            raise FileNotFoundError(f"no such file: {self.path}")
        container = av.open(str(self.path))
        try:
            if not container.streams.video:
                raise ValueError("no video stream")
            stream = container.streams.video[0]
            _prepare_decoder(stream)
            if not self._keyframes:
                self._index(container, stream)
        except BaseException:
            container.close()  # each failed visit would otherwise hold an FFmpeg context and a descriptor
            raise
        self._container = container
        return container

    def _index(self, container: InputContainer, stream: VideoStream) -> None:
        keyframes: list[int] = []
        end = 0
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            end = max(end, packet.pts + max(packet.duration or 0, 1))
            if packet.is_keyframe:
                keyframes.append(packet.pts)
        if not keyframes or stream.time_base is None:
            raise ValueError("no keyframe in the file")
        keyframes.sort()
        self._keyframes = keyframes
        self._duration = end - keyframes[0]
        self._time_base = stream.time_base
        seconds = float(self._duration * self._time_base)
        logger.debug("file camera %s: %d keyframes over %.1f s", self.camera_id, len(keyframes), seconds)


class Grabber:
    """What the patrol calls: one grab or burst per visit, dispatching on the source's scheme. File cameras stay
    open between visits, one per camera id, their capture times from `wall`; different cameras may be grabbed
    from different threads at once."""

    def __init__(self, timeouts: GrabTimeouts | None = None, *, wall: Callable[[], datetime] = utc_now) -> None:
        self.timeouts = timeouts or GrabTimeouts()
        self.wall = wall
        self._files: dict[str, FileCamera] = {}
        self._files_lock = threading.Lock()

    def grab(self, camera_id: str, url: str, seq: int) -> tuple[Frame, VisitTiming]:
        """One keyframe."""
        file_camera = self._file_for(camera_id, url)
        if file_camera is not None:
            return file_camera.grab(seq)
        _check_network(camera_id, url)
        return grab_stream(url, camera_id, seq, self.timeouts)

    def grab_burst(
        self, camera_id: str, url: str, seq: int, frames: int, span_s: float
    ) -> tuple[list[Frame], VisitTiming]:
        """`frames` frames evenly spaced over `span_s` seconds, the first at a keyframe, numbered from `seq`
        (`grab_burst_stream`, `FileCamera.grab_burst`). `ValueError` for a burst outside 2..64 frames or
        (0, 30] seconds; `GrabError` for a camera that fails or gives fewer than half of `frames`."""
        check_burst(frames, span_s)
        file_camera = self._file_for(camera_id, url)
        if file_camera is not None:
            return file_camera.grab_burst(seq, frames, span_s)
        _check_network(camera_id, url)
        return grab_burst_stream(url, camera_id, seq, frames, span_s, self.timeouts)

    def close(self) -> None:
        with self._files_lock:
            cameras, self._files = list(self._files.values()), {}
        for camera in cameras:
            camera.close()

    def _file_for(self, camera_id: str, url: str) -> FileCamera | None:
        """The file camera behind `url`, opened on first use; None for a network source."""
        path = file_path(url)
        if path is None:
            return None
        try:
            offset_s = file_start_offset(url)
        except ValueError as exc:
            raise _logged(grab_error(camera_id, url, exc)) from None
        return self._file_camera(camera_id, path, offset_s)

    def _file_camera(self, camera_id: str, path: Path, offset_s: float) -> FileCamera:
        with self._files_lock:
            camera = self._files.get(camera_id)
            if camera is None or camera.path != path:
                if camera is not None:
                    camera.close()
                t0 = time.monotonic() - offset_s
                camera = self._files[camera_id] = FileCamera(camera_id, path, t0=t0, wall=self.wall)
            return camera


def _check_network(camera_id: str, url: str) -> None:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in NETWORK_SCHEMES:
        raise _logged(grab_error(camera_id, url, f"unsupported scheme {scheme!r}"))


_shared = Grabber()


def grab_keyframe(url: str, camera_id: str, seq: int, timeouts: GrabTimeouts) -> tuple[Frame, VisitTiming]:
    """One keyframe from `url`: a network camera, or a file that behaves like one (its live position counts
    from this process's first grab of that camera id)."""
    if file_path(url) is not None:
        return _shared.grab(camera_id, url, seq)
    return Grabber(timeouts).grab(camera_id, url, seq)
