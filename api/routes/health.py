"""Liveness and a few facts for the status line of the alert wall."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from pydantic import JsonValue, TypeAdapter

from api.deps import DepsDep
from api.models import HealthPublic

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

_DETAILS: TypeAdapter[dict[str, JsonValue]] = TypeAdapter(dict[str, JsonValue])


@router.get("/healthz", operation_id="healthz")
def healthz(deps: DepsDep) -> HealthPublic:
    return HealthPublic(
        version=deps.version,
        schema_version=deps.store.schema_version,
        stream_subscribers=deps.bus.subscriber_count,
        stream_dropped=deps.bus.dropped,
        details=_DETAILS.validate_python(deps.health()),
    )
