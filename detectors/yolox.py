"""YOLOX: top-left letterbox in, `[N, A, 5 + C]` raw grid output out (A = 3549 at 416x416).

The output rows are (dx, dy, log w, log h, objectness, class scores...) with objectness and class scores
already passed through a sigmoid; box centres are grid offsets and sizes are log sizes, both in units of
the row's stride (8, 16 or 32). The grids for the manifest's input size are computed once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core.errors import ModelError
from core.types import Detections, FloatArray, Image
from detectors.family import BoxMap, InputDtype, Layout
from detectors.letterbox import letterbox_hwc
from detectors.manifest import ModelManifest
from detectors.nms import batched_nms

logger = logging.getLogger(__name__)

STRIDES = (8, 16, 32)


def make_grids(input_size: tuple[int, int], strides: Sequence[int] = STRIDES) -> tuple[FloatArray, FloatArray]:
    """Per anchor row: its (x, y) grid cell `(A, 2)` and its stride `(A, 1)`, in YOLOX's row order."""
    width, height = input_size
    grids, expanded = [], []
    for stride in strides:
        xv, yv = np.meshgrid(np.arange(width // stride), np.arange(height // stride))
        grid = np.stack((xv, yv), axis=2).reshape(-1, 2)
        grids.append(grid)
        expanded.append(np.full((len(grid), 1), stride))
    return np.concatenate(grids).astype(np.float32), np.concatenate(expanded).astype(np.float32)


class YoloxFamily:
    """Pre/post-processing for YOLOX exports (Megvii's `demo_postprocess` not baked into the graph)."""

    layout: Layout = "NCHW"

    def __init__(self, manifest: ModelManifest) -> None:
        self._input_size = manifest.input_size
        self._num_classes = len(manifest.labels)
        self._grid, self._stride = make_grids(manifest.input_size)
        self.input_dtype: InputDtype = manifest.input_dtype

    def preprocess(self, images: Sequence[Image]) -> tuple[NDArray[Any], list[BoxMap]]:
        in_w, in_h = self._input_size
        tensor = np.empty((len(images), 3, in_h, in_w), self.input_dtype)
        maps: list[BoxMap] = []
        for i, image in enumerate(images):
            canvas, transform = letterbox_hwc(image, self._input_size)
            tensor[i] = canvas.transpose(2, 0, 1)  # BGR 0-255, as float32 or (int8 models) uint8
            maps.append(transform)
        return tensor, maps

    def postprocess(
        self,
        outputs: Sequence[NDArray[Any]],
        maps: Sequence[BoxMap],
        conf_threshold: float,
        nms_iou: float,
    ) -> list[Detections]:
        raw = outputs[0]
        expected = (len(maps), len(self._grid), 5 + self._num_classes)
        if raw.shape != expected:
            raise ModelError(f"YOLOX output has shape {raw.shape}, expected {expected} for this manifest")
        return [self._decode(raw[i], maps[i], conf_threshold, nms_iou) for i in range(len(maps))]

    def _decode(self, raw: FloatArray, box_map: BoxMap, conf_threshold: float, nms_iou: float) -> Detections:
        # class scores are <= 1, so objectness alone bounds the score: filter before any other work
        rows = np.flatnonzero(raw[:, 4] > conf_threshold)
        cand = raw[rows]
        class_id = np.argmax(cand[:, 5:], axis=1)
        score = cand[:, 4] * cand[np.arange(len(cand)), 5 + class_id]
        good = score > conf_threshold
        rows, cand, class_id, score = rows[good], cand[good], class_id[good], score[good]
        stride = self._stride[rows]
        centre = (cand[:, :2] + self._grid[rows]) * stride
        half = np.exp(cand[:, 2:4]) * stride / 2
        xyxy = np.concatenate((centre - half, centre + half), axis=1).astype(np.float32)
        keep = batched_nms(xyxy, score.astype(np.float32), class_id.astype(np.int64), nms_iou)
        src = box_map.to_source(xyxy[keep])
        visible = (src[:, 2] > src[:, 0]) & (src[:, 3] > src[:, 1])
        return Detections(
            xyxy=src[visible],
            confidence=score[keep][visible].astype(np.float32),
            class_id=class_id[keep][visible].astype(np.int64),
        )
