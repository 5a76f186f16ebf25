"""Confirmed suppressions as the engine applies them: per (rule, camera), polygons where that rule ignores
detections. A detection whose anchor (the rule's own anchor; a box's centre for rules that test the whole box or
have no zone) lies in any of them is taken out of the frame before the rule sees it. Pure: the runtime hands the
polygons in; where they are stored is not this package's business.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon

from core.types import Detections, Observation
from rules.schema import Anchor, Point
from rules.zone import BoolArray, anchor_points

logger = logging.getLogger(__name__)

Mask = tuple[Point, ...]  # a polygon in normalised frame coordinates, as a zone's
ExclusionTable = Mapping[tuple[str, str], Sequence[Mask]]  # (rule id, camera id) -> its confirmed masks
_MAX_SIZES = 16


class Exclusion:
    """The masks of one rule on one camera. Safe to share between threads."""

    def __init__(self, masks: Sequence[Mask], anchor: Anchor) -> None:
        if not masks:
            raise ValueError("an exclusion needs at least one mask")
        self.masks = tuple(tuple(m) for m in masks)
        self.anchor: Anchor = "center" if anchor == "any_corner" else anchor
        self._shapes = [np.asarray(m, np.float64) for m in self.masks]
        self._scaled: dict[tuple[int, int], MultiPolygon] = {}
        self._lock = threading.Lock()

    def _px(self, width: int, height: int) -> MultiPolygon:
        shape = self._scaled.get((width, height))
        if shape is None:
            scale = np.array([width, height], np.float64)
            shape = MultiPolygon([Polygon(m * scale) for m in self._shapes])
            shapely.prepare(shape)
            if len(self._scaled) >= _MAX_SIZES:
                self._scaled.clear()
            self._scaled[(width, height)] = shape
        return shape

    def suppressed(self, width: int, height: int, detections: Detections) -> BoolArray:
        """Which detections have their anchor inside a mask (points on a mask's edge count as inside)."""
        if len(detections) == 0:
            return np.zeros((0,), np.bool_)
        x, y = anchor_points(detections.xyxy, self.anchor)
        with self._lock:
            inside = shapely.intersects_xy(self._px(width, height), x, y)
        return np.asarray(inside, np.bool_)

    def apply(self, obs: Observation) -> Observation:
        """The observation without the suppressed detections; the same object when none is suppressed."""
        frames, changed = [], False
        for frame in obs.frames:
            height, width = frame.image.shape[:2]
            hit = self.suppressed(width, height, frame.detections)
            if hit.any():
                changed = True
                frames.append(replace(frame, detections=frame.detections[~hit]))
            else:
                frames.append(frame)
        return replace(obs, frames=tuple(frames)) if changed else obs


def mask_from_box(x1: float, y1: float, x2: float, y2: float, width: int, height: int, pad: float = 0.1) -> Mask:
    """A rectangle mask over a box in source pixels, grown by `pad` of its size on each side, clipped to the frame."""
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    if not (x2 > x1 and y2 > y1):
        raise ValueError(f"box ({x1}, {y1}, {x2}, {y2}) is empty")
    dx, dy = (x2 - x1) * pad, (y2 - y1) * pad
    left, right = max(0.0, (x1 - dx) / width), min(1.0, (x2 + dx) / width)
    top, bottom = max(0.0, (y1 - dy) / height), min(1.0, (y2 + dy) / height)
    return ((left, top), (right, top), (right, bottom), (left, bottom))
