"""SSD with the TFLite detection post-process (NMS) inside the graph.

Input: uint8 `[N, H, W, 3]` RGB, a plain resize (no letterbox). Outputs, in graph order: boxes
`[N, K, 4]` (ymin, xmin, ymax, xmax, normalised), raw class ids `[N, K]`, scores `[N, K]`, count `[N]`.
The raw ids follow the model's own numbering; the manifest's `class_ids` maps them to label indices so a
class id means the same label as in every other family.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from core.errors import ModelError
from core.types import Detections, Image, IntArray
from detectors.family import BoxMap, InputDtype, Layout
from detectors.letterbox import resize_plain
from detectors.manifest import ModelManifest
from detectors.nms import batched_nms

logger = logging.getLogger(__name__)


def raw_to_label_index(class_ids: Sequence[int] | None, num_labels: int) -> IntArray:
    """A lookup table: raw class id -> label index, -1 for raw ids that name no label."""
    raw = list(range(num_labels)) if class_ids is None else list(class_ids)
    table = np.full(max(raw) + 1, -1, dtype=np.int64)
    table[raw] = np.arange(len(raw))
    return table


class SsdFamily:
    """Pre/post-processing for SSD exports whose graph ends in TFLite_Detection_PostProcess."""

    layout: Layout = "NHWC"
    input_dtype: InputDtype = "uint8"

    def __init__(self, manifest: ModelManifest) -> None:
        self._input_size = manifest.input_size
        self._lookup = raw_to_label_index(manifest.class_ids, len(manifest.labels))

    def preprocess(self, images: Sequence[Image]) -> tuple[NDArray[Any], list[BoxMap]]:
        batch = np.empty((len(images), self._input_size[1], self._input_size[0], 3), np.uint8)
        maps: list[BoxMap] = []
        for i, image in enumerate(images):
            resized, transform = resize_plain(image, self._input_size)
            cv2.cvtColor(resized, cv2.COLOR_BGR2RGB, dst=batch[i])
            maps.append(transform)
        return batch, maps

    def postprocess(
        self,
        outputs: Sequence[NDArray[Any]],
        maps: Sequence[BoxMap],
        conf_threshold: float,
        nms_iou: float,
    ) -> list[Detections]:
        if len(outputs) != 4 or outputs[0].shape[-1] != 4:
            shapes = [o.shape for o in outputs]
            raise ModelError(f"SSD outputs have shapes {shapes}, expected boxes, classes, scores, count")
        boxes, classes, scores, count = outputs
        return [
            self._decode(boxes[i], classes[i], scores[i], int(count[i]), maps[i], conf_threshold, nms_iou)
            for i in range(len(maps))
        ]

    def _decode(
        self,
        boxes: NDArray[Any],
        classes: NDArray[Any],
        scores: NDArray[Any],
        count: int,
        box_map: BoxMap,
        conf_threshold: float,
        nms_iou: float,
    ) -> Detections:
        raw_id = np.rint(classes[:count]).astype(np.int64)
        known = (raw_id >= 0) & (raw_id < len(self._lookup))
        class_id = np.where(known, self._lookup[np.clip(raw_id, 0, len(self._lookup) - 1)], -1)
        score = scores[:count].astype(np.float32)
        good = (score > conf_threshold) & (class_id >= 0)
        in_w, in_h = self._input_size
        yxyx = boxes[:count][good].astype(np.float32)
        xyxy = yxyx[:, [1, 0, 3, 2]] * np.array([in_w, in_h, in_w, in_h], np.float32)
        score, class_id = score[good], class_id[good]
        keep = batched_nms(xyxy, score, class_id, nms_iou)
        return Detections(xyxy=box_map.to_source(xyxy[keep]), confidence=score[keep], class_id=class_id[keep])
