"""The rule engine: compile a RuleSet against a model's labels and the category table, then evaluate each
visit's observation against every rule that covers the camera, with that rule's state for that camera."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import numpy as np

from core.errors import ConfigError
from core.sensors import SensorObservation
from core.types import Detections, Observation, ObservedFrame, Verdict, VisitKind
from rules.arming import ArmingSchedule
from rules.categories import CategoryTable
from rules.exclusion import Exclusion, ExclusionTable
from rules.kinds.base import CompileContext, CompiledRule, Labels, SensorCompiledRule
from rules.registry import CameraRule, Rule, SensorRule, kind_of
from rules.ruleset import RuleSet
from rules.schema import ZoneFilter
from rules.state import InMemoryRuleState, RuleStateStore

logger = logging.getLogger(__name__)

_PLACE = re.compile(r":(\d+):(\d+): ")


@dataclass(frozen=True, slots=True)
class _Entry:
    rule: CameraRule
    fingerprint: str
    schedule: ArmingSchedule
    compiled: CompiledRule
    needs_motion: bool
    needs_pixels: bool


@dataclass(frozen=True, slots=True)
class _SensorEntry:
    rule: SensorRule
    fingerprint: str
    schedule: ArmingSchedule
    compiled: SensorCompiledRule
    ticks: bool


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """One rule's result for one visit. `armed` false: outside its arming windows, nothing was evaluated (its open
    incidents count the visit as one where nothing was seen)."""

    rule: Rule
    fingerprint: str
    armed: bool
    verdicts: list[Verdict]

    @property
    def fired(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.fired]


def _check_category(ctx: CompileContext, rule: Rule) -> None:
    if ctx.categories is not None and rule.category and not ctx.categories.find(rule.category):
        table = ctx.categories
        ctx.problem(rule, ("category",), f"category {rule.category!r} is not in {table.name} (version {table.version})")


def _line_col(problem: str) -> tuple[int, int]:
    """The line and column of a `file:line:col: ...` problem; (0, 0) for one that names no place."""
    found = _PLACE.search(problem)
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


def category_problems(ruleset: RuleSet, categories: CategoryTable) -> list[str]:
    """Rules naming a category code the table lacks, at their `file:line:col`."""
    ctx = CompileContext(ruleset, Labels(()), categories)
    for rule in ruleset.rules:
        _check_category(ctx, rule)
    return ctx.problems


class RuleEngine:
    """Every rule of a RuleSet, compiled. Disabled rules are checked but never evaluated.

    Raises ConfigError (every problem as `file:line:col: path: message`) when a rule names a class that the model's
    labels lack or a category that the table lacks. `state` keeps what rules remember across visits; pass the same
    store to the engine built after a hot reload so that unchanged rules keep theirs. `exclusions` are the confirmed
    suppression masks per (rule id, camera id): that rule never sees the detections anchored inside them.
    """

    def __init__(
        self,
        ruleset: RuleSet,
        labels: Sequence[str],
        *,
        categories: CategoryTable | None = None,
        state: RuleStateStore | None = None,
        exclusions: ExclusionTable | None = None,
    ) -> None:
        self.ruleset = ruleset
        self.state: RuleStateStore = state if state is not None else InMemoryRuleState()
        ctx = CompileContext(ruleset, Labels(labels), categories)
        entries: list[_Entry] = []
        sensor_entries: list[_SensorEntry] = []
        for rule in ruleset.rules:
            spec = kind_of(rule)
            before = len(ctx.problems)
            _check_category(ctx, rule)
            compiled = spec.compile_any(rule, ctx)
            ctx.problems[before:] = sorted(ctx.problems[before:], key=_line_col)
            if compiled is None or not rule.enabled:
                continue
            schedule = ArmingSchedule.build(rule.armed, rule.timezone)
            if spec.subject == "sensor":
                sensor_rule = cast(SensorRule, rule)  # the kind table says what each kind watches
                sensor_compiled = cast(SensorCompiledRule, compiled)
                sensor_entries.append(
                    _SensorEntry(sensor_rule, rule.fingerprint(), schedule, sensor_compiled, spec.ticks)
                )
            else:
                camera_rule, camera_compiled = cast(CameraRule, rule), cast(CompiledRule, compiled)
                entries.append(
                    _Entry(
                        camera_rule, rule.fingerprint(), schedule, camera_compiled, spec.needs_motion, spec.needs_pixels
                    )
                )
        if ctx.problems:
            raise ConfigError(ctx.problems)
        self._entries = tuple(entries)
        self._sensor_entries = tuple(sensor_entries)
        self._by_id: dict[str, Rule] = {e.rule.id: e.rule for e in entries}
        self._by_id |= {e.rule.id: e.rule for e in sensor_entries}
        self._by_camera: dict[str, tuple[_Entry, ...]] = {}
        self.exclusions: ExclusionTable = dict(exclusions or {})
        anchors = {e.rule.id: e.rule.anchor if isinstance(e.rule, ZoneFilter) else "center" for e in entries}
        self._exclusions = {
            (rule_id, camera_id): Exclusion(masks, anchors[rule_id])
            for (rule_id, camera_id), masks in self.exclusions.items()
            if rule_id in anchors and masks
        }
        self._by_sensor: dict[str, tuple[_SensorEntry, ...]] = {}

    @property
    def fingerprints(self) -> frozenset[str]:
        return frozenset(e.fingerprint for e in self._entries) | {e.fingerprint for e in self._sensor_entries}

    def rule(self, rule_id: str) -> Rule:
        """The enabled rule with this id; KeyError when there is none."""
        return self._by_id[rule_id]

    def _entries_for(self, camera_id: str) -> tuple[_Entry, ...]:
        found = self._by_camera.get(camera_id)
        if found is None:
            found = tuple(e for e in self._entries if e.rule.covers(camera_id))
            self._by_camera[camera_id] = found
        return found

    def rules_for(self, camera_id: str) -> tuple[Rule, ...]:
        """The enabled rules that apply to this camera, armed or not, in file order."""
        return tuple(e.rule for e in self._entries_for(camera_id))

    def _sensor_entries_for(self, sensor_id: str) -> tuple[_SensorEntry, ...]:
        found = self._by_sensor.get(sensor_id)
        if found is None:
            found = tuple(e for e in self._sensor_entries if e.rule.covers_sensor(sensor_id))
            self._by_sensor[sensor_id] = found
        return found

    def sensor_rules(self) -> tuple[SensorRule, ...]:
        """The enabled sensor rules, in file order."""
        return tuple(e.rule for e in self._sensor_entries)

    def sensor_rules_for(self, sensor_id: str) -> tuple[SensorRule, ...]:
        """The enabled sensor rules that apply to this sensor, armed or not, in file order."""
        return tuple(e.rule for e in self._sensor_entries_for(sensor_id))

    def observe_sensor(self, obs: SensorObservation) -> list[RuleOutcome]:
        """One outcome per enabled sensor rule that covers the sensor: every one for a reading, those whose kind
        judges the time passing (stale) for a tick. State is kept per (rule, sensor), like per (rule, camera)."""
        outcomes = []
        for e in self._sensor_entries_for(obs.sensor_id):
            if obs.reading is None and not e.ticks:
                continue
            if not e.schedule.armed(obs.at):
                outcomes.append(RuleOutcome(e.rule, e.fingerprint, False, []))
                continue
            state = self.state.get(e.fingerprint, obs.sensor_id)
            try:
                result = e.compiled.evaluate(obs, state)
            except Exception:  # loop boundary: one rule's failure is not the sensor's, nor the other rules'
                logger.exception("rule %s failed on sensor %s; its state is kept as it was", e.rule.id, obs.sensor_id)
                continue
            if result.state is not None:
                self.state.put(e.fingerprint, obs.sensor_id, result.state)
            outcomes.append(RuleOutcome(e.rule, e.fingerprint, True, result.verdicts))
        return outcomes

    def motion_problems(self, modes: Mapping[str, VisitKind]) -> tuple[list[str], list[str]]:
        """(errors, warnings) for rules that need several frames a visit on cameras that give one: a rule naming
        such a camera is an error; a `*` rule skips those cameras, which is a warning."""
        errors, warnings = [], []
        for e in self._entries:
            if not e.needs_motion:
                continue
            for i, cam in enumerate(e.rule.cameras):
                if cam != "*" and modes.get(cam) == "keyframe":
                    where = self.ruleset.locate(e.rule.id, ("cameras", i))
                    errors.append(f"{where}: camera {cam!r} is a keyframe camera; {e.rule.kind} needs mode: burst")
            still = sorted(c for c, m in modes.items() if m == "keyframe" and "*" in e.rule.cameras)
            if still:
                where = self.ruleset.locate(e.rule.id, ("cameras",))
                warnings.append(f"{where}: {e.rule.kind} skips keyframe cameras {', '.join(still)}")
        return errors, warnings

    def observe(self, obs: Observation, *, pixels: bool = True) -> list[RuleOutcome]:
        """One outcome per enabled rule that covers the camera (and can work on this kind of visit); with
        `pixels` false the frames carry no real picture, and kinds that judge the picture are skipped."""
        outcomes = []
        for e in self._entries_for(obs.camera_id):
            if (e.needs_motion and obs.kind == "keyframe") or (e.needs_pixels and not pixels):
                continue
            if not e.schedule.armed(obs.at):
                outcomes.append(RuleOutcome(e.rule, e.fingerprint, False, []))
                continue
            state = self.state.get(e.fingerprint, obs.camera_id)
            exclusion = self._exclusions.get((e.rule.id, obs.camera_id))
            try:
                seen = exclusion.apply(obs) if exclusion is not None else obs
                result = e.compiled.evaluate(seen, state)
            except Exception:  # loop boundary: one rule's failure is not the camera's, nor the other rules'
                logger.exception("rule %s failed on camera %s; its state is kept as it was", e.rule.id, obs.camera_id)
                continue
            if result.state is not None:
                self.state.put(e.fingerprint, obs.camera_id, result.state)
            outcomes.append(RuleOutcome(e.rule, e.fingerprint, True, result.verdicts))
        return outcomes

    def evaluate(self, camera_id: str, width: int, height: int, detections: Detections, now: datetime) -> list[Verdict]:
        """The verdicts of one keyframe visit without pixels, for rules armed at aware `now`; kinds that judge the
        picture itself are skipped, the others see a black one."""
        image = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (height, width, 3))
        obs = Observation(camera_id, "keyframe", (ObservedFrame(now, 0.0, detections, image),))
        return [v for outcome in self.observe(obs, pixels=False) for v in outcome.verdicts]
