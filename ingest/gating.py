"""Change gating across visits: skip inference on a keyframe visit whose picture has not changed since the
camera's last analysed frame, and carry that frame's detections forward with their age.

The comparison works on a small grey thumbnail (`THUMB_SIZE`, from the 320x240 working image the video-quality
checks use), blurred a little and normalised for global brightness and contrast (mean and standard deviation), so
sensor noise, compression artefacts, slow light changes and auto-exposure do not count. The change score is the
largest mean absolute difference of the two normalised thumbnails over any 2x2 window (in units of the picture's
own contrast): a person walking in or a car parking moves a few thumbnail pixels far, noise moves all of them a
little. Measured on the shared footage in docs/benchmarks.md (`## Change gating`).

Per camera the gate keeps the last analysed thumbnail (7 KB), its detections and when it was taken. At least one
visit in every `every_k` is analysed, and detections older than `max_age_s` are never carried.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime

import cv2
import numpy as np
from numpy.typing import NDArray

from core.settings import GatingSettings
from core.types import Detections, Image
from rules.quality import work_image

logger = logging.getLogger(__name__)

F32 = NDArray[np.float32]
THUMB_SIZE = (96, 72)  # width, height: 7 KB a camera
BLUR_SIGMA = 1.0  # thumbnail pixels: noise and JPEG blocks average out, a person still moves 2x2 pixels
WINDOW = 2  # side of the window the difference is averaged over
CONTRAST_EPS = 1.0  # grey levels added to the standard deviation, so a flat picture does not blow up


def thumbnail(image: Image) -> NDArray[np.uint8]:
    """The grey `THUMB_SIZE` thumbnail of a BGR (or grey) frame, by way of the video-quality working image."""
    return np.asarray(cv2.resize(work_image(image), THUMB_SIZE, interpolation=cv2.INTER_AREA), np.uint8)


def normalised(thumb: NDArray[np.uint8]) -> F32:
    """The thumbnail blurred by `BLUR_SIGMA`, less its mean, over its standard deviation."""
    t = np.asarray(cv2.GaussianBlur(thumb.astype(np.float32), (0, 0), BLUR_SIGMA), np.float32)
    out: F32 = ((t - t.mean()) / (float(t.std()) + CONTRAST_EPS)).astype(np.float32)
    return out


def change_score(before: NDArray[np.uint8], after: NDArray[np.uint8]) -> float:
    """How much the picture changed between two thumbnails: the largest mean absolute difference of their
    normalised forms over a `WINDOW` x `WINDOW` window. 0 for the same picture; about 0.02-0.2 for noise,
    recompression and light changes, 0.35 and up for a person walking in (see docs/benchmarks.md)."""
    diff = np.abs(normalised(before) - normalised(after))
    return float(cv2.blur(diff, (WINDOW, WINDOW)).max())


@dataclass(frozen=True, slots=True)
class GateDecision:
    """Whether to analyse a visit's frame. `carry` holds the detections to reuse when it is skipped, `age_s` how
    much older they are than the frame, `score` the change score (None: nothing to compare with) and `why` the
    reason a frame is analysed ("changed", "first", "every_k", "max_age", "size", "off")."""

    analyse: bool
    why: str
    score: float | None = None
    carry: Detections | None = None
    age_s: float = 0.0
    thumb: NDArray[np.uint8] | None = None


@dataclass(slots=True)
class _Last:
    thumb: NDArray[np.uint8]
    detections: Detections
    at: datetime
    shape: tuple[int, ...]
    skipped: int = 0  # visits carried since this frame was analysed


class ChangeGate:
    """Per-camera change gating. `decide` before inference, then `analysed` after a frame was analysed or
    `skipped` after a visit was carried. A camera is visited by one worker at a time; the lock guards the table."""

    def __init__(self, settings: GatingSettings | None = None) -> None:
        self.settings = settings if settings is not None else GatingSettings()
        self._last: dict[str, _Last] = {}
        self._policies: dict[str, GatingSettings] = {}
        self._lock = threading.Lock()

    def policy(self, camera_id: str) -> GatingSettings:
        found = self._policies.get(camera_id)
        if found is None:
            found = self._policies[camera_id] = self.settings.for_camera(camera_id)
        return found

    def decide(self, camera_id: str, image: Image, at: datetime) -> GateDecision:
        policy = self.policy(camera_id)
        if not policy.enabled:
            return GateDecision(True, "off")
        thumb = thumbnail(image)
        with self._lock:
            last = self._last.get(camera_id)
        if last is None:
            return GateDecision(True, "first", thumb=thumb)
        if last.shape != image.shape:
            return GateDecision(True, "size", thumb=thumb)
        age = (at - last.at).total_seconds()
        if last.skipped + 1 >= policy.every_k:
            return GateDecision(True, "every_k", thumb=thumb)
        if age > policy.max_age_s or age < 0:
            return GateDecision(True, "max_age", thumb=thumb)
        score = change_score(last.thumb, thumb)
        if score > policy.threshold:
            return GateDecision(True, "changed", score, thumb=thumb)
        return GateDecision(False, "unchanged", score, last.detections, age, thumb)

    def analysed(
        self, camera_id: str, decision: GateDecision, image: Image, detections: Detections, at: datetime
    ) -> None:
        """The frame behind `decision` was analysed: it becomes the camera's reference."""
        if decision.thumb is None:
            return
        with self._lock:
            self._last[camera_id] = _Last(decision.thumb, detections, at, image.shape)

    def skipped(self, camera_id: str) -> None:
        """A visit of the camera carried its last detections."""
        with self._lock:
            last = self._last.get(camera_id)
            if last is not None:
                last.skipped += 1

    def forget(self, camera_id: str) -> None:
        """Drop what the gate keeps of a camera (removed, or its view is known to have changed)."""
        with self._lock:
            self._last.pop(camera_id, None)
            self._policies.pop(camera_id, None)
