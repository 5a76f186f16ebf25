"""The intake's end of `core.sink.EventSink`: evidence first, then the event, then the live bus."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from core.events import Event
from intake.bus import EventBus
from intake.evidence import EvidenceError, EvidenceStore
from intake.store import EventStore

logger = logging.getLogger(__name__)


class IntakeSink:
    """Stores evidence and event exactly once and announces new events. Thread-safe.

    The order makes a crash safe to retry: evidence is in place before the event that names it, and an
    event is published only by the call that stored it, so a re-emitted event is neither stored nor
    announced twice.
    """

    def __init__(self, store: EventStore, evidence: EvidenceStore, bus: EventBus) -> None:
        self._store = store
        self._evidence = evidence
        self._bus = bus

    def emit(self, event: Event, blobs: Mapping[str, bytes]) -> None:
        for key, data in blobs.items():
            self._evidence.put_keyed(key, data)
        missing = [e.key for e in event.evidence if e.key not in blobs and not self._evidence.exists(e.key)]
        if missing:
            raise EvidenceError(f"event {event.id}: evidence {missing} neither given nor already stored")
        if self._store.add(event):
            logger.info(
                "event %s stored: camera=%s rule=%s state=%s",
                event.id,
                event.camera_id,
                event.rule_id,
                event.state.value,
            )
            self._bus.publish(event)
        else:
            logger.info("event %s already stored: not published again", event.id)
