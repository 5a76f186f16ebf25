"""Burst visits: `frames` pictures evenly spaced over `span_s` seconds, from a keyframe on, decoding only what the
burst needs.

A burst waits for a keyframe with the decoder skipping every other frame (`skip_frame = "NONKEY"`), then has it
decode every frame (`"DEFAULT"`) for the span, and converts to BGR only the frames it samples. The sample times
are `k * span_s / (frames - 1)` seconds after the keyframe (`k = 0 .. frames - 1`: the first is the keyframe,
the last is `span_s` after it); each takes the first decoded frame at or after its time, as told by the frames'
timestamps (pts), not by when their packets arrived. A frame that is at or past several sample times stands for
all of them, so a camera too slow for the burst (or one that drops frames) gives fewer frames, never repeats.

This module reads packets it is given; opening sources, budgets' origins and errors naming the camera belong to
`ingest.grabber`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import av.error
import numpy as np
from av.packet import Packet
from av.stream import Stream
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from core.types import Image

logger = logging.getLogger(__name__)

MIN_FRAMES = 2
MAX_FRAMES = 64
MAX_SPAN_S = 30.0
TOLERANCE_S = 0.001  # a frame this close before a sample time still counts as at it (rounded timestamps)
# What a read or a decode may raise once the burst is under way: it ends the burst with the frames so far.
MID_BURST_ERRORS = (av.error.FFmpegError, OSError, EOFError)


@dataclass(frozen=True, slots=True)
class Shot:
    """One sampled picture: BGR, and its time in seconds after the burst's keyframe (from the pts)."""

    image: Image
    offset_s: float


@dataclass(frozen=True, slots=True)
class Burst:
    """What one burst read: its shots in time order, when the keyframe packet arrived (the caller's clock), the
    seconds spent decoding and converting, and why it ended short of `frames` shots ("" when it did not)."""

    shots: list[Shot]
    keyframe_arrived: float
    decode_s: float
    cut_short: str


def check_burst(frames: int, span_s: float) -> None:
    """`ValueError` unless `MIN_FRAMES <= frames <= MAX_FRAMES` and `0 < span_s <= MAX_SPAN_S`."""
    if not MIN_FRAMES <= frames <= MAX_FRAMES:
        raise ValueError(f"burst frames {frames}: expected {MIN_FRAMES}..{MAX_FRAMES}")
    if not 0 < span_s <= MAX_SPAN_S:
        raise ValueError(f"burst span {span_s!r} s: expected more than 0 and at most {MAX_SPAN_S:g}")


def sample_times(frames: int, span_s: float) -> list[float]:
    """Seconds after the keyframe at which the burst samples: `frames` times, 0 first, `span_s` last."""
    return [span_s * k / (frames - 1) for k in range(frames)]


def next_keyframe(
    packets: Iterator[Packet[Stream]], stream: VideoStream, deadline: float, clock: Callable[[], float]
) -> tuple[Packet[Stream], float]:
    """The next keyframe packet of `stream` and when it arrived; `TimeoutError` past `deadline`, `EOFError` when
    the packets end. The deadline is checked on packets of every stream, so audio or metadata cannot keep a
    visit alive while the video stalls."""
    for packet in packets:
        arrived = clock()
        if arrived > deadline:
            raise TimeoutError("no keyframe within the keyframe budget")
        if packet.stream is stream and packet.size and packet.is_keyframe:
            return packet, arrived
    raise EOFError("stream ended before a keyframe")


class _Sampler:
    """Decodes every packet it is given and keeps the frames that fall on the burst's sample times."""

    def __init__(self, stream: VideoStream, anchor: int | None, times: list[float], clock: Callable[[], float]):
        if stream.time_base is None:
            raise ValueError("the video stream has no time base")
        self._codec = stream.codec_context
        self._time_base: Fraction = stream.time_base
        self._anchor = anchor  # pts of the keyframe; the first decoded frame's when its packet had none
        self._times = times
        self._next = 0
        self._clock = clock
        self.shots: list[Shot] = []
        self.decode_s = 0.0

    @property
    def done(self) -> bool:
        return self._next >= len(self._times)

    def decode(self, packet: Packet[Stream] | None) -> None:
        """Decode `packet` (None drains the decoder at the end of the stream) and sample what comes out."""
        start = self._clock()
        for picture in self._codec.decode(packet):
            self._offer(picture)
        self.decode_s += self._clock() - start

    def _offer(self, picture: VideoFrame) -> None:
        if picture.pts is None or self.done:
            return
        if self._anchor is None:
            self._anchor = picture.pts
        offset = float((picture.pts - self._anchor) * self._time_base)
        if offset < self._times[self._next] - TOLERANCE_S:
            return  # between sample times, or before the keyframe (leading B-frames): decoded, not converted
        self.shots.append(Shot(np.asarray(picture.to_ndarray(format="bgr24"), dtype=np.uint8), offset))
        while not self.done and self._times[self._next] <= offset + TOLERANCE_S:
            self._next += 1


def read_burst(
    packets: Iterable[Packet[Stream]],
    stream: VideoStream,
    frames: int,
    span_s: float,
    deadlines: tuple[float, float],
    clock: Callable[[], float] = time.monotonic,
) -> Burst:
    """Wait for a keyframe of `stream` until `deadlines[0]`, then sample `frames` frames over `span_s` seconds
    until `deadlines[1]` (both on `clock`). Before the keyframe, errors propagate (`TimeoutError`, `EOFError`, a
    PyAV error); after it, a stall, an error or the end of the packets ends the burst with the shots so far and
    the reason in `cut_short`. The decoder is left decoding every frame: a caller that reuses it resets it."""
    iterator = iter(packets)
    keyframe, arrived = next_keyframe(iterator, stream, deadlines[0], clock)
    stream.codec_context.skip_frame = "DEFAULT"
    sampler = _Sampler(stream, keyframe.pts, sample_times(frames, span_s), clock)
    try:
        sampler.decode(keyframe)
        why = _follow(iterator, stream, sampler, deadlines[1], clock)
    except MID_BURST_ERRORS as exc:
        why = f"the stream failed mid-burst ({exc})"
    if not why and len(sampler.shots) < frames:
        why = f"the stream's frames are too far apart for {frames} frames over {span_s:g} s"
    return Burst(sampler.shots, arrived, sampler.decode_s, why)


def _follow(
    packets: Iterator[Packet[Stream]],
    stream: VideoStream,
    sampler: _Sampler,
    deadline: float,
    clock: Callable[[], float],
) -> str:
    """Feed packets to `sampler` until it is done (""), the budget runs out or the packets end (the reason)."""
    if sampler.done:
        return ""
    for packet in packets:
        if clock() > deadline:
            return "the burst budget ran out"
        if packet.stream is stream and packet.size:
            sampler.decode(packet)
            if sampler.done:
                return ""
    if not sampler.done:
        sampler.decode(None)  # the end of the stream: the decoder may still hold pictures back
    return "" if sampler.done else "the stream ended"
