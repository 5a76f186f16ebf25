"""`video_quality`: video-quality diagnosis (视频质量诊断) of each visit's picture. Checks: no signal, black,
frozen, blurred, covered and shifted. Each failing check is its own verdict keyed by the check's name, so each
problem is its own incident; a visit where every check passes gives one verdict that did not fire.

Black and no signal judge the picture alone; when either holds, the picture carries nothing to judge and the
other checks are skipped. Frozen compares the picture with the previous visit's. Covered, blurred and shifted
compare it with the camera's reference view, learned over its first `reference_visits` visits with a picture;
until then they are not judged. Thresholds and their defaults are measured in docs/benchmarks.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from core.types import Observation, Overlay, Verdict
from rules.kinds.base import CompileContext, Evaluation, KindSpec
from rules.quality import (
    CELLS,
    Picture,
    Reference,
    Region,
    aligned_similarity,
    bounding_region,
    cell_regions,
    cell_similarity,
    change,
    covered_cells,
    measure,
    offset,
    sharpness_ratio,
    similarity,
    visible_cells,
)
from rules.quality_state import QualityState, load_state, save_state
from rules.schema import BaseRule

logger = logging.getLogger(__name__)

Check = Literal["no_signal", "black", "frozen", "blurred", "covered", "shifted"]
CHECKS: tuple[Check, ...] = get_args(Check)
MIN_VISIBLE_CELLS = 6  # of 48: below this, too little of the view is clear to judge sharpness or a shift


class VideoQualityRule(BaseRule):
    """Video-quality diagnosis: which checks run, and the threshold of each."""

    kind: Literal["video_quality"]
    checks: tuple[Check, ...] = Field(default=CHECKS, min_length=1)
    reference_visits: int = Field(default=3, ge=1, le=1000)
    black_max_luma: float = Field(default=25.0, ge=0.0, le=255.0)
    no_signal_min_share: float = Field(default=0.8, gt=0.0, le=1.0)
    frozen_max_change: float = Field(default=0.19, ge=0.0, le=255.0)
    frozen_visits: int = Field(default=3, ge=2, le=1000)
    blurred_min_ratio: float = Field(default=0.2, gt=0.0, lt=1.0)
    covered_min_share: float = Field(default=0.3, gt=0.0, le=1.0)
    covered_texture_ratio: float = Field(default=0.25, gt=0.0, lt=1.0)
    covered_dark_ratio: float = Field(default=0.4, ge=0.0, lt=1.0)
    shifted_min_similarity: float = Field(default=0.55, gt=0.0, lt=1.0)
    # judge the picture at most this often per camera; the visits between repeat the last judgement. Picture
    # faults last for minutes to days, and judging costs about 0.8 ms a visit at 768x576
    check_every_s: float = Field(default=300.0, ge=0.0, le=86_400.0)

    @field_validator("checks")
    @classmethod
    def _once_each(cls, checks: tuple[Check, ...]) -> tuple[Check, ...]:
        twice = sorted({c for c in checks if checks.count(c) > 1}, key=CHECKS.index)
        if twice:
            raise PydanticCustomError(
                "check_repeated", "check {check} is listed more than once", {"check": repr(twice[0])}
            )
        return checks


@dataclass(frozen=True, slots=True)
class Finding:
    """One failed check: its figures with the threshold, the reason in words, the regions its evidence draws."""

    check: Check
    measures: dict[str, float]
    reason: str
    regions: tuple[Region, ...] = ()


@dataclass(frozen=True, slots=True)
class Judgement:
    """What one visit showed: every figure measured, the failed checks, a note on what was not judged."""

    figures: dict[str, float]
    findings: tuple[Finding, ...]
    note: str
    state: QualityState


@dataclass
class _Visit:
    """One visit being judged: the picture, the figures measured so far, and what failed."""

    pic: Picture
    figures: dict[str, float]
    findings: list[Finding]


class VideoQuality:
    """A `VideoQualityRule`, ready to evaluate. Its state per camera is a `QualityState`."""

    def __init__(self, rule: VideoQualityRule) -> None:
        self.rule = rule
        self.checks = frozenset(rule.checks)

    def evaluate(self, obs: Observation, state: object | None) -> Evaluation:
        now = obs.at.timestamp()
        if isinstance(state, QualityState) and 0.0 <= now - state.checked_at < self.rule.check_every_s:
            # the last judgement, repeated: it keeps its incidents open but confirms nothing and shows no new picture
            return Evaluation([replace(v, fresh=False) for v in state.verdicts], state)
        judged = self.judge(obs, state)
        verdicts = self._verdicts(obs, judged)
        return Evaluation(verdicts, replace(judged.state, checked_at=now, verdicts=tuple(verdicts)))

    def judge(self, obs: Observation, state: object | None) -> Judgement:
        """Every figure of the visit's last frame, the checks that failed, and the camera's new state."""
        before = state if isinstance(state, QualityState) else QualityState()
        pic = measure(obs.last.image)
        visit = _Visit(pic, {"mean_luma": pic.mean, "uniform_share": pic.uniform_share}, [])
        gone = self._blank(visit)
        same_visits = self._frozen(visit, before, gone)
        reference, note = before.reference, ""
        if gone:
            note = "the picture is black or one flat colour: the other checks are skipped"
        elif reference is None or reference.visits < self.rule.reference_visits:
            reference = Reference.first(pic) if reference is None else reference.add(pic)
            note = f"learning the reference view: {reference.visits} of {self.rule.reference_visits} visits"
        else:
            self._against_reference(visit, reference)
        after = QualityState(reference, pic.thumb, same_visits)
        findings = tuple(sorted(visit.findings, key=lambda f: CHECKS.index(f.check)))
        return Judgement(visit.figures, findings, note, after)

    def _blank(self, visit: _Visit) -> bool:
        """Black and no signal; true when the picture is either, whether or not those checks are on."""
        pic, rule = visit.pic, self.rule
        black = pic.mean <= rule.black_max_luma
        flat = pic.uniform_share >= rule.no_signal_min_share
        if black and "black" in self.checks:
            reason = f"black picture: mean brightness {pic.mean:.1f} of 255, at most {rule.black_max_luma:g} is black"
            visit.findings.append(Finding("black", {"mean_luma": pic.mean, "max": rule.black_max_luma}, reason))
        elif flat and "no_signal" in self.checks:
            reason = (
                f"no signal: {pic.uniform_share:.0%} of the picture is one flat colour (at least "
                f"{rule.no_signal_min_share:.0%} is a no-signal screen)"
            )
            measures = {"uniform_share": pic.uniform_share, "min": rule.no_signal_min_share}
            visit.findings.append(Finding("no_signal", measures, reason))
        return black or flat

    def _frozen(self, visit: _Visit, before: QualityState, gone: bool) -> int:
        """Visits in a row showing the same picture; a finding once they reach `frozen_visits`."""
        if before.previous is None:
            return 1
        rule = self.rule
        moved = change(before.previous, visit.pic.thumb)
        same_visits = before.same_visits + 1 if moved <= rule.frozen_max_change else 1
        visit.figures |= {"change": moved, "same_visits": float(same_visits)}
        if not gone and "frozen" in self.checks and same_visits >= rule.frozen_visits:
            reason = (
                f"frozen picture: the same picture on {same_visits} visits in a row (it changed {moved:.2f} grey "
                f"levels since the last visit; at most {rule.frozen_max_change:g} is unchanged)"
            )
            measures = {"change": moved, "max": rule.frozen_max_change, "same_visits": float(same_visits)}
            visit.findings.append(Finding("frozen", measures, reason))
        return same_visits

    def _against_reference(self, visit: _Visit, ref: Reference) -> None:
        """Covered, shifted and blurred. A view that moved no longer lines up with the reference cell by cell:
        then covered is not judged and sharpness is compared over the whole picture."""
        pic, rule = visit.pic, self.rule
        covered = covered_cells(pic, ref, rule.covered_texture_ratio, rule.covered_dark_ratio)
        share = float(covered.mean())
        visit.figures["covered_share"] = share
        visible = visible_cells(covered) if covered.any() else np.ones_like(covered)
        if int(visible.sum()) < MIN_VISIBLE_CELLS:
            moved = False
        elif moved := self._shifted(visit, ref, visible):
            visible = np.ones_like(covered)
        if not moved and "covered" in self.checks and share >= rule.covered_min_share:
            reason = (
                f"view covered: {share:.0%} of the picture lost its detail against the reference view "
                f"({int(covered.sum())} of {CELLS} cells; from {rule.covered_min_share:.0%} it is covered)"
            )
            measures = {"covered_share": share, "min": rule.covered_min_share}
            visit.findings.append(Finding("covered", measures, reason, cell_regions(covered)))
        if int(visible.sum()) >= MIN_VISIBLE_CELLS:
            self._blurred(visit, ref, visible)

    def _blurred(self, visit: _Visit, ref: Reference, visible: NDArray[np.bool_]) -> None:
        rule = self.rule
        ratio = sharpness_ratio(visit.pic, ref, visible)
        visit.figures["sharpness_ratio"] = ratio
        if "blurred" in self.checks and ratio < rule.blurred_min_ratio:
            reason = (
                f"blurred picture: sharpness {ratio:.0%} of this camera's reference view "
                f"(below {rule.blurred_min_ratio:.0%} is blurred)"
            )
            measures = {"sharpness_ratio": ratio, "min": rule.blurred_min_ratio}
            visit.findings.append(Finding("blurred", measures, reason))

    def _shifted(self, visit: _Visit, ref: Reference, visible: NDArray[np.bool_]) -> bool:
        """Whether the view moved from the reference (whether or not the check is on); a finding if it is on."""
        rule = self.rule
        score = similarity(visit.pic, ref, visible)
        visit.figures["similarity"] = score
        moved = score < rule.shifted_min_similarity
        if not moved or "shifted" not in self.checks:
            return moved
        dx, dy = offset(visit.pic, ref)
        measures = {"similarity": score, "min": rule.shifted_min_similarity}
        if aligned_similarity(visit.pic, ref, dx, dy) >= rule.shifted_min_similarity:
            measures |= {"dx": dx, "dy": dy}
            across, down = ("left" if dx < 0 else "right"), ("up" if dy < 0 else "down")
            how = f"the picture moved about {abs(dx):.0%} {across} and {abs(dy):.0%} {down}"
        else:
            how = "the camera turned, zoomed or points elsewhere (no pan or tilt alone explains it)"
        changed = (cell_similarity(visit.pic, ref) < rule.shifted_min_similarity) & visible
        reason = (
            f"view shifted from the reference: similarity {score:.2f} to the reference view (below "
            f"{rule.shifted_min_similarity:g} is shifted); {how}; zones drawn on the old view may no longer fit"
        )
        visit.findings.append(Finding("shifted", measures, reason, bounding_region(changed)))
        return True

    def _verdicts(self, obs: Observation, judged: Judgement) -> list[Verdict]:
        rule_id, camera = self.rule.id, obs.camera_id
        if not judged.findings:
            reason = judged.note or f"picture ok: {', '.join(self.rule.checks)} pass"
            return [Verdict(rule_id, camera, False, measures=dict(judged.figures), reason=reason)]
        return [
            Verdict(
                rule_id,
                camera,
                True,
                measures=f.measures,
                reason=f.reason,
                key=f.check,
                overlay=Overlay(regions=f.regions, note=f.check),
            )
            for f in judged.findings
        ]


def compile_rule(rule: VideoQualityRule, ctx: CompileContext) -> VideoQuality:
    return VideoQuality(rule)


KIND = KindSpec(
    "video_quality",
    VideoQualityRule,
    compile_rule,
    summary="no signal, black, frozen, blurred, covered or shifted picture",
    save_state=save_state,
    load_state=load_state,
    needs_pixels=True,
)
