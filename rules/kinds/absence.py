"""`absence`: nobody in a post zone for at least `min_absent_s` (岗位脱岗), while armed.

The absence is timed from the first visit that found the post empty. A visit that comes long after the one
before it (more than `max_gap_s`, e.g. the rule was disarmed overnight or the camera was offline) starts the
timing again, so an arming window that opens does not fire at once on yesterday's absence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
from pydantic import Field

from core.types import Observation, Verdict
from rules.kinds.base import CompileContext, Evaluation, KindSpec
from rules.schema import BaseRule, ZoneFilter
from rules.zone import ZoneMatcher

logger = logging.getLogger(__name__)


class AbsenceRule(BaseRule, ZoneFilter):
    kind: Literal["absence"]
    classes: tuple[str, ...] = Field(default=("person",), min_length=1)
    min_absent_s: float = Field(gt=0.0, le=7 * 86_400.0)
    min_present: int = Field(default=1, ge=1, le=100)  # fewer than this many in the zone counts as absent
    max_gap_s: float = Field(default=900.0, gt=0.0)


@dataclass(slots=True)
class AbsenceState:
    last_visit: datetime
    empty_since: datetime | None  # None: someone was there at the last visit


class Absence:
    def __init__(self, rule: AbsenceRule, matcher: ZoneMatcher) -> None:
        self.rule = rule
        self.matcher = matcher

    def _present(self, obs: Observation) -> int:
        """The most people seen in the zone in any frame of the visit: anyone seen means the post is manned."""
        return max(int(self.matcher.match(obs.width, obs.height, f.detections).sum()) for f in obs.frames)

    def evaluate(self, obs: Observation, state: object | None) -> Evaluation:
        prev = state if isinstance(state, AbsenceState) else None
        if prev is not None and (obs.at - prev.last_visit).total_seconds() > self.rule.max_gap_s:
            prev = None  # too long since the last look: what happened in between is unknown
        present = self._present(obs)
        if present >= self.rule.min_present:
            empty_since = None
        else:
            empty_since = obs.at if prev is None or prev.empty_since is None else prev.empty_since
        absent_s = 0.0 if empty_since is None else (obs.at - empty_since).total_seconds()
        fired = absent_s >= self.rule.min_absent_s
        name = self.rule.zone.name
        reason = f"post {name} empty for {absent_s:.0f} s" if empty_since is not None else f"{present} at post {name}"
        if obs.revisit_s >= self.rule.max_gap_s:
            gap = f"this camera's visits are {obs.revisit_s:g} s apart, max_gap_s is {self.rule.max_gap_s:g}"
            reason += f" (never fires: {gap})"
        verdict = Verdict(
            rule_id=self.rule.id,
            camera_id=obs.camera_id,
            fired=fired,
            zone=name,
            subjects=np.zeros((0,), np.int64),
            measures={"absent_s": absent_s, "count": float(present)},
            reason=reason,
            overlay=self.matcher.overlay,
        )
        return Evaluation([verdict], AbsenceState(obs.at, empty_since))


def compile_rule(rule: AbsenceRule, ctx: CompileContext) -> Absence | None:
    ids = ctx.class_ids(rule, rule.classes)
    return None if ids is None else Absence(rule, ZoneMatcher(rule, ids, ctx.labels.names))


KIND = KindSpec("absence", AbsenceRule, compile_rule, summary="a post zone empty for too long")
