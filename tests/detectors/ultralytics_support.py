"""A random-init YOLO11n with a meaningful score spread, exported once per session (ultralytics in tests only).

Random init alone gives near-constant class scores (about 1e-4 everywhere), which makes any comparison
trivial. So BatchNorm statistics are recomputed on two real photos (features get unit variance) and the
class head's last convolutions are rescaled (weights x 0.5, bias -5): scores then spread over 0-0.7 and a
few dozen boxes pass conf 0.25 on bus.jpg, with distinct boxes for NMS to sort out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from ultralytics import YOLO  # type: ignore[attr-defined]

from core.types import Image


def _as_batch(images: list[Image], size: int) -> torch.Tensor:
    rgb = [cv2.resize(image, (size, size))[..., ::-1] for image in images]
    return torch.from_numpy(np.stack(rgb).transpose(0, 3, 1, 2).copy()).float() / 255


def build_yolo11n(out: Path, calibration: list[Image]) -> Path:
    """Write a random-init `yolo11n.pt` whose class scores vary, and return its path."""
    torch.manual_seed(0)
    model = YOLO("yolo11n.yaml")
    net: Any = model.model  # a DetectionModel (ultralytics types it loosely)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a plain average over the forward passes below
            module.reset_running_stats()
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(_as_batch(calibration, 640))
        for branch in net.model[-1].cv3:
            branch[-1].weight.mul_(0.5)
            branch[-1].bias.fill_(-5.0)
    net.eval()
    path = out / "yolo11n.pt"
    model.save(str(path))
    return path
