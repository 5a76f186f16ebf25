"""A small multi-object tracker for the frames of one burst or of a continuous stream.

IoU association in two stages, as ByteTrack does: tracks are first matched to confident detections
(`confidence >= high`), then tracks still unmatched are matched to the weak ones (`low <= confidence < high`), which
keeps a track alive through frames where the detector is unsure without ever starting a track from a weak box.
Matching is greedy by descending IoU, class by class (a person never continues a car's track), against each track's
last box moved by its velocity. Tracks and confident detections left over get a second chance against the track's
last box where it was, both boxes grown on every side by `buffer_per_s` times the seconds since the previous frame
(at most `max_buffer`) of their size: a buffered IoU (as in C-BIoU), which holds tracks together when frames are
far apart (a burst of 8 frames over 4 s) or a box jitters back and forth against its velocity.
A track is confirmed after `min_hits` matched frames; an unconfirmed track that misses a frame is dropped, a
confirmed one after `max_age` missed frames. Frames more than `max_gap_s` apart (a stream that reconnected, the
next burst of a patrol) start from no tracks; ids keep counting up.

Why hand-written rather than `supervision` / `trackers`: `rules/` must stay pure and light (import-linter forbids
`av` there, and a worker imports `rules/` once per core). Checked with `pip download --no-deps`:
supervision 0.31.2 requires matplotlib, scipy, av, pillow, requests, tqdm, defusedxml and pydeprecate (its
`ByteTrack` now lives in `trackers`, and `import supervision` imports scipy eagerly); trackers 2.6.1, where the
ByteTrack/SORT trackers are, requires supervision, scipy, rich, requests and opencv-python (the non-headless build,
which clashes with the opencv-python-headless that gridwatch installs). What a patrol needs is about 150 lines of
numpy: no Kalman filter (a velocity estimate suffices at 2-25 fps), no re-identification, no Hungarian solver
(greedy matching differs from an optimal one only when boxes overlap heavily).

The state (`Tracks`) is one small float64 array and two numbers, immutable, so a compiled rule shared by threads
can carry it per camera.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from core.geometry import iou_matrix
from core.types import Detections, IntArray

logger = logging.getLogger(__name__)

F64 = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

# columns of Tracks.rows
_BOX, _VEL, _CLS, _ID, _HITS, _MISSES = slice(0, 4), slice(4, 6), 6, 7, 8, 9
_NCOLS = 10


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """`high`/`low`: confidence bounds of the two stages; `match_iou`/`low_match_iou`: least IoU of a match in each;
    `max_age`: missed frames a confirmed track survives; `max_gap_s`: a longer pause between frames starts afresh;
    `buffer_per_s`, `max_buffer`: how much the second chance of stage 1 grows boxes per second between frames."""

    high: float = 0.5
    low: float = 0.1
    match_iou: float = 0.2
    low_match_iou: float = 0.4
    min_hits: int = 2
    max_age: int = 10
    max_gap_s: float = 3.0
    buffer_per_s: float = 1.5
    max_buffer: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.low <= self.high:
            raise ValueError(f"tracker needs 0 <= low <= high, got low {self.low}, high {self.high}")
        if self.min_hits < 1 or self.max_age < 0:
            raise ValueError(f"tracker needs min_hits >= 1 and max_age >= 0, got {self.min_hits}, {self.max_age}")


@dataclass(frozen=True, slots=True)
class Tracks:
    """The tracker's state: one row per live track (box, velocity per frame, class, id, hits, missed frames)."""

    rows: F64
    next_id: int = 1
    last_t: float | None = None

    @classmethod
    def empty(cls, next_id: int = 1) -> Tracks:
        return cls(np.zeros((0, _NCOLS), np.float64), next_id)

    @property
    def ids(self) -> IntArray:
        return self.rows[:, _ID].astype(np.int64)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True, slots=True)
class Step:
    """What one frame's detections were matched to: `ids[i]` the track of detection i (-1: none; unconfirmed tracks
    have ids too), `confirmed[i]` whether that track is confirmed."""

    ids: IntArray
    confirmed: BoolArray

    def detections(self, detections: Detections) -> Detections:
        """The detections with `track_id` filled: the track's id where it is confirmed, else -1."""
        track_id = np.where(self.confirmed, self.ids, -1).astype(np.int64)
        return Detections(detections.xyxy, detections.confidence, detections.class_id, track_id)


def greedy_match(score: F64, threshold: float) -> tuple[IntArray, IntArray]:
    """(rows, cols) of one-to-one pairs, best score first, each at least `threshold`."""
    rows, cols = np.nonzero(score >= threshold)
    order = np.argsort(-score[rows, cols], kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    out_r, out_c = [], []
    for r, c in zip(rows[order].tolist(), cols[order].tolist(), strict=True):
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            out_r.append(r)
            out_c.append(c)
    return np.asarray(out_r, np.int64), np.asarray(out_c, np.int64)


def _associate(
    rows: F64,
    dets: Detections,
    det_idx: IntArray,
    track_idx: IntArray,
    threshold: float,
    moved: bool = True,
    buffer: float = 0.0,
) -> tuple[IntArray, IntArray]:
    """Greedy class-aware matches between tracks `track_idx` and detections `det_idx`, by IoU with each track's
    last box moved by its velocity (`moved`) or left where it was."""
    if len(det_idx) == 0 or len(track_idx) == 0:
        return np.zeros((0,), np.int64), np.zeros((0,), np.int64)
    t = rows[track_idx]
    ahead = (t[:, _MISSES] + 1.0)[:, None] if moved else np.zeros((len(t), 1))
    predicted = t[:, _BOX] + np.tile(t[:, _VEL], 2) * ahead
    score = iou_matrix(_grown(predicted, buffer), _grown(dets.xyxy[det_idx], buffer))
    score[t[:, _CLS][:, None] != dets.class_id[det_idx][None, :].astype(np.float64)] = 0.0
    r, c = greedy_match(score, threshold)
    return track_idx[r], det_idx[c]


class Tracker:
    """Stateless apart from its config: `step` takes the state and returns the next one. Safe to share."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config if config is not None else TrackerConfig()

    def step(self, tracks: Tracks, dets: Detections, t: float) -> tuple[Tracks, Step]:
        """Match one frame's detections (taken at monotonic time `t`) to the tracks."""
        cfg = self.config
        if tracks.last_t is not None and not 0.0 <= t - tracks.last_t <= cfg.max_gap_s:
            tracks = Tracks.empty(tracks.next_id)
        rows = tracks.rows
        dt = 0.0 if tracks.last_t is None else t - tracks.last_t
        strong = np.flatnonzero(dets.confidence >= cfg.high)
        weak = np.flatnonzero((dets.confidence >= cfg.low) & (dets.confidence < cfg.high))
        t1, d1 = self._match_strong(rows, dets, strong, min(cfg.max_buffer, cfg.buffer_per_s * dt))
        left = np.setdiff1d(np.flatnonzero(rows[:, _HITS] >= cfg.min_hits), t1)
        t2, d2 = _associate(rows, dets, weak, left, cfg.low_match_iou)
        matched_t, matched_d = np.concatenate([t1, t2]), np.concatenate([d1, d2])
        updated = _updated(rows[matched_t], dets.xyxy[matched_d])
        unmatched = np.setdiff1d(np.arange(len(rows)), matched_t)
        aged = rows[unmatched].copy()
        aged[:, _MISSES] += 1.0
        aged = aged[(aged[:, _HITS] >= cfg.min_hits) & (aged[:, _MISSES] <= cfg.max_age)]
        new_d = np.setdiff1d(strong, d1)
        born = _born(dets, new_d, tracks.next_id)
        ids = np.full(len(dets), -1, np.int64)
        hits = np.zeros(len(dets), np.float64)
        ids[matched_d], hits[matched_d] = updated[:, _ID], updated[:, _HITS]
        ids[new_d], hits[new_d] = born[:, _ID], 1.0
        step = Step(ids, (ids >= 0) & (hits >= cfg.min_hits))
        next_rows = np.concatenate([updated, aged, born])
        next_rows = next_rows[np.argsort(next_rows[:, _ID], kind="stable")]
        return Tracks(next_rows, tracks.next_id + len(new_d), t), step

    def _match_strong(self, rows: F64, dets: Detections, strong: IntArray, buffer: float) -> tuple[IntArray, IntArray]:
        """Stage 1: confident detections by IoU with the tracks' predicted boxes; then what is left over by the
        buffered IoU with the tracks' last boxes where they were."""
        cfg = self.config
        t1, d1 = _associate(rows, dets, strong, np.arange(len(rows)), cfg.match_iou)
        rest_t, rest_d = np.setdiff1d(np.arange(len(rows)), t1), np.setdiff1d(strong, d1)
        t1b, d1b = _associate(rows, dets, rest_d, rest_t, cfg.match_iou, moved=False, buffer=buffer)
        return np.concatenate([t1, t1b]), np.concatenate([d1, d1b])

    def run(
        self, frames: Sequence[tuple[Detections, float]], tracks: Tracks | None = None
    ) -> tuple[Tracks, list[Step]]:
        """Every frame in order: (detections, monotonic time) each; from no tracks unless given."""
        state = tracks if tracks is not None else Tracks.empty()
        steps = []
        for dets, t in frames:
            state, step = self.step(state, dets, t)
            steps.append(step)
        return state, steps


def _grown(boxes: NDArray[np.floating], buffer: float) -> F64:
    """Boxes grown on every side by `buffer` times their width and height."""
    b = boxes.astype(np.float64)
    if buffer <= 0.0:
        return b
    pad = np.tile((b[:, 2:] - b[:, :2]) * buffer, 2) * np.array([-1.0, -1.0, 1.0, 1.0])
    out: F64 = b + pad
    return out


def _updated(rows: F64, boxes: NDArray[np.float32]) -> F64:
    """Matched tracks moved to their new boxes, with their velocity (per frame) smoothed."""
    out = rows.copy()
    new = boxes.astype(np.float64)
    frames = rows[:, _MISSES] + 1.0
    centre_old = (rows[:, 0:2] + rows[:, 2:4]) / 2.0
    centre_new = (new[:, 0:2] + new[:, 2:4]) / 2.0
    measured = (centre_new - centre_old) / frames[:, None]
    first = (rows[:, _HITS] <= 1.0)[:, None]
    out[:, _VEL] = np.where(first, measured, 0.5 * measured + 0.5 * rows[:, _VEL])
    out[:, _BOX] = new
    out[:, _HITS] += 1.0
    out[:, _MISSES] = 0.0
    return out


def _born(dets: Detections, idx: IntArray, next_id: int) -> F64:
    born = np.zeros((len(idx), _NCOLS), np.float64)
    born[:, _BOX] = dets.xyxy[idx]
    born[:, _CLS] = dets.class_id[idx]
    born[:, _ID] = np.arange(next_id, next_id + len(idx))
    born[:, _HITS] = 1.0
    return born
