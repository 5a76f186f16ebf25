"""`/metrics`: the Prometheus text exposition (or OpenMetrics, if the scraper asks for it), for a viewer."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from api.deps import ViewerDep
from api.models import AUTH_ERRORS

logger = logging.getLogger(__name__)

router = APIRouter(tags=["metrics"])

METRICS_KEY = "gridwatch_metrics"
TEXT = {"schema": {"type": "string"}}


def registry_of(request: Request) -> CollectorRegistry:
    registry = getattr(request.app.state, METRICS_KEY, None)
    if not isinstance(registry, CollectorRegistry):
        raise RuntimeError("the app was not built by api.app.create_app: no metrics registry on app.state")
    return registry


@router.get(
    "/metrics",
    operation_id="metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text format 0.0.4, or OpenMetrics 1.0 when the Accept header asks for it",
            "content": {"text/plain": TEXT, "application/openmetrics-text": TEXT},
        },
        **AUTH_ERRORS,
    },
)
def metrics(
    _caller: ViewerDep, request: Request, accept: Annotated[str | None, Header(include_in_schema=False)] = None
) -> Response:
    """Patrol, inference and intake figures, collected when scraped. Needs a viewer token (Prometheus:
    `authorization: {credentials_file: ...}`): the figures name cameras' health and the outbox's targets."""
    encoder, content_type = choose_encoder(accept or "")
    return Response(encoder(registry_of(request)), media_type=content_type)
