"""How far an int8 model's detections agree with its fp32 model's, on real frames.

fp32 boxes matched by an int8 box of the same class at IoU >= 0.5 (greedy, one-to-one), fp32 boxes missed (and
how many of those int8 scores just below the confidence threshold), int8 boxes extra.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.errors import ModelError
from core.types import Detections, Image
from detectors.detector import Detector
from detectors.nms import iou
from detectors.session import create_session
from gridwatch.modelstore import resolve_model

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
MATCH_IOU = 0.5
CONF = 0.35  # the detector's default confidence threshold, at which the agreement is judged
NEAR_MARGIN = 0.1  # a missed box int8 scores within this below CONF counts as "just below the threshold"


def _video_frames(path: Path, count: int, step: int) -> Iterator[Image]:
    capture = cv2.VideoCapture(str(path))
    try:
        index = 0
        yielded = 0
        while yielded < count:
            ok, frame = capture.read()
            if not ok:
                return
            if index % step == 0:
                yielded += 1
                yield np.asarray(frame, dtype=np.uint8)
            index += 1
    finally:
        capture.release()


def read_frames(source: Path, count: int, step: int = 10) -> list[Image]:
    """Up to `count` BGR frames: the images of a directory (sorted), or every `step`-th frame of a video."""
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:count]
        frames = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in files]
        images = [np.asarray(f, dtype=np.uint8) for f in frames if f is not None]
    elif source.is_file():
        images = list(_video_frames(source, count, step))
    else:
        raise ModelError(f"{source}: calibration source missing (a directory of images or a video file)")
    if not images:
        raise ModelError(f"{source}: no readable frames for calibration")
    return images


@dataclass(frozen=True, slots=True)
class Agreement:
    """fp32 boxes matched by an int8 box of the same class at IoU >= 0.5, fp32 boxes missed, int8 boxes extra."""

    frames: int
    reference: int
    matched: int
    missed: int
    extra: int
    near: int | None = None  # of the missed: found by int8 with a score less than NEAR_MARGIN below the threshold

    @property
    def match_rate(self) -> float:
        return self.matched / self.reference if self.reference else 1.0

    def summary(self) -> str:
        near = "" if self.near is None else f" ({self.near} of them just below the threshold in int8)"
        return (
            f"{self.frames} frames, {self.reference} fp32 boxes: {self.matched} matched "
            f"({self.match_rate:.1%}), {self.missed} missed{near}, {self.extra} extra (IoU >= {MATCH_IOU}, same class)"
        )


def match_count(reference: Detections, candidate: Detections, min_iou: float = MATCH_IOU) -> int:
    """Greedy one-to-one matching, best IoU first, same class only."""
    if not len(reference) or not len(candidate):
        return 0
    overlap = iou(reference.xyxy, candidate.xyxy)
    overlap[reference.class_id[:, None] != candidate.class_id[None, :]] = 0
    matched = 0
    while True:
        r, c = np.unravel_index(int(np.argmax(overlap)), overlap.shape)
        if overlap[r, c] < min_iou:
            return matched
        matched += 1
        overlap[r, :] = 0
        overlap[:, c] = 0


def agreement(
    reference: Detector, candidate: Detector, images: Sequence[Image], below: Detector | None = None
) -> Agreement:
    """How well `candidate` (int8) reproduces `reference` (fp32) on `images`. With `below` (the int8 model at
    a lower confidence threshold), also how many missed boxes int8 found with a score just under the bar."""
    total = matched = extra = near = 0
    for image in images:
        want, got = reference.detect(image), candidate.detect(image)
        hits = match_count(want, got)
        total += len(want)
        matched += hits
        extra += len(got) - hits
        if below is not None:
            near += max(match_count(want, below.detect(image)) - hits, 0)
    return Agreement(len(images), total, matched, total - matched, extra, near if below is not None else None)


def agreement_report(models_dir: Path, fp32_name: str, int8_name: str, footage: Path, frames: int = 50) -> str:
    """Agreement of `int8_name` with `fp32_name` on `frames` frames of `footage`, in one line."""
    detectors = []
    for name in (fp32_name, int8_name):
        manifest, weights = resolve_model(models_dir, name)
        detectors.append(Detector(create_session(weights), manifest, conf_threshold=CONF))
    below = detectors[1].with_conf_threshold(CONF - NEAR_MARGIN)
    result = agreement(detectors[0], detectors[1], read_frames(footage, frames, step=15), below)
    return f"agreement of {int8_name} with {fp32_name} on {footage.name}: {result.summary()}"
