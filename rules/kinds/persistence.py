"""`persistence`: the same stationary object present in `min_hits` of the last `window` visits, spanning at least
`min_span_s` (illegal parking 违章停车, street vending 占道经营, piled materials 乱堆物料).

Visits a minute apart cannot be tracked, so "the same object" is the same class family (car, truck and bus are
one vehicle by default) at an overlapping box (IoU >= `same_object_iou`) that also looks alike (a tiny greyscale
thumbnail of the box, correlated). Each object is its own incident (`key` `o<N>`). An object missed on
`gone_after_visits` visits in a row is gone: another object later parked in its place is a new object, and so
is one that looks different at the same place (a car swapped for another between two visits): the old one then
counts misses and is gone after `gone_after_visits`.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from core.geometry import iou_matrix
from core.types import Detections, Image, Observation, Verdict
from rules.kinds.base import CompileContext, Evaluation, KindSpec
from rules.schema import BaseRule, Name, Unit, ZoneFilter
from rules.zone import ZoneMatcher

logger = logging.getLogger(__name__)

THUMB = 8  # side of the appearance thumbnail: 64 bytes an object


class PersistenceRule(BaseRule, ZoneFilter):
    kind: Literal["persistence"]
    min_hits: int = Field(default=3, ge=1, le=64)
    window: int = Field(default=5, ge=1, le=64)
    min_span_s: float = Field(default=300.0, ge=0.0)
    same_object_iou: Unit = 0.5
    same_object_similarity: float = Field(default=0.3, ge=-1.0, le=1.0)
    gone_after_visits: int = Field(default=3, ge=1, le=64)
    families: tuple[tuple[Name, ...], ...] = (("car", "truck", "bus"),)
    max_objects: int = Field(default=64, ge=1, le=1024)


@dataclass(slots=True)
class _Object:
    ident: int
    family: int
    box: NDArray[np.float32]  # xyxy, normalised
    thumb: NDArray[np.uint8]
    first_seen: float  # epoch seconds
    last_seen: float
    history: int = 1  # one bit per visit, newest lowest
    misses: int = 0


@dataclass(slots=True)
class PersistenceState:
    objects: list[_Object] = field(default_factory=list)
    next_id: int = 1


def _thumb(image: Image, box: NDArray[np.float32]) -> NDArray[np.uint8]:
    h, w = image.shape[:2]
    # at least one pixel inside the picture, even for a box clipped to its edge
    x1, y1 = min(max(0, int(box[0] * w)), w - 1), min(max(0, int(box[1] * h)), h - 1)
    x2, y2 = min(w, max(x1 + 1, int(box[2] * w))), min(h, max(y1 + 1, int(box[3] * h)))
    crop = cv2.cvtColor(np.ascontiguousarray(image[y1:y2, x1:x2]), cv2.COLOR_BGR2GRAY)
    return np.asarray(cv2.resize(crop, (THUMB, THUMB), interpolation=cv2.INTER_AREA), np.uint8)


def similarity(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
    """Zero-mean normalised correlation of two thumbnails, -1..1; flat ones are alike only if equally bright."""
    fa, fb = a.astype(np.float32).ravel(), b.astype(np.float32).ravel()
    da, db = fa - fa.mean(), fb - fb.mean()
    norm = float(np.linalg.norm(da) * np.linalg.norm(db))
    if norm < 1e-3:
        return 1.0 if abs(float(fa.mean() - fb.mean())) < 16 else 0.0
    return float(da @ db) / norm


class Persistence:
    def __init__(self, rule: PersistenceRule, matcher: ZoneMatcher, family_of: dict[int, int]) -> None:
        self.rule = rule
        self.matcher = matcher
        self._family_of = family_of  # class id -> family number
        self._mask = (1 << rule.window) - 1

    def _candidates(self, obs: Observation) -> tuple[NDArray[np.int64], NDArray[np.float32], NDArray[np.int64]]:
        """(indices, normalised boxes, families) of the last frame's objects in the zone, one per physical object:
        overlapping boxes of one family (a van seen as both car and truck) count once, the most confident."""
        dets: Detections = obs.last.detections
        idx = np.flatnonzero(self.matcher.match(obs.width, obs.height, dets)).astype(np.int64)
        idx = idx[np.argsort(-dets.confidence[idx], kind="stable")]
        scale = np.array([obs.width, obs.height, obs.width, obs.height], np.float32)
        boxes = dets.xyxy[idx] / scale
        fams = np.array([self._family_of[int(c)] for c in dets.class_id[idx]], np.int64)
        if len(idx) <= 1:
            return idx, boxes, fams
        keep: list[int] = []
        overlaps = iou_matrix(boxes, boxes)
        for i in range(len(idx)):
            if not any(fams[j] == fams[i] and overlaps[i, j] >= self.rule.same_object_iou for j in keep):
                keep.append(i)
        return idx[keep], boxes[keep], fams[keep]

    def _match(
        self, objects: list[_Object], image: Image, boxes: NDArray[np.float32], fams: NDArray[np.int64]
    ) -> dict[int, tuple[int, NDArray[np.uint8]]]:
        """Candidate index -> (object index, how the object's place looks now). A candidate is the oldest object
        of its family at an overlapping box (IoU >= same_object_iou) whose place, in this picture, still looks like
        the object did; else it is new. The look is taken at the object's own box (where it was first seen), so a
        detection box that jitters from visit to visit does not matter."""
        if not objects or len(boxes) == 0:
            return {}
        ious = iou_matrix(boxes, np.stack([o.box for o in objects]))
        by_age = sorted(range(len(objects)), key=lambda o: objects[o].first_seen)
        pairs: dict[int, tuple[int, NDArray[np.uint8]]] = {}
        taken: set[int] = set()
        for c in range(len(boxes)):
            for o in by_age:
                obj = objects[o]
                if o in taken or obj.family != fams[c] or ious[c, o] < self.rule.same_object_iou:
                    continue
                look = _thumb(image, obj.box)
                if similarity(obj.thumb, look) >= self.rule.same_object_similarity:
                    pairs[c] = (o, look)
                    taken.add(o)
                    break
        return pairs

    def _step(self, state: PersistenceState, obs: Observation) -> list[tuple[_Object, int]]:
        """Fold this visit in: matched objects are seen again, other candidates become new objects, objects not
        seen count a miss. Returns (object, candidate index into the last frame) of every object seen."""
        idx, boxes, fams = self._candidates(obs)
        image, now = obs.last.image, obs.at.timestamp()
        pairs = self._match(state.objects, image, boxes, fams)
        seen: list[tuple[_Object, int]] = []
        for c in range(len(idx)):
            pair = pairs.get(c)
            if pair is not None:
                obj = state.objects[pair[0]]
                obj.history = ((obj.history << 1) | 1) & self._mask
                obj.thumb, obj.last_seen, obj.misses = pair[1], now, 0  # the box stays where it was first seen
            else:
                obj = _Object(state.next_id, int(fams[c]), boxes[c], _thumb(image, boxes[c]), now, now)
                state.next_id += 1
                state.objects.append(obj)
            seen.append((obj, int(idx[c])))
        seen_ids = {id(obj) for obj, _ in seen}
        for obj in state.objects:
            if id(obj) not in seen_ids:
                obj.history = (obj.history << 1) & self._mask
                obj.misses += 1
        state.objects = [o for o in state.objects if o.history and o.misses < self.rule.gone_after_visits]
        if len(state.objects) > self.rule.max_objects:  # forget the passers-by first, never the standing objects
            keep = sorted(state.objects, key=lambda o: (-o.history.bit_count(), o.first_seen))[: self.rule.max_objects]
            state.objects = [o for o in state.objects if any(o is k for k in keep)]
        return seen

    def evaluate(self, obs: Observation, state: object | None) -> Evaluation:
        current = state if isinstance(state, PersistenceState) else PersistenceState()
        verdicts = []
        for obj, index in self._step(current, obs):
            hits, span = obj.history.bit_count(), obj.last_seen - obj.first_seen
            fired = hits >= self.rule.min_hits and span >= self.rule.min_span_s
            label = self.matcher.describe(obs.last.detections.class_id[[index]])
            where = f"{label} in zone {self.rule.zone.name}"
            reason = f"{where} for {span:.0f} s, on {hits} of the last {self.rule.window} visits"
            verdicts.append(
                Verdict(
                    rule_id=self.rule.id,
                    camera_id=obs.camera_id,
                    fired=fired,
                    zone=self.rule.zone.name,
                    subjects=np.array([index], np.int64),
                    measures={"count": 1.0, "hits": float(hits), "span_s": span},
                    reason=reason,
                    key=f"o{obj.ident}",
                    overlay=self.matcher.overlay,
                )
            )
        return Evaluation(verdicts, current)


def _families(rule: PersistenceRule, ids: list[int], ctx: CompileContext) -> dict[int, int] | None:
    """Class id -> family number: the first family that names the class, else a family of its own."""
    family_of: dict[int, int] = {}
    counter = itertools.count()
    for f, family in enumerate(rule.families):
        family_ids = ctx.class_ids(rule, family, ("families", f))
        if family_ids is None:
            return None
        number = next(counter)
        for class_id in family_ids:
            family_of.setdefault(class_id, number)
    for class_id in ids:
        if class_id not in family_of:
            family_of[class_id] = next(counter)
    return family_of


def compile_rule(rule: PersistenceRule, ctx: CompileContext) -> Persistence | None:
    ids = ctx.class_ids(rule, rule.classes)
    family_of = _families(rule, ids or [], ctx)
    if rule.min_hits > rule.window:
        ctx.problem(rule, ("min_hits",), f"min_hits {rule.min_hits} is more than window {rule.window}")
        return None
    if ids is None or family_of is None:
        return None
    return Persistence(rule, ZoneMatcher(rule, ids, ctx.labels.names), family_of)


KIND = KindSpec("persistence", PersistenceRule, compile_rule, summary="the same object staying over many visits")
