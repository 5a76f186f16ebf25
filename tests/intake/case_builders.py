"""Cases built through the case store as operators move them round the loop, at times the test chooses; shared by
the intake's and the API's statistics tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from intake.case_model import ActionRequest, Case, CaseCreate, Reporter, Source
from intake.case_store import CaseStore

LOCAL = ZoneInfo("Asia/Shanghai")
HOUR = timedelta(hours=1)

# district, street, community, grid
NANJING_EAST = ["黄浦区", "南京东路街道", "贵州路社区", "贵州路一网格"]
BUND = ["黄浦区", "外滩街道", "中山东一路社区", "中山东一路二网格"]
NANJING_WEST = ["静安区", "南京西路街道", "威海路社区", "威海路三网格"]

TO_HANDLING = ("accept", "file", "dispatch", "start")
TO_CHECKING = ("handled", "check")


def report(
    store: CaseStore,
    sender: str,
    at: datetime,
    *,
    source: Source = Source.grid_worker,
    category: str = "0501",
    grid_path: Sequence[str] = (),
    due_by: datetime | None = None,
    camera: str = "",
    rule: str = "",
) -> Case:
    """A report made at `at`; `due_by` set as the deadline rules would have, none when it is None."""
    create = CaseCreate(
        sender_id=sender, source=source, category=category, reporter=Reporter(camera_id=camera, rule_id=rule)
    )
    extra: dict[str, object] = {"grid_path": list(grid_path)}
    if due_by is not None:
        extra["due_by"] = due_by
    case, created = store.create(create, actor="gw-0117", role="operator", at=at, **extra)
    assert created
    return case


def act(store: CaseStore, case: Case, actions: Sequence[str], at: datetime, step: timedelta = HOUR) -> Case:
    """Take `actions` one after the other, the first at `at`, each `step` after the one before; the last at
    `at + (len(actions) - 1) * step`."""
    for i, action in enumerate(actions):
        request = ActionRequest(
            department="城管执法中队" if action == "dispatch" else "",
            workdays=2 if action == "extend" else 0,
        )
        case = store.transition(case.id, action, request, actor="operator-1", role="operator", at=at + i * step)
    return case


def close_at(store: CaseStore, case: Case, closed_at: datetime, *, rework: bool = False) -> Case:
    """Round the whole loop (with a failed check and a second round when `rework`), closed at `closed_at`."""
    actions = [*TO_HANDLING, *TO_CHECKING]
    if rework:
        actions += ["rework", "start", *TO_CHECKING]
    actions.append("close")
    return act(store, case, actions, closed_at - (len(actions) - 1) * HOUR)
