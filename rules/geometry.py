"""Box geometry shared by the rule kinds, vectorised."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def iou_matrix(a: NDArray[np.float32], b: NDArray[np.float32]) -> NDArray[np.float32]:
    """Intersection over union of every box of `a` (n, 4) with every box of `b` (m, 4), xyxy: shape (n, m)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    out: NDArray[np.float32] = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0).astype(np.float32)
    return out
