"""The intake's feed of camera and sensor incidents into cases, off the patrol's threads.

The patrol stores each event durably (`intake.store`) and goes on; this feed reads the stored events in id order
from a cursor kept in the case database and applies them (`IncidentCases`). A slow or failing case store never
slows a visit and loses nothing: the events wait in the event store, and a restart resumes at the cursor. Event
ids are ULIDs made when an event is built, which can be stored a moment out of order, so a pass every
`recheck_s` re-reads the last `overlap_s` seconds before the cursor (the others read only what lies after it);
applying an event twice changes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ulid import ULID

from core.events import Event
from intake.case_store import cursor, set_cursor
from intake.db import Connection
from intake.incident_cases import IncidentCases
from intake.store import EventStore

logger = logging.getLogger(__name__)

CURSOR = "events"
PAGE = 500


@dataclass
class FeedStats:
    applied: int = 0  # events that changed a case
    passes: int = 0
    failures: int = 0  # passes that failed (their events are applied by a later pass)
    skipped: int = 0  # events that could not be applied at all (logged with their id)
    cursor: str = ""  # the id of the newest event read


def _lowest_id_at(moment: datetime) -> str:
    """The smallest ULID made at `moment`: every id made later sorts after it."""
    return str(ULID.from_datetime(moment))[:10] + "0" * 16


class CaseFeed:
    def __init__(
        self,
        events: EventStore,
        incidents: IncidentCases,
        clock: Callable[[], datetime],
        *,
        interval_s: float = 0.5,
        overlap_s: float = 120.0,
        recheck_s: float = 10.0,
    ) -> None:
        self._events, self._incidents, self._clock = events, incidents, clock
        self._interval_s, self._overlap_s, self._recheck_s = interval_s, overlap_s, recheck_s
        self._rechecked: datetime | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = FeedStats()

    def notify(self) -> None:
        """A new event was stored: run a pass soon (cheap, never blocks; a lost wake-up costs one interval)."""
        self._wake.set()

    def run_once(self) -> int:
        """Apply every stored event after the cursor (less the overlap); returns how many changed a case."""
        store = self._incidents.store
        with store.transaction() as conn:
            position = cursor(conn, CURSOR)
        now = self._clock()
        start = position or "0" * 26  # from the start of the store at first (`after` also lists oldest first)
        if position and (self._rechecked is None or (now - self._rechecked).total_seconds() >= self._recheck_s):
            start = min(position, _lowest_id_at(now - timedelta(seconds=self._overlap_s)))
            self._rechecked = now
        applied = 0
        while True:
            page = self._events.list(after=start, limit=PAGE)
            if not page:
                break
            with store.transaction() as conn:
                for event in page:
                    applied += self._apply_one(conn, event, now)
                top = max(position, page[-1].id)
                set_cursor(conn, CURSOR, top)
            position, start = top, page[-1].id
            if len(page) < PAGE:
                break
        self.stats.applied += applied
        self.stats.passes += 1
        self.stats.cursor = position
        return applied

    def _apply_one(self, conn: Connection, event: Event, now: datetime) -> int:
        """Apply one event under a savepoint: an event that cannot be applied is logged, counted and passed over,
        so one bad event never holds up the ones after it."""
        conn.execute("SAVEPOINT feed_event")
        try:
            changed = self._incidents.apply_in(conn, event, now) is not None
        except Exception:  # loop boundary: this event only
            conn.execute("ROLLBACK TO SAVEPOINT feed_event")
            conn.execute("RELEASE SAVEPOINT feed_event")
            self.stats.skipped += 1
            logger.exception("event %s of incident %s not made into a case; passed over", event.id, event.incident_id)
            return 0
        conn.execute("RELEASE SAVEPOINT feed_event")
        return int(changed)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="case-feed", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # loop boundary: the events wait in the event store for the next pass
                self.stats.failures += 1
                logger.exception("case feed pass failed; the events are kept and retried")
            self._wake.wait(self._interval_s)
            self._wake.clear()
            self._stop.wait(0.05)  # a burst of wake-ups makes one pass, not one each

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
