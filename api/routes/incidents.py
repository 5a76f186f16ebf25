"""Incidents: one entry per real-world problem, summed up from its open, update and close events."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi import Path as PathParam

from api.deps import StoreDep, ViewerDep
from api.models import AUTH_ERRORS, IncidentPage, Problem
from intake.store import ULID_PATTERN, IncidentStateFilter, IncidentSummary

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])

MAX_PAGE = 500


@router.get("", operation_id="list_incidents", responses=AUTH_ERRORS)
def list_incidents(
    _caller: ViewerDep,
    store: StoreDep,
    camera: Annotated[str | None, Query(max_length=200, description="camera id")] = None,
    state: Annotated[
        IncidentStateFilter | None, Query(description="`open` (latest event an open or update) or `closed`")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    before: Annotated[str | None, Query(pattern=ULID_PATTERN, description="cursor: `next`")] = None,
) -> IncidentPage:
    """Newest activity first. An incident that gets a new event while a client pages moves to the front (the
    live stream brings that event), so a later page does not repeat it."""
    rows = store.list_incidents(camera_id=camera, state=state, limit=limit + 1, before=before)
    items = rows[:limit]
    return IncidentPage(items=items, next=items[-1].latest.id if len(rows) > limit else None)


@router.get("/{incident_id}", operation_id="get_incident", responses={404: {"model": Problem}, **AUTH_ERRORS})
def get_incident(
    _caller: ViewerDep, store: StoreDep, incident_id: Annotated[str, PathParam(pattern=ULID_PATTERN)]
) -> IncidentSummary:
    incident = store.get_incident(incident_id)
    if incident is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"incident {incident_id} not found")
    return incident
