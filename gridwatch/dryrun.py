"""`gridwatch rules test`: a dry run of rule files over a clip, an image or a folder of images.

It runs the configured detector and the rules exactly as a patrol visit would, prints what would fire, and
writes the annotated snapshot of each hit, so a rule author sees the zone and the boxes before deploying.
Nothing is stored and no event is sent.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import av
import cv2
import numpy as np

from core.errors import GridwatchError
from core.types import Image
from ingest.evidence import annotate, to_boxes
from ingest.visit import DetectorLike
from rules.engine import RuleEngine

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass(frozen=True, slots=True)
class Hit:
    """One rule that fired on one frame."""

    where: str
    rule_id: str
    zone: str | None
    count: int
    reason: str
    snapshot: Path | None


def _video_frames(path: Path, every_s: float) -> Iterator[tuple[str, Image]]:
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            next_t = 0.0
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else next_t
                if t + 1e-6 >= next_t:
                    next_t = t + every_s
                    yield f"{path.name}@{t:.1f}s", np.asarray(frame.to_ndarray(format="bgr24"), np.uint8)
    except (av.error.FFmpegError, IndexError) as exc:
        raise GridwatchError(f"{path}: not a readable video ({exc})") from None


def _image(path: Path) -> Image:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise GridwatchError(f"{path}: not a readable image")
    return np.asarray(image, np.uint8)


def frames(source: Path, every_s: float) -> Iterator[tuple[str, Image]]:
    """(label, BGR image) pairs: every `every_s` seconds of a video, an image, or a folder's images in order."""
    if source.is_dir():
        for path in sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            yield path.name, _image(path)
    elif source.suffix.lower() in IMAGE_SUFFIXES:
        yield source.name, _image(source)
    elif source.is_file():
        yield from _video_frames(source, every_s)
    else:
        raise GridwatchError(f"{source}: no such clip, image or folder")


def dry_run(
    engine: RuleEngine,
    detector: DetectorLike,
    source: Path,
    *,
    camera_id: str,
    at: datetime,
    every_s: float = 1.0,
    out_dir: Path | None = None,
) -> tuple[int, list[Hit]]:
    """Frames seen and the hits on them; with `out_dir`, each hit's annotated snapshot is written there."""
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    seen, hits = 0, list[Hit]()
    for label, image in frames(source, every_s):
        seen += 1
        dets = detector.detect(image)
        height, width = image.shape[:2]
        for verdict in engine.evaluate(camera_id, width, height, dets, at):
            if not verdict.fired:
                continue
            path = None
            if out_dir is not None:
                boxes = to_boxes(dets, detector.labels, verdict.subjects)
                zone = engine.zone_pixels(verdict.rule_id, width, height)
                drawn = annotate(image, boxes, zone, f"{label} {verdict.rule_id}")
                path = out_dir / f"{len(hits) + 1:04d}_{verdict.rule_id}.jpg"
                cv2.imwrite(str(path), drawn)
            count = int(verdict.measures.get("count", len(verdict.subjects)))
            hits.append(Hit(label, verdict.rule_id, verdict.zone, count, verdict.reason, path))
    return seen, hits


def summary(seen: int, hits: Sequence[Hit], rule_ids: Sequence[str]) -> str:
    fired = {rule: sum(1 for h in hits if h.rule_id == rule) for rule in rule_ids}
    parts = ", ".join(f"{rule} fired on {n}" for rule, n in fired.items())
    return f"{seen} frames: {parts or 'no rules for this camera'}"
