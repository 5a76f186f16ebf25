"""What the alert wall page needs to know about this server before it asks for data: whether it keeps cases."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import DepsDep, ViewerDep
from api.models import AUTH_ERRORS

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["wall"])


class WallConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    cases: bool = Field(description="the server keeps cases: the wall shows case tiles (else incident tiles)")
    live_cases: bool = Field(description="case changes come on the live stream as `event: case` messages")
    patrol: bool = Field(default=False, description="this server runs the patrol: the wall shows its panel")


@router.get("/wall", operation_id="wall_config", responses=AUTH_ERRORS)
def wall_config(_caller: ViewerDep, deps: DepsDep) -> WallConfig:
    return WallConfig(
        cases=deps.cases is not None,
        live_cases=deps.cases is not None and deps.case_bus is not None,
        patrol=deps.patrol is not None,
    )
