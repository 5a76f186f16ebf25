"""Cases: reports from grid workers' app, the hotline and citizens, camera and sensor incidents, and the
operators' actions that move them through the loop. Every action is checked against the caller's role and the
case's state, and audited."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CasesDep, OperatorDep, ViewerDep
from api.models import AUTH_ERRORS, Problem
from intake.case_model import ActionRequest, Case, CaseState, Source
from intake.case_store import CaseNotFoundError
from intake.store import ULID_PATTERN
from intake.workflow import ACTIONS, TransitionRefusedError, allowed_actions

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])

MAX_PAGE = 200
ActionName = Annotated[str, PathParam(pattern=r"^[a-z_]{1,32}$", description=", ".join(ACTIONS))]


class CaseView(BaseModel):
    """A case with the actions the caller may take on it now."""

    model_config = ConfigDict(frozen=True)

    case: Case
    allowed: list[str] = Field(description="actions this caller may take in the case's state")


class CasePage(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[Case]
    next: str | None = Field(description="cursor for the next (older) page; null on the last page")
    allowed: dict[str, list[str]] = Field(
        default_factory=dict, description="per case id: the actions this caller may take in its state"
    )


# FastAPI's answer, before any check of the caller, to a body that is not UTF-8 (a body that is not JSON: 422)
UNPARSABLE: dict[int | str, dict[str, object]] = {400: {"model": Problem, "description": "a body that cannot be read"}}


class Refused(BaseModel):
    """A refused action: why, and the actions the caller may take instead."""

    detail: str
    allowed: list[str]


@router.get("", operation_id="list_cases", responses=AUTH_ERRORS)
def list_cases(
    caller: ViewerDep,
    cases: CasesDep,
    state: Annotated[CaseState | None, Query()] = None,
    source: Annotated[Source | None, Query()] = None,
    category: Annotated[str | None, Query(pattern=r"^[0-9]{2,6}$", description="code or its prefix")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    before: Annotated[str | None, Query(pattern=ULID_PATTERN, description="cursor: `next`")] = None,
) -> CasePage:
    rows = cases.list(state=state, source=source, category=category, limit=limit + 1, before=before)
    items = rows[:limit]
    allowed = {c.id: allowed_actions(c.state, caller.role) for c in items}
    return CasePage(items=items, next=items[-1].id if len(rows) > limit else None, allowed=allowed)


@router.get("/{case_id}", operation_id="get_case", responses={404: {"model": Problem}, **AUTH_ERRORS})
def get_case(caller: ViewerDep, cases: CasesDep, case_id: Annotated[str, PathParam(pattern=ULID_PATTERN)]) -> CaseView:
    case = cases.get(case_id)
    if case is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"case {case_id} not found")
    return CaseView(case=case, allowed=allowed_actions(case.state, caller.role))


@router.post(
    "/{case_id}/actions/{action}",
    operation_id="act_on_case",
    response_model=CaseView,
    responses={404: {"model": Problem}, 409: {"model": Refused}, 403: {"model": Refused}, **UNPARSABLE, **AUTH_ERRORS},
)
def act_on_case(
    caller: OperatorDep,
    cases: CasesDep,
    case_id: Annotated[str, PathParam(pattern=ULID_PATTERN)],
    action: ActionName,
    request: ActionRequest | None = None,
) -> CaseView | JSONResponse:
    """Take `action` (accept, file, dispatch, handled, check, close, rework, extend, false_alarm, ...). Refused
    with 409 when the case's state does not allow it, 403 when the caller's role does not; both list what the
    caller may do instead."""
    try:
        case = cases.transition(
            case_id, action, request or ActionRequest(), actor=caller.name, role=caller.role, at=datetime.now(UTC)
        )
    except CaseNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"case {case_id} not found") from None
    except TransitionRefusedError as exc:
        code = status.HTTP_403_FORBIDDEN if exc.forbidden else status.HTTP_409_CONFLICT
        return JSONResponse(Refused(detail=str(exc), allowed=exc.allowed).model_dump(), status_code=code)
    return CaseView(case=case, allowed=allowed_actions(case.state, caller.role))
