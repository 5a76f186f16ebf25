"""Liveness for everyone; a few facts for the status line of the alert wall for signed-in callers."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from pydantic import JsonValue, TypeAdapter

from api.deps import DepsDep, OptionalPrincipalDep
from api.models import HealthBrief, HealthPublic

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

_DETAILS: TypeAdapter[dict[str, JsonValue]] = TypeAdapter(dict[str, JsonValue])


@router.get("/healthz", operation_id="healthz")
def healthz(deps: DepsDep, caller: OptionalPrincipalDep) -> HealthPublic | HealthBrief:
    """Open to all. Camera states, patrol figures and rule errors only for a caller with good credentials."""
    if caller is None:
        return HealthBrief(version=deps.version)
    return HealthPublic(
        version=deps.version,
        schema_version=deps.store.schema_version,
        stream_subscribers=deps.bus.subscriber_count,
        stream_dropped=deps.bus.dropped,
        details=_DETAILS.validate_python(deps.health()),
    )
