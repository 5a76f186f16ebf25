"""Letterbox an image into a model input, and map boxes from model input back to source pixels.

YOLOX's reference preprocessing is followed: scale by r = min(h_in / h, w_in / w), resize with
INTER_LINEAR, place the picture at the top-left of a canvas filled with 114, keep BGR 0-255, no
normalisation. Centred placement (ultralytics style) is available with `centre=True`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from core.types import FloatArray, Image

logger = logging.getLogger(__name__)

PAD_VALUE = 114


@dataclass(frozen=True, slots=True)
class InputTransform:
    """How one source image was placed into the model input: input = source * (gain_x, gain_y) + (pad_x, pad_y).

    One map serves every preprocessing: a letterbox (equal gains, top-left or centred pad), ultralytics'
    centred letterbox (its own rounding of the gains) and a plain stretch (no pad)."""

    gain_x: float
    gain_y: float
    pad_x: float
    pad_y: float
    src_width: int
    src_height: int

    def to_source(self, xyxy: FloatArray) -> FloatArray:
        """Boxes in model-input pixels -> boxes in source pixels, clipped to the source image."""
        out = np.empty_like(xyxy, dtype=np.float32)
        out[:, 0::2] = np.clip((xyxy[:, 0::2] - self.pad_x) / self.gain_x, 0, self.src_width)
        out[:, 1::2] = np.clip((xyxy[:, 1::2] - self.pad_y) / self.gain_y, 0, self.src_height)
        return out

    def to_input(self, xyxy: FloatArray) -> FloatArray:
        """Boxes in source pixels -> boxes in model-input pixels (the forward mapping)."""
        out = np.empty_like(xyxy, dtype=np.float32)
        out[:, 0::2] = xyxy[:, 0::2] * self.gain_x + self.pad_x
        out[:, 1::2] = xyxy[:, 1::2] * self.gain_y + self.pad_y
        return out


def letterbox_hwc(
    image: Image, size: tuple[int, int], *, centre: bool = False, pad_value: int = PAD_VALUE
) -> tuple[Image, InputTransform]:
    """Resize `image` (HxWx3 uint8) into a `size` = (width, height) canvas, keeping its aspect ratio."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 image, got shape {image.shape} dtype {image.dtype}")
    in_w, in_h = size
    src_h, src_w = int(image.shape[0]), int(image.shape[1])
    scale = min(in_h / src_h, in_w / src_w)
    new_w, new_h = int(src_w * scale), int(src_h * scale)
    pad_x = (in_w - new_w) // 2 if centre else 0
    pad_y = (in_h - new_h) // 2 if centre else 0
    canvas = np.full((in_h, in_w, 3), pad_value, dtype=np.uint8)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return canvas, InputTransform(scale, scale, float(pad_x), float(pad_y), src_w, src_h)


def resize_plain(image: Image, size: tuple[int, int]) -> tuple[Image, InputTransform]:
    """Stretch `image` to `size` = (width, height) without keeping the aspect ratio (SSD style)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 image, got shape {image.shape} dtype {image.dtype}")
    in_w, in_h = size
    src_h, src_w = int(image.shape[0]), int(image.shape[1])
    resized = np.asarray(cv2.resize(image, (in_w, in_h), interpolation=cv2.INTER_LINEAR), dtype=np.uint8)
    return resized, InputTransform(in_w / src_w, in_h / src_h, 0.0, 0.0, src_w, src_h)
