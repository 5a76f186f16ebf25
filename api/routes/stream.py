"""Live events as Server-Sent Events, one event's JSON per message.

FastAPI's `EventSourceResponse` writes a `: ping` comment after 15 s of silence and stops the generator
when the client goes away; the stream also ends when the bus closes. A browser that reconnects sends
`Last-Event-ID`, and the events stored after that id are replayed first, oldest first, in pages of
`REPLAY_LIMIT` until caught up. After `REPLAY_MAX_PAGES` full pages the stream ends instead of going live: the
browser reconnects from the last id it got and the replay goes on, so no event is skipped.

Where the server keeps cases, the stream also carries each case as it is after a change, as `event: case`
messages (a `CaseView`: the case with the actions this caller may take on it). They carry no id, so the browser's
`Last-Event-ID` stays the last event's, and they are not replayed: a wall reloads the case list when it reconnects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.auth import Principal
from api.deps import BusDep, DepsDep, StoreDep, ViewerDep
from api.models import AUTH_ERRORS
from api.routes.cases import CaseView
from core.events import Event
from intake.bus import Subscription
from intake.case_model import Case
from intake.store import ULID_PATTERN
from intake.workflow import allowed_actions

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["stream"])

RETRY_MS = 3000
REPLAY_LIMIT = 500
REPLAY_MAX_PAGES = 20


def _message(event: Event) -> ServerSentEvent:
    return ServerSentEvent(raw_data=event.model_dump_json(), id=event.id)


def _case_message(case: Case, caller: Principal) -> ServerSentEvent:
    view = CaseView(case=case, allowed=allowed_actions(case.state, caller.role))
    return ServerSentEvent(raw_data=view.model_dump_json(), event="case")


async def _items(subscription: Subscription[Event] | Subscription[Case]) -> AsyncIterator[Event | Case]:
    async for item in subscription:
        yield item


async def _merged(events: Subscription[Event], cases: Subscription[Case] | None) -> AsyncIterator[Event | Case]:
    """Items of both subscriptions as they come; ends when either ends (its bus closed)."""
    if cases is None:
        async for event in events:
            yield event
        return
    sources = [_items(events), _items(cases)]
    pending = {asyncio.ensure_future(anext(source)): source for source in sources}
    try:
        while True:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=lambda t: sources.index(pending[t])):
                source = pending.pop(task)
                try:
                    item = task.result()
                except StopAsyncIteration:
                    return
                yield item
                pending[asyncio.ensure_future(anext(source))] = source
    finally:
        for task in pending:
            task.cancel()


@router.get(
    "/stream",
    operation_id="stream_events",
    response_class=EventSourceResponse,
    responses=AUTH_ERRORS,
)
async def stream_events(
    caller: ViewerDep,
    deps: DepsDep,
    bus: BusDep,
    store: StoreDep,
    last_event_id: Annotated[str | None, Header(pattern=ULID_PATTERN)] = None,
) -> AsyncIterator[ServerSentEvent]:
    case_bus = deps.case_bus if deps.cases is not None else None
    case_subscription = case_bus.subscribe() if case_bus is not None else None
    try:
        async for message in _live(bus.subscribe(), case_subscription, caller, store, last_event_id):
            yield message
    finally:
        if case_subscription is not None:
            case_subscription.close()


async def _live(
    subscription: Subscription[Event],
    cases: Subscription[Case] | None,
    caller: Principal,
    store: StoreDep,
    last_event_id: str | None,
) -> AsyncIterator[ServerSentEvent]:
    with subscription:
        # Subscribed before anything is sent: a client that has this first message misses nothing. It is an event
        # (`ready`) as well as a comment, because a browser's `onopen` fires on the headers, which the server sends
        # before this generator runs: a wall that reloads its lists on `ready`, not on open, cannot miss a change
        # made in between.
        yield ServerSentEvent(comment="connected", event="ready", raw_data="{}", retry=RETRY_MS)
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
        async for item in _merged(subscription, cases):
            if isinstance(item, Case):
                yield _case_message(item, caller)
            elif item.id not in replayed:
                yield _message(item)
    logger.debug("stream: ended")
