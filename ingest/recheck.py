"""Re-check before filing (二次识别), the patrol's side: the snapshot of a confirmed incident kept until its re-check
visit, the visit asked for after the delay, and the figures.

The tracker decides (`incidents.tracker`: a rule's `recheck.after_s`); here the visit pipeline keeps the first
snapshot of a held incident (`hold`), asks for a visit of its camera `after_s` later (`DelayedRequests`, through
the scheduler's `request_visit`, so any scheduler backend), and at the re-check either files the open with both
snapshots (`confirm`) or forgets it (`drop`, counted).
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from incidents.evidence import Snapshot

logger = logging.getLogger(__name__)

MAX_HELD = 10_000  # held snapshots kept at most (the oldest go first: their incident then files with one snapshot)


class DelayedRequests:
    """`request_visit(camera_id)` called `delay_s` seconds after `later`, on one timer thread started on first use."""

    def __init__(self, request_visit: Callable[[str], bool], monotonic: Callable[[], float] = time.monotonic) -> None:
        self._request, self._monotonic = request_visit, monotonic
        self._heap: list[tuple[float, int, str]] = []
        self._cond = threading.Condition()
        self._seq = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self.requested = 0

    def later(self, camera_id: str, delay_s: float) -> None:
        with self._cond:
            if self._closed:
                return
            self._seq += 1
            heapq.heappush(self._heap, (self._monotonic() + delay_s, self._seq, camera_id))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="recheck-timer", daemon=True)
                self._thread.start()
            self._cond.notify()

    def due(self) -> list[str]:
        """Take the cameras whose delay has passed (the timer's step; tests call it directly)."""
        now, out = self._monotonic(), []
        with self._cond:
            while self._heap and self._heap[0][0] <= now:
                out.append(heapq.heappop(self._heap)[2])
        return out

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                wait = self._heap[0][0] - self._monotonic() if self._heap else None
                if wait is None or wait > 0:
                    self._cond.wait(wait)
                    continue
            for camera_id in self.due():
                try:
                    self._request(camera_id)
                    self.requested += 1
                except Exception:  # loop boundary: one failed request never stops the timer
                    logger.exception("re-check visit of camera %s not requested", camera_id)

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class Rechecks:
    """Held snapshots by incident id, the delayed visits, and how re-checks ended. Thread-safe."""

    def __init__(self, later: Callable[[str, float], None] | None = None) -> None:
        self._later = later
        self._lock = threading.Lock()
        self._held: OrderedDict[str, Snapshot] = OrderedDict()
        self.held = 0
        self.confirmed = 0
        self.dropped = 0

    def hold(self, incident_id: str, camera_id: str, snapshot: Snapshot, after_s: float) -> None:
        with self._lock:
            self._held[incident_id] = snapshot
            self.held += 1
            while len(self._held) > MAX_HELD:
                self._held.popitem(last=False)
        if self._later is not None:
            self._later(camera_id, after_s)

    def confirm(self, incident_id: str, snapshot: Snapshot) -> Snapshot:
        """The re-check's snapshot after the held one (the held one is kept until `filed`)."""
        with self._lock:
            first = self._held.get(incident_id)
        if first is None:
            return snapshot
        return Snapshot([*first.evidence, *snapshot.evidence], {**first.blobs, **snapshot.blobs})

    def filed(self, incident_id: str) -> None:
        with self._lock:
            if self._held.pop(incident_id, None) is not None:
                self.confirmed += 1

    def drop(self, incident_id: str) -> None:
        with self._lock:
            self._held.pop(incident_id, None)
            self.dropped += 1

    def report(self) -> dict[str, int]:
        with self._lock:
            waiting = len(self._held)
        return {"waiting": waiting, "held": self.held, "confirmed": self.confirmed, "dropped": self.dropped}
