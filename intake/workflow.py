"""The closed loop as a table: which action moves a case from which states to which, and who may take it.

发现-上报 reported -> 受理 accepted -> 立案 filed -> 派遣 dispatched -> 处置 handling -> 反馈 handled -> 核查
checking -> 结案 closed, with 不予受理 rejected (a camera's false alarm too), 退回 returned, 返工 rework, 延期
extension, 挂起 suspended and 升级 escalated. Pure: the store applies a `Step` inside its transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.errors import GridwatchError
from core.settings import ApiRole, role_at_least
from intake.case_model import FINAL_STATES, ActionRequest, Case, CaseState

logger = logging.getLogger(__name__)

S = CaseState
OPEN_WORK = frozenset({S.accepted, S.filed, S.dispatched, S.handling, S.extension, S.rework, S.returned})


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    sources: frozenset[CaseState]
    target: CaseState | None  # None: back to the state before (resume)
    role: ApiRole
    label: str
    keeps_state: bool = False  # a note: audited (and delivered) without moving the case


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("accept", frozenset({S.reported}), S.accepted, "operator", "受理 accept"),
        Action("reject", frozenset({S.reported, S.accepted}), S.rejected, "operator", "不予受理 reject"),
        Action("false_alarm", frozenset({S.reported, S.accepted}), S.rejected, "operator", "误报 false alarm"),
        Action("duplicate", frozenset({S.reported, S.accepted, S.filed}), S.closed, "operator", "重复 duplicate"),
        Action("file", frozenset({S.accepted}), S.filed, "operator", "立案 file"),
        Action("dispatch", frozenset({S.filed, S.returned, S.escalated}), S.dispatched, "operator", "派遣 dispatch"),
        Action("send_back", frozenset({S.dispatched}), S.returned, "operator", "退回 return to dispatcher"),
        Action("start", frozenset({S.dispatched, S.rework}), S.handling, "operator", "处置 start handling"),
        Action("extend", frozenset({S.handling}), S.extension, "operator", "延期 extend"),
        Action("handled", frozenset({S.handling, S.extension}), S.handled, "operator", "处置完成 handled"),
        Action("check", frozenset({S.handled}), S.checking, "operator", "核查 check"),
        Action("rework", frozenset({S.checking}), S.rework, "operator", "返工 rework"),
        Action("close", frozenset({S.checking}), S.closed, "operator", "结案 close"),
        Action("suspend", OPEN_WORK, S.suspended, "admin", "挂起 suspend"),
        Action("resume", frozenset({S.suspended}), None, "admin", "恢复 resume"),
        Action("escalate", OPEN_WORK | {S.reported}, S.escalated, "admin", "升级 escalate"),
        Action("note", frozenset(CaseState) - FINAL_STATES, None, "operator", "备注 note", keeps_state=True),
    )
}


class TransitionRefusedError(GridwatchError):
    """An action the case's state or the caller's role does not allow; `allowed` lists what the caller may do."""

    def __init__(self, message: str, allowed: list[str], *, forbidden: bool = False) -> None:
        super().__init__(message)
        self.allowed = allowed
        self.forbidden = forbidden


def allowed_actions(state: CaseState, role: ApiRole) -> list[str]:
    """The actions a caller of `role` may take on a case in `state`, in loop order."""
    return [a.name for a in ACTIONS.values() if state in a.sources and role_at_least(role, a.role)]


@dataclass(frozen=True, slots=True)
class Step:
    """A checked transition: the action, the states before and after."""

    action: Action
    before: CaseState
    after: CaseState


def plan(case: Case, name: str, role: ApiRole, request: ActionRequest) -> Step:
    """The transition `name` would make, or TransitionRefusedError saying why and what is allowed instead."""
    action = ACTIONS.get(name)
    allowed = allowed_actions(case.state, role)
    if action is None:
        raise TransitionRefusedError(f"unknown action {name!r}", allowed)
    if not role_at_least(role, action.role):
        raise TransitionRefusedError(f"{name} needs the {action.role} role; you have {role}", allowed, forbidden=True)
    if case.state not in action.sources:
        raise TransitionRefusedError(f"case {case.number} is {case.state.value}: {name} is not allowed", allowed)
    if name == "dispatch" and not request.department:
        raise TransitionRefusedError("dispatch needs a department", allowed)
    if name == "extend" and request.workdays <= 0:
        raise TransitionRefusedError("extend needs workdays > 0", allowed)
    if name == "note" and not request.note.strip():
        raise TransitionRefusedError("note needs a note", allowed)
    if action.keeps_state:
        return Step(action, case.state, case.state)
    if name == "duplicate" and not request.duplicate_of:
        raise TransitionRefusedError("duplicate needs duplicate_of: the case it repeats", allowed)
    after = action.target if action.target is not None else _resumed(case)
    return Step(action, case.state, after)


def _resumed(case: Case) -> CaseState:
    """The state a suspended case was in before: the last audited state other than suspended."""
    for entry in reversed(case.audit):
        if entry.to_state == S.suspended and entry.from_state is not None:
            return entry.from_state
    return S.accepted
