"""What every rule kind provides, and what compiling one gets: the seam between the engine and the kinds.

A kind module holds its pydantic model (a `BaseRule` with `kind: Literal[...]`), a `compile_rule(rule, ctx)`
that resolves names against the model's labels and reports problems at their `file:line:col`, and the compiled
rule whose `evaluate(observation, state)` returns verdicts and the state to keep. Evaluation does no I/O: the
observation carries the frames and the time, the engine carries the state.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

from core.sensors import SensorObservation
from core.types import Observation, Verdict
from core.yamlconf import Loc
from rules.categories import CategoryTable
from rules.ruleset import RuleSet
from rules.schema import BaseRule, RuleCore, SensorRuleBase

logger = logging.getLogger(__name__)

R = TypeVar("R", bound=RuleCore)
Subject = Literal["camera", "sensor"]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The verdicts of one visit (fired or not), and the rule's new state for this camera (None: the engine keeps
    the state it had, if any; a kind that must forget returns an empty state of its own)."""

    verdicts: list[Verdict]
    state: object | None = None


class CompiledRule(Protocol):
    """A rule bound to a model's labels, ready to evaluate. Must be safe to share between threads."""

    @property
    def rule(self) -> BaseRule: ...

    def evaluate(self, obs: Observation, state: object | None) -> Evaluation: ...


class SensorCompiledRule(Protocol):
    """A sensor rule, ready to evaluate one reading (or a tick) of one sensor. Must be safe to share between
    threads. Its verdicts carry the sensor id where camera verdicts carry the camera id."""

    @property
    def rule(self) -> SensorRuleBase: ...

    def evaluate(self, obs: SensorObservation, state: object | None) -> Evaluation: ...


class Labels:
    """The model's labels, with the first index of each name and a close-match hint for typos."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.names = tuple(labels)
        self.index: dict[str, int] = {}
        for i, name in enumerate(self.names):
            self.index.setdefault(name, i)

    def unknown(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown class {name!r}: not among the model's {len(self.names)} labels{hint}"


@dataclass
class CompileContext:
    """What a kind's compile step may use, and where it reports problems (`file:line:col: path: message`)."""

    ruleset: RuleSet
    labels: Labels
    categories: CategoryTable | None = None
    problems: list[str] = field(default_factory=list)

    def problem(self, rule: RuleCore, loc: Loc, message: str) -> None:
        self.problems.append(f"{self.ruleset.locate(rule.id, loc)}: {message}")

    def class_ids(self, rule: BaseRule, names: Sequence[str], loc: Loc = ("classes",)) -> list[int] | None:
        """The label index of each name, or None after reporting every unknown one."""
        ids, ok = [], True
        for i, name in enumerate(names):
            if name in self.labels.index:
                ids.append(self.labels.index[name])
            else:
                self.problem(rule, (*loc, i), self.labels.unknown(name))
                ok = False
        return ids if ok else None


@dataclass(frozen=True, slots=True)
class KindSpec(Generic[R]):
    """One row of the kind table. `subject`: what the kind watches, cameras (its compile step gives a
    `CompiledRule`) or sensors (a `SensorCompiledRule`); `ticks`: a sensor kind that is also evaluated as time
    passes without readings (stale). `needs_motion`: the kind needs several frames per visit (burst or continuous
    cameras); on a keyframe camera it cannot work, which is reported when the rules are loaded. `needs_pixels`: the
    kind judges the picture itself (video quality), so evaluating detections alone skips it."""

    name: str
    model: type[R]
    compile: Callable[[R, CompileContext], CompiledRule | SensorCompiledRule | None]
    needs_motion: bool = False
    summary: str = ""
    needs_pixels: bool = False  # judges the picture itself, not only the detections
    # kinds whose state must outlive a restart (a learned baseline): state -> JSON-able dict, and back
    save_state: Callable[[object], dict[str, Any]] | None = None
    load_state: Callable[[dict[str, Any]], object] | None = None
    subject: Subject = "camera"
    ticks: bool = False

    def compile_any(self, rule: RuleCore, ctx: CompileContext) -> CompiledRule | SensorCompiledRule | None:
        if not isinstance(rule, self.model):
            raise TypeError(f"rule {rule.id!r} is a {type(rule).__name__}, not a {self.model.__name__}")
        return self.compile(rule, ctx)


AnyKind = KindSpec[Any]
