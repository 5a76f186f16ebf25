"""The patrol's hand-off to the intake: a bounded queue in front of the sink, drained by a thread of its own.

`emit` puts the event and its evidence bytes on the queue and returns at once (microseconds): the patrol never
waits for the disk, the stores or the city platform. When the queue is full, `emit` raises `SinkBusyError`
and the visit tells its incident tracker the event was not delivered, so the next visit hands it off again:
back-pressure, counted, never a lost incident. The writer keeps an event that the sink refuses at the head of
the queue and tries it again, with a growing pause, until the sink takes it.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from core.events import Event
from core.sink import EventSink, SinkBusyError

logger = logging.getLogger(__name__)

Item = tuple[Event, Mapping[str, bytes]]


@dataclass
class HandoffStats:
    handed_off: int = 0
    stored: int = 0
    refused_full: int = 0  # back-pressure: offers refused because the queue was full
    sink_failures: int = 0  # times the sink refused an event (tried again)
    depth: int = 0


class QueuedSink:
    """An `EventSink` that returns at once; `stop()` drains what is queued (up to its timeout)."""

    def __init__(self, sink: EventSink, *, maxsize: int = 256, retry_max_s: float = 5.0) -> None:
        self._sink = sink
        self._queue: queue.Queue[Item | None] = queue.Queue(maxsize=maxsize)
        self._retry_max_s = retry_max_s
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="intake-handoff", daemon=True)
        self.stats = HandoffStats()
        self._thread.start()

    def emit(self, event: Event, blobs: Mapping[str, bytes]) -> None:
        try:
            self._queue.put_nowait((event, dict(blobs)))
        except queue.Full:
            with self._lock:
                self.stats.refused_full += 1
            raise SinkBusyError(f"intake hand-off full ({self._queue.maxsize} events waiting)") from None
        with self._lock:
            self.stats.handed_off += 1

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._store(item)

    def _store(self, item: Item) -> None:
        pause = 0.1
        while True:
            try:
                self._sink.emit(*item)
            except Exception:  # loop boundary: the event stays at the head and is tried again
                with self._lock:
                    self.stats.sink_failures += 1
                logger.exception("intake refused event %s; trying again in %.1f s", item[0].id, pause)
                if self._stopping.wait(pause):
                    logger.error("event %s of incident %s not stored at stop", item[0].id, item[0].incident_id)
                    return
                pause = min(pause * 2, self._retry_max_s)
                continue
            with self._lock:
                self.stats.stored += 1
            return

    def depth(self) -> int:
        return self._queue.qsize()

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            self.stats.depth = self._queue.qsize()
            return dict(vars(self.stats))

    def stop(self, timeout: float = 15.0) -> None:
        """Store what is queued, then end the writer; an event the sink still refuses after `timeout` is logged."""
        deadline = time.monotonic() + timeout
        with contextlib.suppress(queue.Full):  # full: the writer is stuck on a refusing sink, told to give up below
            self._queue.put(None, timeout=timeout)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            self._stopping.set()
            self._thread.join(1.0)
            logger.error("intake hand-off stopped with %d events not stored", self._queue.qsize())
