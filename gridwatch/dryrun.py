"""`gridwatch rules test`: a dry run of rule files over a clip, an image or a folder of images.

It runs a simulated patrol (`gridwatch.simulate`) with the configured detector: visits at the camera's revisit
interval (bursts where the camera has them), the clip looped for as long as asked, and prints the incidents the
rules would open, update and close, with the annotated snapshot of each. Nothing is stored and no event is sent.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import av
import av.error

from core.errors import GridwatchError
from core.events import Event, EventState
from gridwatch.simulate import IMAGE_SUFFIXES, MemoDetector, Simulation, simulate_patrol
from incidents.events import VERBS
from ingest.cameras import Camera
from ingest.visit import DetectorLike
from rules.engine import RuleEngine

logger = logging.getLogger(__name__)


def clip_seconds(source: Path) -> float:
    """The length of a clip in seconds; a clear error for what is not one."""
    try:
        with av.open(str(source)) as container:
            stream = container.streams.video[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            return float(container.duration or 0) / av.time_base
    except (av.error.FFmpegError, IndexError, OSError) as exc:
        raise GridwatchError(f"{source}: not a readable video ({exc})") from None


def source_seconds(source: Path, camera: Camera) -> float:
    """How long one pass over the source lasts: a clip's length, or one revisit per image."""
    if source.is_dir():
        images = [p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        return max(0.0, (len(images) - 1) * camera.revisit_s)
    if source.suffix.lower() in IMAGE_SUFFIXES:
        if not source.is_file():
            raise GridwatchError(f"{source}: no such clip, image or folder")
        return 0.0
    if not source.is_file():
        raise GridwatchError(f"{source}: no such clip, image or folder")
    return clip_seconds(source)


def dry_run(
    engine: RuleEngine,
    detector: DetectorLike,
    source: Path,
    camera: Camera,
    *,
    at: datetime,
    duration_s: float | None = None,
    out_dir: Path | None = None,
) -> Simulation:
    """A simulated patrol of `camera` (its url is replaced by `source`) for `duration_s` (default: one pass)."""
    seconds = source_seconds(source, camera) if duration_s is None else duration_s
    shown = camera.model_copy(update={"url": source.resolve().as_uri()})
    return simulate_patrol(
        [shown], MemoDetector(detector), lambda: engine, start=at, duration_s=seconds, out_dir=out_dir
    )


def describe(event: Event, start: datetime, snapshot: Path | None) -> str:
    t = (event.last_seen - start).total_seconds()
    where = f"  -> {snapshot}" if snapshot else ""
    zone = f"  zone={event.zone}" if event.zone else ""
    return (
        f"{t:8.1f}s  {event.rule_id}  {VERBS[event.state]}  incident {event.incident_id}{zone}  {event.reason}{where}"
    )


def summary(sim: Simulation, rule_ids: Sequence[str]) -> str:
    counts = Counter((e.rule_id, e.state) for e in sim.events)
    parts = [
        f"{rule}: {counts[(rule, EventState.open)]} opened, {counts[(rule, EventState.update)]} updated, "
        f"{counts[(rule, EventState.close)]} closed"
        for rule in rule_ids
    ]
    return f"{len(sim.visits)} visits over {sim.seconds:.0f} s: {'; '.join(parts) or 'no rules for this camera'}"
