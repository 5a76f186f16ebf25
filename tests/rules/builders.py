"""Small builders for rule tests: detections from boxes, rules from a few overrides, the real COCO labels."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml

from core.types import Detections, Image, Observation, ObservedFrame, Verdict
from rules.kinds.base import CompiledRule
from rules.kinds.zone_intrusion import ZoneIntrusionRule

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


T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)  # a Monday, 17:00 in Shanghai


def blank(width: int = WIDTH, height: int = HEIGHT) -> Image:
    """A black picture of that size that costs no memory (read-only)."""
    return np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (height, width, 3))


def observation(
    dets: Detections | Sequence[Detections],
    *,
    camera_id: str = "cam-1",
    at: datetime = T0,
    width: int = WIDTH,
    height: int = HEIGHT,
    step_s: float = 0.5,
    revisit_s: float = 60.0,
    images: Sequence[Image] | None = None,
) -> Observation:
    """A keyframe visit (one Detections) or a burst (several, `step_s` apart, the last at `at`)."""
    parts = [dets] if isinstance(dets, Detections) else list(dets)
    n = len(parts)
    frames = tuple(
        ObservedFrame(
            at - timedelta(seconds=step_s * (n - 1 - i)),
            at.timestamp() - step_s * (n - 1 - i),
            d,
            images[i] if images is not None else blank(width, height),
        )
        for i, d in enumerate(parts)
    )
    return Observation(camera_id, "keyframe" if n == 1 else "burst", frames, revisit_s)


def judge(compiled: CompiledRule, camera_id: str, width: int, height: int, dets: Detections) -> Verdict:
    """The first verdict of a stateless rule on one keyframe visit."""
    return compiled.evaluate(observation(dets, camera_id=camera_id, width=width, height=height), None).verdicts[0]
