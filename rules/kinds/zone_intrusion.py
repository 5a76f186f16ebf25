"""`zone_intrusion`: the electronic fence (电子围栏). Fires while at least `min_count` matching detections are in
the zone; one incident per (rule, camera, zone) covers everyone inside it."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
from pydantic import Field

from core.types import Observation, Verdict
from rules.kinds.base import CompileContext, Evaluation, KindSpec
from rules.schema import BaseRule, ZoneFilter
from rules.zone import ZoneMatcher

logger = logging.getLogger(__name__)


class ZoneIntrusionRule(BaseRule, ZoneFilter):
    """Electronic fence: fires when at least `min_count` matching detections are in the zone."""

    kind: Literal["zone_intrusion"]
    min_count: int = Field(default=1, ge=1)


class ZoneIntrusion:
    """A `ZoneIntrusionRule` bound to a model's labels. Stateless: each visit is judged on its own frame."""

    def __init__(self, rule: ZoneIntrusionRule, matcher: ZoneMatcher) -> None:
        self.rule = rule
        self.matcher = matcher

    def evaluate(self, obs: Observation, state: object | None) -> Evaluation:
        frame = obs.last
        dets = frame.detections
        mask = self.matcher.match(obs.width, obs.height, dets)
        subjects = np.flatnonzero(mask).astype(np.int64)
        count = len(subjects)
        fired = count >= self.rule.min_count
        reason = f"{self.matcher.describe(dets.class_id[subjects])} in zone {self.rule.zone.name}"
        if not fired and count > 0:
            reason += f" (needs {self.rule.min_count})"
        verdict = Verdict(
            rule_id=self.rule.id,
            camera_id=obs.camera_id,
            fired=fired,
            zone=self.rule.zone.name,
            subjects=subjects,
            measures={"count": float(count)},
            reason=reason,
            overlay=self.matcher.overlay,
        )
        return Evaluation([verdict])


def compile_rule(rule: ZoneIntrusionRule, ctx: CompileContext) -> ZoneIntrusion | None:
    ids = ctx.class_ids(rule, rule.classes)
    return None if ids is None else ZoneIntrusion(rule, ZoneMatcher(rule, ids, ctx.labels.names))


KIND = KindSpec("zone_intrusion", ZoneIntrusionRule, compile_rule, summary="people or vehicles inside a zone")
