"""Snapshot evidence (智能抓拍): the clean frame and an annotated copy with boxes, labels and what the rule kind
says its evidence shows (its `Overlay`: zones, directed lines, changed regions)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from core.events import Box, Evidence
from core.types import Detections, Image, NormPoint, Overlay

_SUBJECT = (0, 64, 255)  # BGR: orange-red for subjects of the verdict
_OTHER = (200, 200, 200)
_ZONE = (255, 200, 0)
_LINE = (0, 220, 255)
_REGION = (255, 0, 255)


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


def _px(point: NormPoint, width: int, height: int) -> tuple[int, int]:
    return round(point[0] * width), round(point[1] * height)


def _draw_overlay(out: Image, overlay: Overlay) -> None:
    """Zones shaded and outlined, lines with an arrow towards their "in" side, regions outlined, in place."""
    h, w = out.shape[:2]
    for polygon in overlay.polygons:
        if len(polygon) < 3:
            continue
        pts = np.array([_px(p, w, h) for p in polygon], np.int32).reshape(-1, 1, 2)
        shaded = out.copy()
        cv2.fillPoly(shaded, [pts], _ZONE)
        cv2.addWeighted(shaded, 0.18, out, 0.82, 0, dst=out)
        cv2.polylines(out, [pts], True, _ZONE, 2, cv2.LINE_AA)
    for a, b, inside in overlay.lines:
        pa, pb = _px(a, w, h), _px(b, w, h)
        cv2.line(out, pa, pb, _LINE, 3, cv2.LINE_AA)
        mid = ((pa[0] + pb[0]) // 2, (pa[1] + pb[1]) // 2)
        cv2.arrowedLine(out, mid, _px(inside, w, h), _LINE, 2, cv2.LINE_AA, tipLength=0.3)
    for x1, y1, x2, y2 in overlay.regions:
        cv2.rectangle(out, _px((x1, y1), w, h), _px((x2, y2), w, h), _REGION, 2, cv2.LINE_AA)


def _draw_box(out: Image, box: Box) -> None:
    color = _SUBJECT if box.in_zone else _OTHER
    p1, p2 = (int(box.x1), int(box.y1)), (int(box.x2), int(box.y2))
    cv2.rectangle(out, p1, p2, color, 2 if box.in_zone else 1, cv2.LINE_AA)
    text = f"{box.label} {box.confidence:.2f}"
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
    y = max(th + 4, p1[1])
    cv2.rectangle(out, (p1[0], y - th - 4), (p1[0] + tw + 4, y), color, -1)
    cv2.putText(out, text, (p1[0] + 2, y - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)


def annotate(image: Image, boxes: Sequence[Box], overlay: Overlay | None, caption: str) -> Image:
    out = np.ascontiguousarray(image).copy()
    if overlay is not None:
        _draw_overlay(out, overlay)
    for box in sorted(boxes, key=lambda b: b.in_zone):
        _draw_box(out, box)
    for line, y in ((caption, 22), (overlay.note if overlay is not None else "", 46)):
        if line:
            cv2.putText(out, line, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(out, line, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
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
    overlay: Overlay | None,
    caption: str,
    quality: int = 85,
) -> Snapshot:
    """Encode the clean frame and the annotated one; keys are their content hashes."""
    boxes = to_boxes(dets, labels, subjects)
    drawn = annotate(image, boxes, overlay, caption)
    clean, clean_bytes = _stored(encode_jpeg(np.ascontiguousarray(image), quality), "frame", image, boxes)
    marked, marked_bytes = _stored(encode_jpeg(drawn, quality), "annotated", drawn, boxes)
    return Snapshot([marked, clean], {clean.key: clean_bytes, marked.key: marked_bytes})
