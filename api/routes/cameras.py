"""The patrolled cameras: a filtered, paged list, one camera, and an operator's out-of-turn visit."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from api.deps import OperatorDep, PatrolDep, ViewerDep
from api.models import AUTH_ERRORS, Problem
from api.patrol_view import CameraFilter, CameraHealth, CameraStatus, VisitRequested

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/cameras", tags=["cameras"])

MAX_PAGE = 500
CAMERA_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # as `cameras.yaml` allows them
NO_PATROL: dict[int | str, dict[str, object]] = {503: {"model": Problem}, **AUTH_ERRORS}
ONE_CAMERA: dict[int | str, dict[str, object]] = {404: {"model": Problem}, **NO_PATROL}


class CameraPage(BaseModel):
    """One page of cameras in id order; pass `next` as `after` to get the following page."""

    model_config = ConfigDict(frozen=True)

    items: list[CameraStatus]
    next: str | None = Field(description="cursor (the last item's id); null on the last page")


@router.get("", operation_id="list_cameras", responses=NO_PATROL)
def list_cameras(
    _caller: ViewerDep,
    patrol: PatrolDep,
    health: Annotated[CameraHealth | None, Query(description="only cameras in this health")] = None,
    grid: Annotated[str | None, Query(pattern=r"^[0-9]{1,24}$", description="grid code prefix")] = None,
    tag: Annotated[str | None, Query(min_length=1, max_length=64, description="only cameras with this tag")] = None,
    overdue: Annotated[bool | None, Query(description="true: only cameras past their revisit target")] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=100, description="text in the id or name")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    after: Annotated[str | None, Query(pattern=CAMERA_ID, description="cursor: `next`")] = None,
) -> CameraPage:
    """In camera id order, keyset paged: each camera appears once over the pages, whatever changes meanwhile."""
    rows = patrol.cameras(CameraFilter(health, grid, tag, overdue, q), after, limit + 1)
    items = rows[:limit]
    return CameraPage(items=items, next=items[-1].id if len(rows) > limit else None)


@router.get("/{camera_id}", operation_id="get_camera", responses=ONE_CAMERA)
def get_camera(
    _caller: ViewerDep, patrol: PatrolDep, camera_id: Annotated[str, PathParam(pattern=CAMERA_ID)]
) -> CameraStatus:
    camera = patrol.camera(camera_id)
    if camera is not None:
        return camera
    raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"camera {camera_id} not found")


@router.post(
    "/{camera_id}/visit",
    operation_id="request_camera_visit",
    status_code=status.HTTP_202_ACCEPTED,
    responses=ONE_CAMERA,
)
def request_camera_visit(
    caller: OperatorDep, patrol: PatrolDep, camera_id: Annotated[str, PathParam(pattern=CAMERA_ID)]
) -> VisitRequested:
    """Visit the camera ahead of the round. Out-of-turn visits share a budget (about a fifth of the visits, and
    ten at once): past it the request waits in the queue (`requests_pending`) and is served as regular visits earn
    credit, or by the camera's own next visit, whichever comes first."""
    answer = patrol.request_visit(camera_id)
    if answer is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"camera {camera_id} not found")
    logger.info("visit of camera %s requested by %s: queued=%s", camera_id, caller.name, answer.queued)
    return answer
