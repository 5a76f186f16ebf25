"""The rule engine: compile a RuleSet against a model's labels, then evaluate each camera's detections."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import assert_never

import numpy as np
from numpy.typing import NDArray

from core.errors import ConfigError
from core.types import Detections, Verdict
from rules.arming import ArmingSchedule
from rules.loader import RuleSet
from rules.schema import Rule, ZoneIntrusionRule
from rules.zone import ZoneIntrusion

logger = logging.getLogger(__name__)

Compiled = ZoneIntrusion  # becomes a union as rule kinds are added


@dataclass(frozen=True, slots=True)
class _Entry:
    rule: Rule
    schedule: ArmingSchedule
    compiled: Compiled


class _Labels:
    def __init__(self, labels: Sequence[str]) -> None:
        self.names = tuple(labels)
        self.index: dict[str, int] = {}
        for i, name in enumerate(self.names):
            self.index.setdefault(name, i)

    def unknown(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown class {name!r}: not among the model's {len(self.names)} labels{hint}"


def _class_ids(ruleset: RuleSet, rule: ZoneIntrusionRule, labels: _Labels, problems: list[str]) -> list[int]:
    ids = []
    for i, name in enumerate(rule.classes):
        if name in labels.index:
            ids.append(labels.index[name])
        else:
            problems.append(f"{ruleset.locate(rule.id, ('classes', i))}: {labels.unknown(name)}")
    return ids


def _compile(ruleset: RuleSet, rule: Rule, labels: _Labels, problems: list[str]) -> Compiled | None:
    if isinstance(rule, ZoneIntrusionRule):
        before = len(problems)
        ids = _class_ids(ruleset, rule, labels, problems)
        return ZoneIntrusion(rule, ids, labels.names) if len(problems) == before else None
    assert_never(rule)


class RuleEngine:
    """Every rule of a RuleSet, compiled. Disabled rules are checked but never evaluated.

    Raises ConfigError (every problem as `file:line:col: path: message`) when a rule names a class that the
    model's labels lack.
    """

    def __init__(self, ruleset: RuleSet, labels: Sequence[str]) -> None:
        self.ruleset = ruleset
        names = _Labels(labels)
        problems: list[str] = []
        entries = []
        for rule in ruleset.rules:
            compiled = _compile(ruleset, rule, names, problems)
            if compiled is not None and rule.enabled:
                entries.append(_Entry(rule, ArmingSchedule.build(rule.armed, rule.timezone), compiled))
        if problems:
            raise ConfigError(problems)
        self._entries = tuple(entries)
        self._by_id = {e.rule.id: e for e in entries}
        self._by_camera: dict[str, tuple[_Entry, ...]] = {}

    def rule(self, rule_id: str) -> Rule:
        """The enabled rule with this id; KeyError when there is none."""
        return self._by_id[rule_id].rule

    def zone_pixels(self, rule_id: str, width: int, height: int) -> NDArray[np.float64] | None:
        """The rule's zone polygon in pixels of a `width` x `height` frame, for drawing evidence."""
        rule = self._by_id[rule_id].rule
        polygon = np.asarray(rule.zone.polygon, np.float64)
        return polygon * np.array([width, height], np.float64)

    def _entries_for(self, camera_id: str) -> tuple[_Entry, ...]:
        found = self._by_camera.get(camera_id)
        if found is None:
            found = tuple(e for e in self._entries if e.rule.covers(camera_id))
            self._by_camera[camera_id] = found
        return found

    def rules_for(self, camera_id: str) -> tuple[Rule, ...]:
        """The enabled rules that apply to this camera, armed or not, in file order."""
        return tuple(e.rule for e in self._entries_for(camera_id))

    def evaluate(self, camera_id: str, width: int, height: int, detections: Detections, now: datetime) -> list[Verdict]:
        """One verdict, fired or not, per enabled rule that covers the camera and is armed at aware `now`."""
        return [
            e.compiled.evaluate(camera_id, width, height, detections)
            for e in self._entries_for(camera_id)
            if e.schedule.armed(now)
        ]
