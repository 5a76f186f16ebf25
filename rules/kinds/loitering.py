"""`loitering`: the same object inside a zone for at least `min_dwell_s` seconds (徘徊 / 滞留).

Two ways to see "the same object", used together where both apply:
- within a burst (or a continuous stream's evaluation), a tracker runs over the visit's frames; a track's dwell runs
  from its first frame in the zone to its last, and restarts if a sighting puts it outside the zone;
- across consecutive visits, when the camera's `revisit_s` is below `min_dwell_s`: an object in the zone now is the
  one seen in the zone before when it has the same class and a box IoU >= `same_object_iou` with it, and its dwell
  counts from the first visit it was seen. A sighting older than `2 * revisit_s` is forgotten (one missed visit is
  bridged, a longer gap starts afresh).
A keyframe camera whose visits are `min_dwell_s` or more apart can do neither: it fires nothing, and says why.
Times are the frames' capture times, so the state can move between workers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from core.geometry import iou_matrix
from core.types import IntArray, Observation, Verdict
from rules.kinds.base import CompileContext, Evaluation, KindSpec
from rules.schema import BaseRule, ZoneFilter
from rules.tracker import Tracker, TrackerConfig, Tracks, greedy_match
from rules.zone import ZoneMatcher

logger = logging.getLogger(__name__)

F64 = NDArray[np.float64]

_LOW_CONFIDENCE = 0.1  # weak detections below a rule's min_confidence still keep its tracks alive
_NCOLS = 7  # Sightings.rows: x1, y1, x2, y2 (normalised), class id, first seen, last seen (Unix seconds)


class LoiteringRule(BaseRule, ZoneFilter):
    """Fires when one object of `classes` stays in the zone for `min_dwell_s` seconds or more."""

    kind: Literal["loitering"]
    min_dwell_s: float = Field(gt=0.0, le=86_400.0)
    same_object_iou: float = Field(default=0.3, gt=0.0, le=1.0)


@dataclass(frozen=True, slots=True)
class Sightings:
    """What a camera's last visits saw in the zone: one row per object (box, class, first and last seen), about
    170 bytes and 56 more per object."""

    rows: F64

    @classmethod
    def empty(cls) -> Sightings:
        return cls(np.zeros((0, _NCOLS), np.float64))


def _none_seen() -> Sightings:
    state = Sightings.empty()
    state.rows.flags.writeable = False
    return state


_NONE_SEEN = _none_seen()  # one shared state for every camera whose zone is empty


@dataclass(slots=True)
class _Dwell:
    """One track of a burst while it stays in the zone."""

    box: F64
    class_id: int
    first: float
    last: float
    confirmed: bool = False


@dataclass(slots=True)
class _Objects:
    """The objects in the zone at this visit: rows as in `Sightings`, and each one's index in the last frame."""

    rows: F64 = field(default_factory=lambda: np.zeros((0, _NCOLS), np.float64))
    last_index: IntArray = field(default_factory=lambda: np.zeros((0,), np.int64))


class Loitering:
    """A `LoiteringRule` bound to a model's labels."""

    def __init__(self, rule: LoiteringRule, matcher: ZoneMatcher, class_ids: list[int]) -> None:
        self.rule = rule
        self.matcher = matcher
        self._class_ids: IntArray = np.unique(np.asarray(class_ids, np.int64))
        low = min(_LOW_CONFIDENCE, rule.min_confidence)
        self.tracker = Tracker(TrackerConfig(high=rule.min_confidence, low=low))

    def evaluate(self, obs: Observation, state: object | None) -> Evaluation:
        across = obs.revisit_s < self.rule.min_dwell_s
        if len(obs.frames) == 1 and not across:
            reason = (
                f"a keyframe every {obs.revisit_s:g} s cannot show one object staying {self.rule.min_dwell_s:g} s: "
                "needs burst visits or revisit_s below min_dwell_s"
            )
            return Evaluation([self._verdict(obs, _Objects(), reason)])
        objects = self._in_burst(obs) if len(obs.frames) > 1 else self._in_frame(obs)
        if not across:
            return Evaluation([self._verdict(obs, objects)])
        prior = state if isinstance(state, Sightings) else Sightings.empty()
        objects, kept = self._carry(objects, prior, obs.at.timestamp() - 2.0 * obs.revisit_s)
        rows = np.concatenate([objects.rows, kept])
        return Evaluation([self._verdict(obs, objects)], Sightings(rows) if len(rows) else _NONE_SEEN)

    def _norm(self, obs: Observation, xyxy: NDArray[np.floating]) -> F64:
        scale = np.array([obs.width, obs.height, obs.width, obs.height], np.float64)
        out: F64 = xyxy.astype(np.float64) / scale
        return out

    def _in_frame(self, obs: Observation) -> _Objects:
        """A keyframe visit: every matching detection in the zone, seen once, now."""
        dets = obs.last.detections
        index = np.flatnonzero(self.matcher.match(obs.width, obs.height, dets)).astype(np.int64)
        rows = np.zeros((len(index), _NCOLS), np.float64)
        rows[:, 0:4] = self._norm(obs, dets.xyxy[index])
        rows[:, 4] = dets.class_id[index]
        rows[:, 5:7] = obs.at.timestamp()
        return _Objects(rows, index)

    def _in_burst(self, obs: Observation) -> _Objects:
        """Track over the burst; each confirmed track whose last sighting is in the zone, with its dwell."""
        tracks, dwell = Tracks.empty(), dict[int, _Dwell]()
        last_ids = np.zeros((0,), np.int64)
        for frame in obs.frames:
            dets = frame.detections
            keep = np.isin(dets.class_id, self._class_ids) & (dets.confidence >= self.tracker.config.low)
            keep &= dets.area >= self.rule.min_area * float(obs.width * obs.height)
            sub_idx = np.flatnonzero(keep)
            sub = dets[sub_idx]
            tracks, step = self.tracker.step(tracks, sub, frame.monotonic)
            inside = self.matcher.in_zone(obs.width, obs.height, sub)
            t = frame.captured_at.timestamp()
            for j, track_id in enumerate(step.ids.tolist()):
                _observe(dwell, track_id, bool(inside[j]), self._norm(obs, sub.xyxy[j]), int(sub.class_id[j]), t)
                if track_id in dwell and step.confirmed[j]:
                    dwell[track_id].confirmed = True
            last_ids = np.full(len(dets), -1, np.int64)
            last_ids[sub_idx] = step.ids
        found = [(tid, d) for tid, d in dwell.items() if d.confirmed]
        rows = np.array([[*d.box, d.class_id, d.first, d.last] for _, d in found], np.float64).reshape(-1, _NCOLS)
        index = np.array([_index_of(last_ids, tid) for tid, _ in found], np.int64)
        return _Objects(rows, index)

    def _carry(self, objects: _Objects, prior: Sightings, oldest: float) -> tuple[_Objects, F64]:
        """Match this visit's objects to earlier sightings (same class, IoU): their dwell starts at the earlier first
        sighting. Returns the objects and the unmatched earlier sightings still recent enough to keep."""
        old = prior.rows[prior.rows[:, 6] >= oldest]
        score = iou_matrix(objects.rows[:, 0:4], old[:, 0:4])
        score[objects.rows[:, 4][:, None] != old[:, 4][None, :]] = 0.0
        now_i, old_i = greedy_match(score, self.rule.same_object_iou)
        rows = objects.rows.copy()
        rows[now_i, 5] = np.minimum(rows[now_i, 5], old[old_i, 5])
        kept = np.delete(old, old_i, axis=0)
        return _Objects(rows, objects.last_index), kept

    def _verdict(self, obs: Observation, objects: _Objects, reason: str = "") -> Verdict:
        rule = self.rule
        dwell = objects.rows[:, 6] - objects.rows[:, 5]
        loiter = dwell >= rule.min_dwell_s
        longest = float(dwell.max()) if len(dwell) else 0.0
        subjects = objects.last_index[loiter & (objects.last_index >= 0)]
        count = int(loiter.sum())
        if not reason:
            what = self.matcher.describe(objects.rows[loiter, 4].astype(np.int64))
            reason = f"{what} in zone {rule.zone.name} for {rule.min_dwell_s:g} s or more (longest {longest:.0f} s)"
        return Verdict(
            rule_id=rule.id,
            camera_id=obs.camera_id,
            fired=count > 0,
            zone=rule.zone.name,
            subjects=np.sort(subjects),
            measures={"dwell_s": longest, "count": float(count)},
            reason=reason,
            overlay=self.matcher.overlay,
        )


def _observe(dwell: dict[int, _Dwell], track_id: int, inside: bool, box: F64, class_id: int, t: float) -> None:
    """One sighting of a track: in the zone it starts or extends its dwell, outside it ends it."""
    if track_id < 0:
        return
    if not inside:
        dwell.pop(track_id, None)
        return
    found = dwell.get(track_id)
    if found is None:
        dwell[track_id] = _Dwell(box, class_id, t, t)
    else:
        found.box, found.last = box, t


def _index_of(ids: IntArray, track_id: int) -> int:
    at = np.flatnonzero(ids == track_id)
    return int(at[0]) if len(at) else -1


def compile_rule(rule: LoiteringRule, ctx: CompileContext) -> Loitering | None:
    ids = ctx.class_ids(rule, rule.classes)
    return None if ids is None else Loitering(rule, ZoneMatcher(rule, ids, ctx.labels.names), ids)


KIND = KindSpec("loitering", LoiteringRule, compile_rule, summary="one object staying in a zone too long")
