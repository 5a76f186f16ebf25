"""Suppressions from false alarms: an operator proposes a mask over a false alarm's detection box for that rule and
camera; a rule author confirms (the rule then ignores detections there on that camera, from the runtime's next
rules poll) or rejects it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CasesDep, OperatorDep, RuleAuthorDep
from api.models import AUTH_ERRORS, Problem
from api.routes.cases import UNPARSABLE
from intake.store import ULID_PATTERN
from intake.suppressions import Decision, Suppression, SuppressionError, SuppressionState, SuppressionStore

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/suppressions", tags=["suppressions"])

REFUSALS: dict[int | str, dict[str, object]] = {
    404: {"model": Problem},
    409: {"model": Problem},
    503: {"model": Problem},
    **AUTH_ERRORS,
}
SuppressionId = Annotated[str, PathParam(pattern=ULID_PATTERN)]


def get_suppressions(cases: CasesDep) -> SuppressionStore:
    return SuppressionStore(cases)


SuppressionsDep = Annotated[SuppressionStore, Depends(get_suppressions)]


class SuppressionCreate(BaseModel):
    """Which false alarm, and which box of its annotated evidence (default: the one in the zone)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case_id: str = Field(pattern=ULID_PATTERN)
    box: int | None = Field(default=None, ge=0, le=999, description="index into the annotated evidence's boxes")


class SuppressionList(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[Suppression]


@router.post(
    "",
    operation_id="propose_suppression",
    status_code=status.HTTP_201_CREATED,
    responses={**UNPARSABLE, **REFUSALS},
)
def propose_suppression(caller: OperatorDep, store: SuppressionsDep, body: SuppressionCreate) -> Suppression:
    """A mask over the box, grown by a tenth on each side, for the case's rule and camera, in state `proposed`.
    The case must be a camera rule's case marked as a false alarm. Proposing the same box again returns the open
    proposal."""
    try:
        return store.propose(body.case_id, body.box, caller.name, datetime.now(UTC))
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    except SuppressionError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None


@router.get("", operation_id="list_suppressions", responses=REFUSALS)
def list_suppressions(
    _caller: RuleAuthorDep,
    store: SuppressionsDep,
    state: Annotated[SuppressionState | None, Query(description="only suppressions in this state")] = None,
) -> SuppressionList:
    """Newest first."""
    return SuppressionList(items=store.list(state))


def _decide(store: SuppressionStore, suppression_id: str, decision: Decision, by: str) -> Suppression:
    try:
        return store.decide(suppression_id, decision, by, datetime.now(UTC))
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    except SuppressionError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None


@router.post("/{suppression_id}/confirm", operation_id="confirm_suppression", responses=REFUSALS)
def confirm_suppression(caller: RuleAuthorDep, store: SuppressionsDep, suppression_id: SuppressionId) -> Suppression:
    """The rule ignores detections anchored in the mask on that camera from the runtime's next rules poll."""
    return _decide(store, suppression_id, "confirm", caller.name)


@router.post("/{suppression_id}/reject", operation_id="reject_suppression", responses=REFUSALS)
def reject_suppression(caller: RuleAuthorDep, store: SuppressionsDep, suppression_id: SuppressionId) -> Suppression:
    return _decide(store, suppression_id, "reject", caller.name)
