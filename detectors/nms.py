"""Intersection over union and non-maximum suppression on numpy arrays of xyxy boxes."""

from __future__ import annotations

import logging

import numpy as np

from core.geometry import iou_matrix
from core.types import FloatArray, IntArray

logger = logging.getLogger(__name__)


def iou(a: FloatArray, b: FloatArray) -> FloatArray:
    """The (len(a), len(b)) matrix of IoU between xyxy boxes, as float32; 0 where both boxes are empty."""
    result: FloatArray = iou_matrix(a, b).astype(np.float32)
    return result


def nms(xyxy: FloatArray, scores: FloatArray, iou_threshold: float) -> IntArray:
    """Indices of the boxes kept, best score first; a box is dropped when IoU > threshold with a kept one."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (xyxy[:, i] for i in range(4))
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        w = np.clip(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0, None)
        inter = w * h
        union = areas[best] + areas[rest] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[overlap <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(xyxy: FloatArray, scores: FloatArray, class_id: IntArray, iou_threshold: float) -> IntArray:
    """Class-aware NMS: boxes of different classes never suppress each other (offset-by-class trick)."""
    if len(xyxy) == 0:
        return np.zeros((0,), np.int64)
    span = float(np.max(xyxy) - min(float(np.min(xyxy)), 0.0)) + 1.0
    offset = (class_id.astype(np.float32) * span)[:, None]
    return nms((xyxy + offset).astype(np.float32), scores, iou_threshold)
