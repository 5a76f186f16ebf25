"""Hot-path types passed between packages inside one process.

Detections follow the struct-of-arrays shape: every field is a numpy array of the same length, and a
boolean mask or an index array selects a subset of all fields at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float32]
IntArray = NDArray[np.int64]
Image = NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded picture from one camera. `source` never carries credentials."""

    camera_id: str
    seq: int
    captured_at: datetime
    monotonic: float
    image: Image
    source: str

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


@dataclass(frozen=True, slots=True)
class Detections:
    """Boxes in source pixels: `xyxy (n,4)`, `confidence (n,)`, `class_id (n,)`, optional `track_id (n,)`."""

    xyxy: FloatArray
    confidence: FloatArray
    class_id: IntArray
    track_id: IntArray | None = None

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if self.xyxy.shape != (n, 4):
            raise ValueError(f"xyxy must have shape (n, 4), got {self.xyxy.shape}")
        if self.confidence.shape != (n,) or self.class_id.shape != (n,):
            raise ValueError(
                f"confidence and class_id must have shape ({n},), got {self.confidence.shape} and {self.class_id.shape}"
            )
        if self.track_id is not None and self.track_id.shape != (n,):
            raise ValueError(f"track_id must have shape ({n},), got {self.track_id.shape}")

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            confidence=np.zeros((0,), np.float32),
            class_id=np.zeros((0,), np.int64),
        )

    @classmethod
    def merge(cls, parts: Sequence[Detections]) -> Detections:
        if not parts:
            return cls.empty()
        tracks = [p.track_id for p in parts if p.track_id is not None]
        track_id: IntArray | None = np.concatenate(tracks) if len(tracks) == len(parts) else None
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]).astype(np.float32, copy=False),
            confidence=np.concatenate([p.confidence for p in parts]).astype(np.float32, copy=False),
            class_id=np.concatenate([p.class_id for p in parts]).astype(np.int64, copy=False),
            track_id=track_id,
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: NDArray[np.bool_] | IntArray) -> Detections:
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            class_id=self.class_id[index],
            track_id=None if self.track_id is None else self.track_id[index],
        )

    @property
    def area(self) -> FloatArray:
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        area: FloatArray = (wh[:, 0] * wh[:, 1]).astype(np.float32)
        return area


# keyframe: one frame per visit; burst: N frames over a few seconds; continuous: a held stream, sampled
VisitKind = Literal["keyframe", "burst", "continuous"]
NormPoint = tuple[float, float]  # (x, y) as fractions of the frame, from its top-left corner


@dataclass(frozen=True, slots=True)
class ObservedFrame:
    """One frame of a visit: when it was taken, what the detector found, and its pixels.

    `carried_s` is None when the detector ran on this very frame. On a gated visit (change gating: the picture is
    judged unchanged since the camera's last analysed frame, so inference is skipped) the detections are that
    frame's, carried forward, and `carried_s` says how many seconds older than this frame they are. The pixels are
    always this frame's own.
    """

    captured_at: datetime
    monotonic: float
    detections: Detections
    image: Image
    carried_s: float | None = None

    @property
    def carried(self) -> bool:
        """True when the detections were carried from an earlier analysed frame rather than found in this one."""
        return self.carried_s is not None


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything one visit of one camera saw: one frame for a keyframe visit, several for a burst, in time order.

    `revisit_s` is the camera's revisit target, so rules that span visits know how far apart visits are meant to be.
    """

    camera_id: str
    kind: VisitKind
    frames: tuple[ObservedFrame, ...]
    revisit_s: float = 60.0

    def __post_init__(self) -> None:
        if not self.frames:
            raise ValueError(f"an observation of camera {self.camera_id} needs at least one frame")

    @property
    def last(self) -> ObservedFrame:
        return self.frames[-1]

    @property
    def at(self) -> datetime:
        """The capture time of the visit's last frame."""
        return self.frames[-1].captured_at

    @property
    def gated(self) -> bool:
        """True when no frame of the visit was analysed: every frame's detections were carried forward."""
        return all(f.carried for f in self.frames)

    @property
    def width(self) -> int:
        return int(self.frames[-1].image.shape[1])

    @property
    def height(self) -> int:
        return int(self.frames[-1].image.shape[0])


@dataclass(frozen=True, slots=True)
class Overlay:
    """What a verdict's evidence draws, in normalised coordinates: zones, directed lines (an arrow marks the "in"
    side) and rectangular regions (e.g. the part of the picture that changed). The rule kind says what it is."""

    polygons: tuple[tuple[NormPoint, ...], ...] = ()
    lines: tuple[tuple[NormPoint, NormPoint, NormPoint], ...] = ()  # start, end, a point on the "in" side
    regions: tuple[tuple[float, float, float, float], ...] = ()  # x1, y1, x2, y2
    note: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one rule concluded about one visit of one camera.

    `key` names the object the verdict is about within (rule, camera, zone): "" for a whole-zone verdict, an object
    or track id where one rule can see several problems at once (each becomes its own incident). `subjects` index
    the detections of frame `frame` of the visit (-1: the last frame).
    """

    rule_id: str
    camera_id: str
    fired: bool
    zone: str | None = None
    subjects: IntArray = field(default_factory=lambda: np.zeros((0,), np.int64))
    measures: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    key: str = ""
    frame: int = -1
    overlay: Overlay | None = None
    # False: a verdict repeated from an earlier judgement (a kind that judges less often than it is visited):
    # it keeps an open incident open, but neither confirms a new one nor brings fresh evidence
    fresh: bool = True
