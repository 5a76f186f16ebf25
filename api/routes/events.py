"""Stored events: a filtered, keyset-paged list and one event by id."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi import Path as PathParam

from api.deps import StoreDep, ViewerDep
from api.models import AUTH_ERRORS, EventPage, Problem
from core.events import Event
from intake.store import INCIDENT_ID_PATTERN, ULID_PATTERN

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/events", tags=["events"])

MAX_PAGE = 500


@router.get("", operation_id="list_events", responses=AUTH_ERRORS)
def list_events(
    _caller: ViewerDep,
    store: StoreDep,
    camera: Annotated[str | None, Query(max_length=200, description="camera id")] = None,
    rule: Annotated[str | None, Query(max_length=200, description="rule id")] = None,
    since: Annotated[datetime | None, Query(description="last seen at or after (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    before: Annotated[str | None, Query(pattern=ULID_PATTERN, description="cursor: `next`")] = None,
    incident_id: Annotated[
        str | None,
        Query(pattern=INCIDENT_ID_PATTERN, description="the events of this incident; empty: events without one"),
    ] = None,
) -> EventPage:
    rows = store.list(
        camera_id=camera, rule_id=rule, since=since, limit=limit + 1, before=before, incident_id=incident_id
    )
    items = rows[:limit]
    return EventPage(items=items, next=items[-1].id if len(rows) > limit else None)


@router.get("/{event_id}", operation_id="get_event", responses={404: {"model": Problem}, **AUTH_ERRORS})
def get_event(_caller: ViewerDep, store: StoreDep, event_id: Annotated[str, PathParam(pattern=ULID_PATTERN)]) -> Event:
    event = store.get(event_id)
    if event is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"event {event_id} not found")
    return event
