"""Pictures of a static scene built from the shared footage, for change gating: the empty walkway (the median
of frames spread over the clip, which removes the passers-by and keeps the parked van and car), renditions of it
as a camera would give them on later visits (sensor noise, JPEG recompression, light changes, night), and the
scene with real objects of the footage pasted in (a person walking in, a vehicle parking)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from core.types import Image

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels
VAN = (651, 41, 724, 99)  # the white van parked at the top right of the footage


def read_frames(footage: Path, every: int = 1, count: int | None = None) -> list[Image]:
    """Every `every`-th frame of a clip, at most `count` of them."""
    capture = cv2.VideoCapture(str(footage))
    frames: list[Image] = []
    index = 0
    try:
        while count is None or len(frames) < count:
            ok, frame = capture.read()
            if not ok:
                break
            if index % every == 0:
                frames.append(np.asarray(frame, np.uint8))
            index += 1
    finally:
        capture.release()
    return frames


def empty_scene(frames: Sequence[Image]) -> Image:
    """The per-pixel median of `frames`: the scene without the people passing through it."""
    return np.asarray(np.median(np.stack(frames), axis=0), np.uint8)


def noisy(image: Image, sigma: float, rng: np.random.Generator) -> Image:
    """Gaussian sensor noise of `sigma` grey levels."""
    return np.asarray(np.clip(image + rng.normal(0.0, sigma, image.shape), 0, 255), np.uint8)


def recompressed(image: Image, quality: int) -> Image:
    """The picture after a JPEG round trip at `quality`."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return np.asarray(cv2.imdecode(data, cv2.IMREAD_COLOR), np.uint8)


def lit(image: Image, gain: float, offset: float = 0.0) -> Image:
    """The picture `gain` times as bright, plus `offset` grey levels (dusk, a cloud, auto-exposure)."""
    return np.asarray(np.clip(image.astype(np.float32) * gain + offset, 0, 255), np.uint8)


def night(image: Image, rng: np.random.Generator, gain: float = 0.35) -> Image:
    """A night rendition: dark, noisy and heavily compressed."""
    return recompressed(noisy(lit(image, gain), 5.0, rng), 50)


def pasted(scene: Image, source: Image, box: Box, at: tuple[int, int] | None = None, pad: int = 3) -> Image:
    """`scene` with the pixels of `box` (grown by `pad`) of `source` copied in, at the same place or at `at`
    (top-left corner)."""
    h, w = source.shape[:2]
    x1, y1 = max(box[0] - pad, 0), max(box[1] - pad, 0)
    x2, y2 = min(box[2] + pad, w), min(box[3] + pad, h)
    ax, ay = (x1, y1) if at is None else at
    out = scene.copy()
    out[ay : ay + y2 - y1, ax : ax + x2 - x1] = source[y1:y2, x1:x2]
    return out
