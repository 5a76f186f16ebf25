"""Live events as Server-Sent Events, one event's JSON per message.

FastAPI's `EventSourceResponse` writes a `: ping` comment after 15 s of silence and stops the generator
when the client goes away; the stream also ends when the bus closes. A browser that reconnects sends
`Last-Event-ID`, and the events stored after that id are replayed first, oldest first, in pages of
`REPLAY_LIMIT` until caught up. After `REPLAY_MAX_PAGES` full pages the stream ends instead of going live: the
browser reconnects from the last id it got and the replay goes on, so no event is skipped.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.deps import BusDep, StoreDep, ViewerDep
from api.models import AUTH_ERRORS
from core.events import Event
from intake.store import ULID_PATTERN

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["stream"])

RETRY_MS = 3000
REPLAY_LIMIT = 500
REPLAY_MAX_PAGES = 20


def _message(event: Event) -> ServerSentEvent:
    return ServerSentEvent(raw_data=event.model_dump_json(), id=event.id)


@router.get(
    "/stream",
    operation_id="stream_events",
    response_class=EventSourceResponse,
    responses=AUTH_ERRORS,
)
async def stream_events(
    _caller: ViewerDep,
    bus: BusDep,
    store: StoreDep,
    last_event_id: Annotated[str | None, Header(pattern=ULID_PATTERN)] = None,
) -> AsyncIterator[ServerSentEvent]:
    with bus.subscribe() as subscription:
        # Subscribed before anything is sent: a client that has this first message misses nothing.
        yield ServerSentEvent(comment="connected", retry=RETRY_MS)
        replayed: set[str] = set()
        if last_event_id is not None:
            cursor = last_event_id
            for _ in range(REPLAY_MAX_PAGES):
                page = await run_in_threadpool(store.list, after=cursor, limit=REPLAY_LIMIT)
                for event in page:
                    replayed.add(event.id)
                    yield _message(event)
                if len(page) < REPLAY_LIMIT:
                    break
                cursor = page[-1].id
            else:
                logger.info("stream: replayed %d events after %s, not caught up: ending", len(replayed), last_event_id)
                return
            logger.debug("stream: replayed %d events after %s", len(replayed), last_event_id)
        async for event in subscription:
            if event.id not in replayed:
                yield _message(event)
    logger.debug("stream: ended")
