"""Ultralytics YOLOv8 / YOLO11 ONNX exports: centred letterbox in, `[N, 4 + C, A]` out.

Preprocessing follows ultralytics' `LetterBox` exactly (so boxes agree with its own predict on the same
ONNX file): scale r = min(h_in / h, w_in / w), resized size rounded per side, padding split in two with
`round(pad / 2 -+ 0.1)`, fill 114, INTER_LINEAR, then BGR -> RGB and 0-255 -> 0-1 float32 NCHW (or the same
RGB pixels as uint8 NCHW for an int8 model whose manifest says `input_dtype: uint8`).
Output rows are (cx, cy, w, h, class scores...) in input pixels, class scores already sigmoided, no
objectness. Decoding: best class per anchor, confidence filter, class-aware NMS, at most `max_det` boxes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from core.errors import ModelError
from core.types import Detections, FloatArray, Image
from detectors.family import BoxMap, InputDtype, Layout
from detectors.letterbox import PAD_VALUE, InputTransform
from detectors.manifest import ModelManifest
from detectors.nms import batched_nms

logger = logging.getLogger(__name__)

MAX_DET = 300  # ultralytics' predict default
MAX_NMS = 30000  # most candidates passed to NMS, best first (ultralytics' default)
SCALE = np.float32(1 / 255)


def letterbox_centred(image: Image, size: tuple[int, int], out: NDArray[np.uint8]) -> InputTransform:
    """Letterbox BGR `image` into `out` (height x width x 3 uint8, `size` = (width, height)), ultralytics' way.

    Only the borders are filled with the pad value, and the resize writes straight into `out` when the
    picture spans its full width (the usual rect input), so no intermediate image is made."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 image, got shape {image.shape} dtype {image.dtype}")
    in_w, in_h = size
    src_h, src_w = int(image.shape[0]), int(image.shape[1])
    r = min(in_h / src_h, in_w / src_w)
    new_w, new_h = max(round(src_w * r), 1), max(round(src_h * r), 1)
    left, top = round((in_w - new_w) / 2 - 0.1), round((in_h - new_h) / 2 - 0.1)
    out[:top] = PAD_VALUE
    out[top + new_h :] = PAD_VALUE
    out[top : top + new_h, :left] = PAD_VALUE
    out[top : top + new_h, left + new_w :] = PAD_VALUE
    inside = out[top : top + new_h, left : left + new_w]
    if (new_w, new_h) == (src_w, src_h):
        inside[:] = image
    elif new_w == in_w:
        cv2.resize(image, (new_w, new_h), dst=inside)  # full rows: a contiguous view cv2 can write into
    else:
        inside[:] = cv2.resize(image, (new_w, new_h))
    return InputTransform(new_w / src_w, new_h / src_h, left, top, src_w, src_h)


def to_rgb_tensor(canvas: NDArray[np.uint8], out: NDArray[np.float32]) -> None:
    """BGR HxWx3 uint8 -> RGB 3xHxW float32 in 0-1, into `out`: split into contiguous planes (one SIMD
    pass), then one scaled conversion per plane (a strided channels-last read is about twice as slow)."""
    for channel, plane in enumerate(cv2.split(canvas)):
        np.multiply(plane, SCALE, out=out[2 - channel])


def to_rgb_planes(canvas: NDArray[np.uint8], out: NDArray[np.uint8]) -> None:
    """BGR HxWx3 uint8 -> RGB 3xHxW uint8 (no scaling), into `out`: for models that take uint8 pixels."""
    for channel, plane in enumerate(cv2.split(canvas)):
        out[2 - channel] = plane


def decode_one(
    raw: FloatArray, conf_threshold: float, nms_iou: float, max_det: int = MAX_DET
) -> tuple[FloatArray, FloatArray, NDArray[np.int64]]:
    """One image's `[4 + C, A]` output -> (xyxy in input pixels, score, class id), best score first."""
    scores = raw[4:]
    best = scores.max(axis=0)
    cols = np.flatnonzero(best > conf_threshold)
    if len(cols) > MAX_NMS:
        cols = cols[np.argsort(-best[cols], kind="stable")[:MAX_NMS]]
    class_id = np.argmax(scores[:, cols], axis=0).astype(np.int64)
    score = best[cols].astype(np.float32)
    cx, cy, w, h = raw[0, cols], raw[1, cols], raw[2, cols], raw[3, cols]
    xyxy = np.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), axis=1).astype(np.float32)
    keep = batched_nms(xyxy, score, class_id, nms_iou)[:max_det]
    return xyxy[keep], score[keep], class_id[keep]


class UltralyticsFamily:
    """Pre/post-processing for ultralytics detect exports (YOLOv8, YOLO11), NMS not in the graph."""

    layout: Layout = "NCHW"

    def __init__(self, manifest: ModelManifest) -> None:
        self._input_size = manifest.input_size
        self._num_classes = len(manifest.labels)
        self.input_dtype: InputDtype = manifest.input_dtype

    def preprocess(self, images: Sequence[Image]) -> tuple[NDArray[Any], list[BoxMap]]:
        in_w, in_h = self._input_size
        canvas = np.empty((in_h, in_w, 3), np.uint8)
        tensor = np.empty((len(images), 3, in_h, in_w), self.input_dtype)
        maps: list[BoxMap] = []
        for i, image in enumerate(images):
            maps.append(letterbox_centred(image, self._input_size, canvas))
            if self.input_dtype == "uint8":
                to_rgb_planes(canvas, tensor[i])
            else:
                to_rgb_tensor(canvas, tensor[i])
        return tensor, maps

    def postprocess(
        self,
        outputs: Sequence[NDArray[Any]],
        maps: Sequence[BoxMap],
        conf_threshold: float,
        nms_iou: float,
    ) -> list[Detections]:
        raw = outputs[0]
        if raw.ndim != 3 or raw.shape[0] != len(maps) or raw.shape[1] != 4 + self._num_classes:
            raise ModelError(
                f"ultralytics output has shape {raw.shape}, expected ({len(maps)}, "
                f"{4 + self._num_classes}, anchors) for this manifest's {self._num_classes} labels"
            )
        results = []
        for i, box_map in enumerate(maps):
            xyxy, score, class_id = decode_one(raw[i], conf_threshold, nms_iou)
            results.append(Detections(xyxy=box_map.to_source(xyxy), confidence=score, class_id=class_id))
        return results
