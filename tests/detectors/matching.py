"""Box-by-box comparison of two detectors' outputs, for the reference-decoding agreement tests."""

from __future__ import annotations

import numpy as np

from core.types import Detections

PIXELS = 1.0  # a box edge may differ by this much from its reference
SCORE = 0.01  # and its score by this much


def unpaired(some: Detections, other: Detections, cap: int | None = None) -> list[int]:
    """Boxes of `some` with no box in `other` of the same class within PIXELS on every edge and SCORE in
    score. When `some` holds `cap` boxes (a max-detections cut-off), near-ties in score may legitimately swap
    places at the cut, so boxes within SCORE of the lowest score are skipped."""
    close = (
        (np.abs(some.xyxy[:, None, :] - other.xyxy[None, :, :]).max(axis=2, initial=0.0) <= PIXELS)
        & (np.abs(some.confidence[:, None] - other.confidence[None, :]) <= SCORE)
        & (some.class_id[:, None] == other.class_id[None, :])
    )
    capped = cap is not None and len(some) == cap
    floor = min(some.confidence.min(), other.confidence.min()) + SCORE if capped else -1.0
    return [i for i in range(len(some)) if not close[i].any() and some.confidence[i] > floor]


def assert_same_detections(want: Detections, got: Detections, cap: int | None = None) -> None:
    """As many boxes, and every box of each side paired with one of the other (see `unpaired`)."""
    assert len(got) == len(want)
    assert unpaired(want, got, cap) == [] and unpaired(got, want, cap) == []
