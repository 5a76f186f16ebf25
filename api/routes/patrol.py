"""The patrol as a whole: coverage, revisit intervals, load and what a visit costs."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from api.deps import PatrolDep, ViewerDep
from api.patrol_view import PatrolStatus
from api.routes.cameras import NO_PATROL

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/patrol", tags=["patrol"])


@router.get("", operation_id="get_patrol", responses=NO_PATROL)
def get_patrol(_caller: ViewerDep, patrol: PatrolDep) -> PatrolStatus:
    """The share of enabled cameras within their revisit target, revisit p50 / p95 / max, visits in flight and
    their bound, health counts, totals, visits per second over the last minute, the scheduler's mode, the
    workers alive and the median cost of a visit per phase."""
    return patrol.status()
