"""Zone geometry shared by the zone kinds: which detections are of the watched classes and in the zone,
vectorised over a frame.

Points exactly on the zone's edge count as inside. The zone polygon is scaled to pixels once per frame size.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import Polygon

from core.types import Detections, FloatArray, IntArray, Overlay
from rules.schema import Anchor, ZoneFilter

logger = logging.getLogger(__name__)

BoolArray = NDArray[np.bool_]
_MAX_SIZES = 16  # frame sizes kept per zone; cameras come in a handful of resolutions


def anchor_points(xyxy: FloatArray, anchor: Anchor) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The (x, y) arrays of each box's anchor point; `any_corner` has none (the whole box is tested)."""
    boxes = xyxy.astype(np.float64, copy=False)
    x = (boxes[:, 0] + boxes[:, 2]) / 2.0
    if anchor == "bottom_center":
        return x, boxes[:, 3]
    if anchor == "top_center":
        return x, boxes[:, 1]
    if anchor == "center":
        return x, (boxes[:, 1] + boxes[:, 3]) / 2.0
    raise ValueError(f"anchor {anchor!r} has no single point")


class ZoneMatcher:
    """A rule's zone and detection filter bound to a model's labels. Safe to share between threads."""

    def __init__(self, rule: ZoneFilter, class_ids: Sequence[int], labels: Sequence[str]) -> None:
        """`class_ids[i]` is the label index of `rule.classes[i]`."""
        if len(class_ids) != len(rule.classes):
            raise ValueError(f"zone {rule.zone.name!r} has {len(rule.classes)} classes, got {len(class_ids)} ids")
        self.rule = rule
        ids = np.asarray(class_ids, np.int64)
        # a lookup table by class id: one gather per frame instead of np.isin's sort
        self._wanted = np.zeros(max(len(labels), int(ids.max(initial=-1)) + 1, 1), np.bool_)
        self._wanted[ids] = True
        self._rank = {int(c): i for i, c in reversed(list(enumerate(class_ids)))}
        self._labels = tuple(labels)
        self._polygon = np.asarray(rule.zone.polygon, np.float64)
        self.overlay = Overlay(polygons=(tuple(rule.zone.polygon),))
        self._scaled: dict[tuple[int, int], Polygon] = {}
        self._lock = threading.Lock()  # GEOS prepared geometries are not documented as safe to share

    def _zone_px(self, width: int, height: int) -> Polygon:
        zone = self._scaled.get((width, height))
        if zone is None:
            zone = Polygon(self._polygon * np.array([width, height], np.float64))
            shapely.prepare(zone)
            if len(self._scaled) >= _MAX_SIZES:
                self._scaled.clear()
            self._scaled[(width, height)] = zone
        return zone

    def candidates(self, width: int, height: int, detections: Detections) -> BoolArray:
        """Detections of the rule's classes with enough confidence and area, wherever they are."""
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        rule = self.rule
        class_id = detections.class_id
        known = (class_id >= 0) & (class_id < len(self._wanted))
        mask: BoolArray = known & self._wanted[np.where(known, class_id, 0)]
        mask &= detections.confidence >= rule.min_confidence
        if rule.min_area > 0.0:
            mask &= detections.area >= rule.min_area * float(width * height)
        return mask

    def in_zone(self, width: int, height: int, detections: Detections) -> BoolArray:
        """Which detections are in the zone by the rule's anchor, ignoring class, confidence and area."""
        if len(detections) == 0:
            return np.zeros((0,), np.bool_)
        with self._lock:
            zone = self._zone_px(width, height)
            if self.rule.anchor == "any_corner":
                b = detections.xyxy.astype(np.float64, copy=False)
                inside = shapely.intersects(zone, shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]))
            else:
                x, y = anchor_points(detections.xyxy, self.rule.anchor)
                inside = shapely.intersects_xy(zone, x, y)
        return np.asarray(inside, np.bool_)

    def match(self, width: int, height: int, detections: Detections) -> BoolArray:
        """Detections of the watched classes, confident and large enough, inside the zone."""
        mask = self.candidates(width, height, detections)
        if mask.any():
            mask[mask] = self.in_zone(width, height, detections[mask])
        return mask

    def describe(self, class_ids: IntArray) -> str:
        """`2 person, 1 car`, in the rule's class order; `0 person` when nothing is there."""
        if len(class_ids) == 0:
            return f"0 {self.rule.classes[0]}"
        by_id = Counter(class_ids.tolist())
        order = sorted(by_id, key=lambda i: self._rank.get(i, len(self._rank)))
        return ", ".join(f"{by_id[i]} {self._labels[i]}" for i in order)
