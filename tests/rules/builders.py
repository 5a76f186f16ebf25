"""Small builders for rule tests: detections from boxes, rules from a few overrides, the real COCO labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml

from core.types import Detections
from rules.schema import ZoneIntrusionRule

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"

# Zone used by most cases: the middle quarter of the frame; at 640x480 it is x 160..480, y 120..360.
SQUARE = ((0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75))
WIDTH, HEIGHT = 640, 480


def coco_labels() -> list[str]:
    """The labels of the real yolox-nano manifest in models/."""
    manifest = yaml.safe_load((ROOT / "models" / "yolox-nano.yaml").read_text(encoding="utf-8"))
    labels = manifest["labels"]
    assert isinstance(labels, list) and len(labels) == 80
    return [str(label) for label in labels]


LABELS = coco_labels()


class Box(NamedTuple):
    x1: float
    y1: float
    x2: float
    y2: float
    label: str = "person"
    conf: float = 0.9


def make_detections(*boxes: Box, labels: list[str] = LABELS) -> Detections:
    if not boxes:
        return Detections.empty()
    return Detections(
        xyxy=np.array([b[:4] for b in boxes], np.float32).reshape(-1, 4),
        confidence=np.array([b.conf for b in boxes], np.float32),
        class_id=np.array([labels.index(b.label) for b in boxes], np.int64),
    )


def rule_dict(**overrides: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": "walkway-intrusion",
        "kind": "zone_intrusion",
        "zone": {"name": "walkway", "polygon": [list(p) for p in SQUARE]},
        "classes": ["person"],
        "min_confidence": 0.5,
        "category": "0501",
    }
    rule.update(overrides)
    return rule


def make_rule(**overrides: Any) -> ZoneIntrusionRule:
    return ZoneIntrusionRule.model_validate(rule_dict(**overrides))
