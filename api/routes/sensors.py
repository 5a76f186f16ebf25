"""Sensor readings by HTTP: `POST /api/v1/sensors/{id}/readings` with a JSON list of up to 1000 readings.

Taken all or none: a malformed item is a 422 naming it (`loc` `["body", index, field]`), as is a value outside the
sensor's range (counted like the MQTT ingest's refusals); a full ingest queue is a 503 with `Retry-After`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, status
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.deps import DepsDep, OperatorDep
from api.models import AUTH_ERRORS, Problem
from api.routes.cases import UNPARSABLE
from core.sensors import Reading, ReadingIntake

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/sensors", tags=["sensors"])

MAX_BATCH = 1000
SENSOR_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class ReadingIn(BaseModel):
    """One reading: its value and, optionally, when it was measured (ISO 8601 with a zone; default: received)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: AwareDatetime | None = None
    value: Annotated[float, Field(strict=True, allow_inf_nan=False)]


class ReadingsTaken(BaseModel):
    taken: int


def _intake(deps: DepsDep, sensor_id: str) -> ReadingIntake:
    """The ingest that knows this sensor; 404 for an unknown sensor, and for every one on a server without sensors."""
    if deps.readings is None or not deps.readings.known(sensor_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"sensor {sensor_id} not found")
    return deps.readings


@router.post(
    "/{sensor_id}/readings",
    operation_id="post_sensor_readings",
    status_code=status.HTTP_202_ACCEPTED,
    responses={404: {"model": Problem}, 503: {"model": Problem}, **UNPARSABLE, **AUTH_ERRORS},
)
def post_readings(
    _caller: OperatorDep,
    deps: DepsDep,
    sensor_id: Annotated[str, PathParam(pattern=SENSOR_ID)],
    readings: Annotated[list[ReadingIn], Body(min_length=1, max_length=MAX_BATCH)],
) -> ReadingsTaken:
    intake = _intake(deps, sensor_id)
    received = datetime.now(UTC)
    batch = [Reading(sensor_id, r.at or received, r.value) for r in readings]
    problems = [(i, intake.check(sensor_id, r.value)) for i, r in enumerate(batch)]
    bad = [(i, why) for i, why in problems if why]
    if bad:
        for reason in {why for _, why in bad}:
            intake.reject(sensor_id, reason, sum(1 for _, why in bad if why == reason))
        raise RequestValidationError(
            [
                {"loc": ("body", i, "value"), "msg": f"{why.replace('_', ' ')} for sensor {sensor_id}", "type": why}
                for i, why in bad
            ]
        )
    offer = intake.offer(batch)
    if offer.refused:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"readings not taken: {offer.refused}",
            headers={"Retry-After": "1"},
        )
    return ReadingsTaken(taken=offer.taken)
