"""`crowd`: at least `min_count` matching detections in the zone (人员聚集). For a burst, the count is the median
over its frames, so one frame's double detections do not make a crowd. Confirm it over visits with `confirm`
(k of the last m visits, default 2 of 3): a crowd is a standing condition, not a passer-by."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
from pydantic import Field

from core.types import Observation, Verdict
from rules.kinds.base import CompileContext, Evaluation, KindSpec
from rules.schema import BaseRule, Confirm, ZoneFilter
from rules.zone import ZoneMatcher

logger = logging.getLogger(__name__)


class CrowdRule(BaseRule, ZoneFilter):
    """Fires while the zone holds `min_count` or more; one incident per (rule, camera, zone)."""

    kind: Literal["crowd"]
    min_count: int = Field(ge=2, le=10_000)
    confirm: Confirm = Field(default_factory=lambda: Confirm(hits=2, of=3))


class Crowd:
    def __init__(self, rule: CrowdRule, matcher: ZoneMatcher) -> None:
        self.rule = rule
        self.matcher = matcher

    def evaluate(self, obs: Observation, state: object | None) -> Evaluation:
        masks = [self.matcher.match(obs.width, obs.height, f.detections) for f in obs.frames]
        counts = [int(m.sum()) for m in masks]
        count, best = _median_frame(counts)
        subjects = np.flatnonzero(masks[best]).astype(np.int64)
        fired = count >= self.rule.min_count
        what = self.matcher.describe(obs.frames[best].detections.class_id[subjects])
        reason = f"{what} in zone {self.rule.zone.name}" + ("" if fired else f" (crowd from {self.rule.min_count})")
        verdict = Verdict(
            rule_id=self.rule.id,
            camera_id=obs.camera_id,
            fired=fired,
            zone=self.rule.zone.name,
            subjects=subjects,
            measures={"count": float(count)},
            reason=reason,
            frame=best,
            overlay=self.matcher.overlay,
        )
        return Evaluation([verdict])


def _median_frame(counts: list[int]) -> tuple[int, int]:
    """The median count (the lower middle one for an even number of frames) and the latest frame that has it, so
    the evidence shows what was counted."""
    if len(counts) == 1:
        return counts[0], 0
    count = sorted(counts)[(len(counts) - 1) // 2]
    return count, len(counts) - 1 - counts[::-1].index(count)


def compile_rule(rule: CrowdRule, ctx: CompileContext) -> Crowd | None:
    ids = ctx.class_ids(rule, rule.classes)
    return None if ids is None else Crowd(rule, ZoneMatcher(rule, ids, ctx.labels.names))


KIND = KindSpec("crowd", CrowdRule, compile_rule, summary="a count in a zone at or above a threshold")
