"""`line_crossing`: counts tracked objects whose anchor point crosses a line segment, by direction (越线).

The line runs from `a` to `b` in normalised coordinates (x right, y down). `in_side` names the side of the directed
line A->B that counts as "in", as seen on the picture by someone walking from A to B: with y pointing down, for A on
the left edge and B on the right edge (`a: [0, 0.5]`, `b: [1, 0.5]`), `left` is above the line (smaller y) and
`right` below it; for A at the top and B at the bottom, `left` is the right-hand part of the picture (larger x).
Scaling x and y by the frame size keeps sides and intersections, so the geometry is computed in normalised units.

A track crosses when its anchor changes side between two sightings AND the segment joining them meets the line
segment AB (a pass beyond either end does not count; touching an end point does). A point exactly on the line has
no side: the track keeps the side it came from, so touching the line and going back is no crossing. Each track
counts at most once per direction, so a track that jitters around the line counts one "in" and one "out" at most.
Only confirmed tracks count (seen on two frames). Within a burst the tracker runs over the burst's frames; on a
continuous stream the tracks and what each already crossed carry over from one evaluation to the next.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from core.types import Detections, IntArray, NormPoint, Observation, Overlay, Verdict
from rules.kinds.base import CompileContext, Evaluation, KindSpec
from rules.schema import BaseRule, Name, Point, Unit, _Strict
from rules.tracker import Step, Tracker, TrackerConfig, Tracks
from rules.zone import anchor_points

logger = logging.getLogger(__name__)

F64 = NDArray[np.float64]
Side = Literal["left", "right"]
Direction = Literal["in", "out", "both"]
PointAnchor = Literal["bottom_center", "center", "top_center"]
DIRECTIONS: tuple[Direction, ...] = get_args(Direction)

_LOW_CONFIDENCE = 0.1  # weak detections below a rule's min_confidence still keep its tracks alive
_MARK = 0.05  # how far from the line's middle the overlay's "in" point lies, in normalised units

# columns of LineState.memory: track id, side (+1 in, -1 out), anchor x, y when last strictly on that side,
# crossed in already (0/1), crossed out already (0/1)
_ID, _SIDE, _X, _Y, _IN, _OUT = range(6)


class Line(_Strict):
    """A directed line segment from `a` to `b`, in normalised frame coordinates."""

    name: Name
    a: Point
    b: Point

    @model_validator(mode="after")
    def _two_points(self) -> Line:
        if self.a == self.b:
            raise PydanticCustomError(
                "line_degenerate",
                "a and b are both {point}: a line needs two different points",
                {"point": f"[{self.a[0]:g}, {self.a[1]:g}]"},
            )
        return self


class LineCrossingRule(BaseRule):
    """Fires when a tracked object of `classes` crosses `line` in a `direction` that counts."""

    kind: Literal["line_crossing"]
    line: Line
    in_side: Side
    direction: Direction = "both"
    classes: tuple[Name, ...] = Field(min_length=1)
    min_confidence: Unit = 0.4
    anchor: PointAnchor = "bottom_center"


@dataclass(frozen=True, slots=True)
class LineState:
    """A continuous stream's tracks and, per live track, its side of the line and what it already crossed: about
    350 bytes and 130 more per live track; one shared state while nobody is in view."""

    tracks: Tracks
    memory: F64

    @classmethod
    def empty(cls) -> LineState:
        return cls(Tracks.empty(), np.zeros((0, 6), np.float64))


def _idle() -> LineState:
    state = LineState.empty()
    state.tracks.rows.flags.writeable = False
    state.memory.flags.writeable = False
    return state


_IDLE = _idle()


@dataclass(slots=True)
class _Visit:
    """What one evaluation found: crossings per direction, the frame of the last one that fires, and who crossed."""

    counts: dict[str, int] = field(default_factory=lambda: {"in": 0, "out": 0})
    fired_frame: int = -1
    crossers: set[int] = field(default_factory=set)


def _side(a: NormPoint, b: NormPoint, x: F64, y: F64) -> F64:
    """+1 right of A->B as seen on the picture (y down), -1 left, 0 on the line."""
    cross = (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0])
    out: F64 = np.sign(cross)
    return out


def _meets_segment(a: NormPoint, b: NormPoint, p: F64, q: F64) -> NDArray[np.bool_]:
    """Whether each segment p[i]->q[i], whose ends lie on opposite sides of line AB, meets the segment AB."""
    d = q - p
    o_a = d[:, 0] * (a[1] - p[:, 1]) - d[:, 1] * (a[0] - p[:, 0])
    o_b = d[:, 0] * (b[1] - p[:, 1]) - d[:, 1] * (b[0] - p[:, 0])
    meets: NDArray[np.bool_] = o_a * o_b <= 0.0
    return meets


class LineCrossing:
    """A `LineCrossingRule` bound to a model's labels."""

    def __init__(self, rule: LineCrossingRule, class_ids: list[int]) -> None:
        self.rule = rule
        self._class_ids: IntArray = np.unique(np.asarray(class_ids, np.int64))
        low = min(_LOW_CONFIDENCE, rule.min_confidence)
        self.tracker = Tracker(TrackerConfig(high=rule.min_confidence, low=low))
        self._in_sign = 1.0 if rule.in_side == "right" else -1.0
        self._counted = ("in", "out") if rule.direction == "both" else (rule.direction,)
        self.overlay = Overlay(lines=((rule.line.a, rule.line.b, self._in_point()),))

    def _in_point(self) -> NormPoint:
        (ax, ay), (bx, by) = self.rule.line.a, self.rule.line.b
        length = float(np.hypot(bx - ax, by - ay))
        nx, ny = -(by - ay) / length * self._in_sign, (bx - ax) / length * self._in_sign
        mx, my = (ax + bx) / 2.0 + _MARK * nx, (ay + by) / 2.0 + _MARK * ny
        return (min(max(mx, 0.0), 1.0), min(max(my, 0.0), 1.0))

    def _sides(self, dets: Detections, width: int, height: int) -> tuple[F64, F64]:
        """The normalised anchor points (n, 2) and their sides (+1 in, -1 out, 0 on the line)."""
        x, y = anchor_points(dets.xyxy, self.rule.anchor)
        points = np.stack([x / width, y / height], axis=1)
        return points, _side(self.rule.line.a, self.rule.line.b, x / width, y / height) * self._in_sign

    def evaluate(self, obs: Observation, state: object | None) -> Evaluation:
        current = state if obs.kind == "continuous" and isinstance(state, LineState) else _IDLE
        visit = _Visit()
        frame_ids: list[IntArray] = []
        for i, frame in enumerate(obs.frames):
            dets = frame.detections
            keep = np.flatnonzero(
                np.isin(dets.class_id, self._class_ids) & (dets.confidence >= self.tracker.config.low)
            )
            sub = dets[keep]
            tracks, step = self.tracker.step(current.tracks, sub, frame.monotonic)
            points, sides = self._sides(sub, obs.width, obs.height)
            memory, crossed = self._cross(current.memory, step, points, sides)
            memory = memory[np.isin(memory[:, _ID], tracks.ids)]
            current = LineState(tracks, memory)
            ids = np.full(len(dets), -1, np.int64)
            ids[keep] = step.ids
            frame_ids.append(ids)
            self._tally(visit, crossed, i)
        if len(current.tracks) == 0 and len(current.memory) == 0:
            current = _IDLE  # nobody in view: nothing to remember, and the shared state costs no memory
        return Evaluation([self._verdict(obs, visit, frame_ids)], current if obs.kind == "continuous" else None)

    def _tally(self, visit: _Visit, crossed: list[tuple[int, str]], frame: int) -> None:
        for track_id, direction in crossed:
            visit.counts[direction] += 1
            if direction in self._counted:
                visit.crossers.add(track_id)
                visit.fired_frame = frame

    def _cross(self, memory: F64, step: Step, points: F64, sides: F64) -> tuple[F64, list[tuple[int, str]]]:
        """The memory after one frame, and the (track id, direction) of each crossing counted for the first time."""
        memory = memory.copy()
        tracked = np.flatnonzero(step.ids >= 0)
        row_of = {int(t): r for r, t in enumerate(memory[:, _ID].tolist())}
        rows = np.array([row_of.get(int(step.ids[j]), -1) for j in tracked], np.int64)
        known, fresh = tracked[rows >= 0], tracked[(rows < 0) & (sides[tracked] != 0.0)]
        rows = rows[rows >= 0]
        changed = (sides[known] != 0.0) & (sides[known] != memory[rows, _SIDE])
        counted = changed & step.confirmed[known]
        cross_j, cross_r = known[counted], rows[counted]
        a, b = self.rule.line.a, self.rule.line.b
        meets = _meets_segment(a, b, memory[cross_r][:, [_X, _Y]], points[cross_j])
        cross_j, cross_r = cross_j[meets], cross_r[meets]
        crossed: list[tuple[int, str]] = []
        for j, r in zip(cross_j.tolist(), cross_r.tolist(), strict=True):
            direction, col = ("in", _IN) if sides[j] > 0 else ("out", _OUT)
            if memory[r, col] == 0.0:
                memory[r, col] = 1.0
                crossed.append((int(step.ids[j]), direction))
        moved = sides[known] != 0.0
        memory[rows[moved], _SIDE] = sides[known[moved]]
        memory[rows[moved], _X], memory[rows[moved], _Y] = points[known[moved], 0], points[known[moved], 1]
        born = np.zeros((len(fresh), 6), np.float64)
        born[:, _ID], born[:, _SIDE] = step.ids[fresh], sides[fresh]
        born[:, _X : _Y + 1] = points[fresh]
        return np.concatenate([memory, born]), crossed

    def _verdict(self, obs: Observation, visit: _Visit, frame_ids: list[IntArray]) -> Verdict:
        n_in, n_out = visit.counts["in"], visit.counts["out"]
        fired = visit.fired_frame >= 0
        subjects = np.zeros((0,), np.int64)
        if fired:
            subjects = np.flatnonzero(np.isin(frame_ids[visit.fired_frame], list(visit.crossers))).astype(np.int64)
        reason = f"{n_in} in, {n_out} out across line {self.rule.line.name}"
        if not fired and n_in + n_out > 0:
            reason += f" (counts {self.rule.direction} only)"
        if len(obs.frames) == 1 and obs.kind != "continuous":
            reason += ": one frame, and a crossing needs two sightings of one track"
        return Verdict(
            rule_id=self.rule.id,
            camera_id=obs.camera_id,
            fired=fired,
            zone=self.rule.line.name,
            subjects=subjects,
            measures={"in": float(n_in), "out": float(n_out)},
            reason=reason,
            frame=visit.fired_frame if fired else -1,
            overlay=self.overlay,
        )


def compile_rule(rule: LineCrossingRule, ctx: CompileContext) -> LineCrossing | None:
    ids = ctx.class_ids(rule, rule.classes)
    return None if ids is None else LineCrossing(rule, ids)


KIND = KindSpec(
    "line_crossing",
    LineCrossingRule,
    compile_rule,
    needs_motion=True,
    summary="tracked objects crossing a line, counted by direction",
)
