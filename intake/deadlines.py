"""The "1-3-5" rule of 网格化 case handling as configuration per category, and the yellow and red cards it raises.

A reported case must be verified (accepted) within `verify_workdays` (1); a general case must be done within
`general_workdays` (3), else a yellow card (黄牌) to the street; a complex one within `complex_workdays` (5), else
a red card (红牌), escalated to the city level. A general case still open at the complex limit gets the red card
too. Working days are counted by `intake.calendar.WorkCalendar` (from the day after the report; a deadline is the
end of a working day). Per category, `categories` overrides any of the three by code prefix: a minor code
("0505") over its major class ("05"), over the defaults.

An extension (延期) adds working days to the due dates. A suspension (挂起) stops the clock: every deadline still
ahead when the case was suspended moves by the working time it spent suspended. `cards_due` gives the cards now
due that were not raised before, so a sweeper that runs it over and over raises each card once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from core.errors import ConfigError
from core.yamlconf import load_yaml_text, validation_problems
from intake.calendar import WorkCalendar
from intake.configcheck import Loc, raise_problems
from rules.categories import CategoryTable

logger = logging.getLogger(__name__)

Complexity = Literal["general", "complex"]
CardKind = Literal["yellow", "red"]
EscalateTo = Literal["street", "city"]
Workdays = Annotated[int, Field(ge=1, le=60, strict=True)]
CODE = re.compile(r"^[0-9]{2}([0-9]{2}){0,2}$")
ESCALATION: dict[CardKind, EscalateTo] = {"yellow": "street", "red": "city"}


@dataclass(frozen=True)
class Limits:
    """The working days one category gets: to verify, to finish a general case, to finish a complex one."""

    verify_workdays: int
    general_workdays: int
    complex_workdays: int


class DeadlineOverride(BaseModel):
    """A category's own limits; what it leaves out comes from its major class, then from the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    verify_workdays: Workdays | None = None
    general_workdays: Workdays | None = None
    complex_workdays: Workdays | None = None


def _order_problem(limits: Limits) -> str | None:
    if limits.verify_workdays > limits.general_workdays:
        return f"verify_workdays {limits.verify_workdays} is more than general_workdays {limits.general_workdays}"
    if limits.general_workdays > limits.complex_workdays:
        return (
            f"general_workdays {limits.general_workdays} is more than complex_workdays {limits.complex_workdays}: "
            "the yellow card must not come after the red one"
        )
    return None


class DeadlinePolicy(BaseModel):
    """`deadlines.yaml`: the 1-3-5 defaults and the per-category overrides, keyed by quoted category codes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    verify_workdays: Workdays = 1
    general_workdays: Workdays = 3
    complex_workdays: Workdays = 5
    categories: dict[str, DeadlineOverride] = Field(default_factory=dict)

    @field_validator("categories", mode="before")
    @classmethod
    def _codes(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        problems: list[tuple[Loc, str]] = []
        for code in value:
            if not isinstance(code, str):
                problems.append(((code,), f"a code read as the number {code}: quote codes, e.g. '05', '0505'"))
            elif not CODE.match(code):
                problems.append(((code,), f"{code!r} is not a category code (2, 4 or 6 digits, e.g. '0505')"))
        raise_problems("DeadlinePolicy", "category_code", problems)
        return value

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> DeadlinePolicy:
        table = info.context.get("categories") if isinstance(info.context, dict) else None
        problems: list[tuple[Loc, str]] = []
        default = _order_problem(self.limits_for(""))
        if default is not None:
            problems.append((("general_workdays",), default))
        for code in self.categories:
            if isinstance(table, CategoryTable) and not table.find(code):
                problems.append((("categories", code), f"{code} is not in the category table {table.name}"))
            problem = _order_problem(self.limits_for(code))
            if problem is not None:
                problems.append((("categories", code), f"for {code}, {problem}"))
        raise_problems("DeadlinePolicy", "deadline_policy", problems)
        return self

    def limits_for(self, category: str) -> Limits:
        """The defaults, overridden by the major class, then the minor class, then the third level."""
        limits = Limits(self.verify_workdays, self.general_workdays, self.complex_workdays)
        for length in (2, 4, 6):
            override = self.categories.get(category[:length]) if len(category) >= length else None
            if override is not None:
                limits = replace(limits, **override.model_dump(exclude_none=True))
        return limits


@dataclass(frozen=True)
class Deadlines:
    """A case's deadlines: verified by `verify_by`, done by `due_by`; `red_by` is when the red card comes (the
    complex limit: `due_by` itself for a complex case, later than `due_by` for a general one)."""

    verify_by: datetime
    due_by: datetime
    complexity: Complexity
    red_by: datetime

    def extended(self, workdays: int, calendar: WorkCalendar) -> Deadlines:
        """An extension (延期): `workdays` more working days on `due_by` and on `red_by`."""
        return replace(
            self,
            due_by=calendar.add_workdays(self.due_by, workdays),
            red_by=calendar.add_workdays(self.red_by, workdays),
        )

    def after_suspension(self, suspended_at: datetime, resumed_at: datetime, calendar: WorkCalendar) -> Deadlines:
        """A suspension (挂起) from `suspended_at` to `resumed_at`: every deadline still ahead at `suspended_at`
        moves by the working time the case spent suspended."""
        return Deadlines(
            verify_by=shift_for_suspension(self.verify_by, suspended_at, resumed_at, calendar),
            due_by=shift_for_suspension(self.due_by, suspended_at, resumed_at, calendar),
            complexity=self.complexity,
            red_by=shift_for_suspension(self.red_by, suspended_at, resumed_at, calendar),
        )


def compute_deadlines(
    policy: DeadlinePolicy, category: str, complexity: Complexity, reported_at: datetime, calendar: WorkCalendar
) -> Deadlines:
    """The deadlines of a case of `category` reported at `reported_at` (aware). Raises
    `intake.calendar.UnknownCalendarYear` when a deadline falls in a year the calendar does not know."""
    limits = policy.limits_for(category)
    general_by = calendar.add_workdays(reported_at, limits.general_workdays)
    complex_by = calendar.add_workdays(reported_at, limits.complex_workdays)
    return Deadlines(
        verify_by=calendar.add_workdays(reported_at, limits.verify_workdays),
        due_by=general_by if complexity == "general" else complex_by,
        complexity=complexity,
        red_by=complex_by,
    )


def shift_for_suspension(
    deadline: datetime, suspended_at: datetime, resumed_at: datetime, calendar: WorkCalendar
) -> datetime:
    """`deadline` moved by the working time from `suspended_at` to `resumed_at`; unchanged when it had already
    passed at `suspended_at` (suspending an overdue case does not make it on time)."""
    if resumed_at < suspended_at:
        raise ValueError(f"resumed at {resumed_at.isoformat()}, before it was suspended at {suspended_at.isoformat()}")
    if suspended_at >= deadline:
        return deadline
    return calendar.add_working_time(deadline, calendar.working_time_between(suspended_at, resumed_at))


@dataclass(frozen=True)
class Card:
    """A yellow (黄牌, to the street) or red (红牌, escalated to the city) card for a missed deadline."""

    kind: CardKind
    deadline: datetime
    overdue_by: timedelta
    escalate_to: EscalateTo


def cards_due(
    deadlines: Deadlines, *, state_is_done: bool, cards_already: Collection[str], now: datetime
) -> list[Card]:
    """The cards due at `now` and not in `cards_already`, yellow before red; none once the case is done. A
    general case gets a yellow card past `due_by` and a red one past `red_by`; a complex case only the red one."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"cards_due needs an aware `now`, got the naive {now.isoformat()}")
    if state_is_done:
        return []
    thresholds: list[tuple[CardKind, datetime]] = []
    if deadlines.complexity == "general":
        thresholds.append(("yellow", deadlines.due_by))
    thresholds.append(("red", deadlines.red_by))
    return [
        Card(kind=kind, deadline=at, overdue_by=now - at, escalate_to=ESCALATION[kind])
        for kind, at in thresholds
        if now > at and kind not in cards_already
    ]


def load_deadline_policy(path: Path | None = None, categories: CategoryTable | None = None) -> DeadlinePolicy:
    """`deadlines.yaml` at `path` (the 1-3-5 defaults when None); with `categories`, every code it names must be
    in that table. Problems are a ConfigError of `file:line:col: key: message` lines."""
    if path is None:
        return DeadlinePolicy()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}:1:1: cannot read: {exc.strerror}"]) from None
    data, node = load_yaml_text(text, str(path))
    try:
        policy = DeadlinePolicy.model_validate({} if data is None else data, context={"categories": categories})
    except ValidationError as exc:
        raise ConfigError(validation_problems(exc, node, str(path))) from None
    logger.info(
        "deadlines: %d-%d-%d working days, %d category overrides, from %s",
        policy.verify_workdays,
        policy.general_workdays,
        policy.complex_workdays,
        len(policy.categories),
        path,
    )
    return policy
