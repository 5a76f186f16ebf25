"""The API application factory. Nothing is built at import time: the caller hands in every part."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.deps import STATE_KEY, ApiDeps
from api.metrics import build_registry
from api.routes import (
    cameras,
    case_photos,
    case_reports,
    cases,
    events,
    evidence,
    grids,
    health,
    incidents,
    intake_webhook,
    metrics,
    patrol,
    sensors,
    session,
    stats,
    stream,
    suppressions,
    wall,
    wall_config,
)

logger = logging.getLogger(__name__)

__all__ = ["ApiDeps", "create_app"]


def create_app(deps: ApiDeps) -> FastAPI:
    """The alert wall and its API over `deps`.

    Live streams end when `deps.bus` closes: close the bus before stopping the server, or the
    server's graceful shutdown waits for the streams. `deps.auth` decides who may call: every data route
    needs at least the `viewer` role; with no tokens configured, authentication is off.
    """
    app = FastAPI(
        title="gridwatch",
        version=deps.version,
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # the interactive docs load scripts from a CDN; the command center is offline
        redoc_url=None,
    )
    setattr(app.state, STATE_KEY, deps)
    setattr(app.state, metrics.METRICS_KEY, build_registry(deps.patrol))
    for module in (
        events,
        incidents,
        case_reports,
        cases,
        case_photos,
        intake_webhook,
        sensors,
        stats,
        suppressions,
        evidence,
        stream,
        session,
        cameras,
        patrol,
        grids,
        health,
        metrics,
        wall_config,
        wall,
    ):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=wall.STATIC_DIR), name="static")
    return app
