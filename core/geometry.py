"""Box geometry shared by the detectors (NMS) and the rules (tracking, the same object across visits)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]


def iou_matrix(a: NDArray[np.floating], b: NDArray[np.floating]) -> F64:
    """IoU of every xyxy box of `a (n,4)` with every box of `b (m,4)`, as an `(n, m)` array; 0 where both boxes
    are empty."""
    a64, b64 = a.astype(np.float64, copy=False), b.astype(np.float64, copy=False)
    lt = np.maximum(a64[:, None, :2], b64[None, :, :2])
    rb = np.minimum(a64[:, None, 2:], b64[None, :, 2:])
    wh = np.clip(rb - lt, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = np.prod(np.clip(a64[:, 2:] - a64[:, :2], 0.0, None), axis=1)
    area_b = np.prod(np.clip(b64[:, 2:] - b64[:, :2], 0.0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    out: F64 = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0.0)
    return out
