"""What the API needs, handed in by the composition root, and `Annotated` aliases for the routes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from intake.bus import EventBus
from intake.evidence import EvidenceStore
from intake.store import EventStore

STATE_KEY = "gridwatch_deps"


@dataclass(frozen=True, slots=True)
class ApiDeps:
    """Ready-made parts; the API never creates stores, engines or settings itself.

    `health` returns extra facts for `/healthz` (camera counts, patrol state) as JSON values.
    """

    store: EventStore
    evidence: EvidenceStore
    bus: EventBus
    health: Callable[[], dict[str, object]]
    version: str


def get_deps(request: Request) -> ApiDeps:
    deps = getattr(request.app.state, STATE_KEY, None)
    if not isinstance(deps, ApiDeps):
        raise RuntimeError("the app was not built by api.app.create_app: no ApiDeps on app.state")
    return deps


def get_store(deps: Annotated[ApiDeps, Depends(get_deps)]) -> EventStore:
    return deps.store


def get_evidence(deps: Annotated[ApiDeps, Depends(get_deps)]) -> EvidenceStore:
    return deps.evidence


def get_bus(deps: Annotated[ApiDeps, Depends(get_deps)]) -> EventBus:
    return deps.bus


DepsDep = Annotated[ApiDeps, Depends(get_deps)]
StoreDep = Annotated[EventStore, Depends(get_store)]
EvidenceDep = Annotated[EvidenceStore, Depends(get_evidence)]
BusDep = Annotated[EventBus, Depends(get_bus)]
