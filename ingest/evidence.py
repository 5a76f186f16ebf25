"""Snapshot evidence (智能抓拍): the clean frame and an annotated copy with boxes, labels and the zone."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from core.events import Box, Evidence
from core.types import Detections, Image

_SUBJECT = (0, 64, 255)  # BGR: orange-red for subjects of the verdict
_OTHER = (200, 200, 200)
_ZONE = (255, 200, 0)


@dataclass(frozen=True, slots=True)
class Snapshot:
    evidence: list[Evidence]
    blobs: dict[str, bytes]


def encode_jpeg(image: Image, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def to_boxes(dets: Detections, labels: Sequence[str], subjects: np.ndarray) -> list[Box]:
    in_zone = np.zeros(len(dets), bool)
    in_zone[subjects] = True
    return [
        Box(
            x1=round(float(x1), 1),
            y1=round(float(y1), 1),
            x2=round(float(x2), 1),
            y2=round(float(y2), 1),
            label=labels[int(c)] if 0 <= int(c) < len(labels) else str(int(c)),
            confidence=round(float(s), 3),
            in_zone=bool(z),
        )
        for (x1, y1, x2, y2), s, c, z in zip(dets.xyxy, dets.confidence, dets.class_id, in_zone, strict=True)
    ]


def annotate(image: Image, boxes: Sequence[Box], zone_px: np.ndarray | None, caption: str) -> Image:
    out = image.copy()
    if zone_px is not None and len(zone_px) >= 3:
        pts = zone_px.astype(np.int32).reshape(-1, 1, 2)
        overlay = out.copy()
        cv2.fillPoly(overlay, [pts], _ZONE)
        cv2.addWeighted(overlay, 0.18, out, 0.82, 0, dst=out)
        cv2.polylines(out, [pts], True, _ZONE, 2, cv2.LINE_AA)
    for box in sorted(boxes, key=lambda b: b.in_zone):
        color = _SUBJECT if box.in_zone else _OTHER
        p1, p2 = (int(box.x1), int(box.y1)), (int(box.x2), int(box.y2))
        cv2.rectangle(out, p1, p2, color, 2 if box.in_zone else 1, cv2.LINE_AA)
        text = f"{box.label} {box.confidence:.2f}"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        y = max(th + 4, p1[1])
        cv2.rectangle(out, (p1[0], y - th - 4), (p1[0] + tw + 4, y), color, -1)
        cv2.putText(out, text, (p1[0] + 2, y - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(out, caption, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, caption, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _stored(data: bytes, kind: Literal["frame", "annotated"], image: Image, boxes: list[Box]) -> tuple[Evidence, bytes]:
    digest = hashlib.sha256(data).hexdigest()
    ev = Evidence(
        key=f"{digest}.jpg",
        kind=kind,
        content_type="image/jpeg",
        sha256=digest,
        width=int(image.shape[1]),
        height=int(image.shape[0]),
        boxes=boxes,
    )
    return ev, data


def make_snapshot(
    image: Image,
    dets: Detections,
    labels: Sequence[str],
    subjects: np.ndarray,
    zone_px: np.ndarray | None,
    caption: str,
    quality: int = 85,
) -> Snapshot:
    """Encode the clean frame and the annotated one; keys are their content hashes."""
    boxes = to_boxes(dets, labels, subjects)
    drawn = annotate(image, boxes, zone_px, caption)
    clean, clean_bytes = _stored(encode_jpeg(image, quality), "frame", image, boxes)
    marked, marked_bytes = _stored(encode_jpeg(drawn, quality), "annotated", drawn, boxes)
    return Snapshot([marked, clean], {clean.key: clean_bytes, marked.key: marked_bytes})
