"""Box geometry shared by the detectors (NMS) and the rules (tracking, the same object across visits)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]


def iou_matrix(a: NDArray[np.floating], b: NDArray[np.floating]) -> F64:
    """IoU of every xyxy box of `a (n,4)` with every box of `b (m,4)`, as an `(n, m)` array; 0 where both boxes
    are empty."""
    a64, b64 = a.astype(np.float64, copy=False), b.astype(np.float64, copy=False)
    ax1, ay1, ax2, ay2 = a64[:, 0], a64[:, 1], a64[:, 2], a64[:, 3]
    bx1, by1, bx2, by2 = b64[:, 0], b64[:, 1], b64[:, 2], b64[:, 3]
    # outer ufuncs and in-place clipping: the matrices here are tiny, so the number of numpy calls is the cost
    w = np.minimum.outer(ax2, bx2) - np.maximum.outer(ax1, bx1)
    h = np.minimum.outer(ay2, by2) - np.maximum.outer(ay1, by1)
    np.maximum(w, 0.0, out=w)
    np.maximum(h, 0.0, out=h)
    inter = w * h
    area_a = np.maximum(ax2 - ax1, 0.0) * np.maximum(ay2 - ay1, 0.0)
    area_b = np.maximum(bx2 - bx1, 0.0) * np.maximum(by2 - by1, 0.0)
    union = np.add.outer(area_a, area_b) - inter
    out: F64 = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0.0)
    return out
