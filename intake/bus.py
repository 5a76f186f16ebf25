"""In-process fan-out of new events, and of case changes, to live subscribers (the alert wall's stream).

`Bus[T]` carries one kind of item: `EventBus` events, `CaseBus` cases as they are after each change.

`publish` is called from patrol threads; each subscriber has its own bounded queue and a slow one
loses its oldest events (counted in `dropped`) rather than slowing the publisher or the others.
A subscription is read from a thread with `get`, or from asyncio with `async for`: the publisher wakes
an idle asyncio reader through `loop.call_soon_threadsafe`, and only when that reader is waiting.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Generic, TypeVar

from core.events import Event
from intake.case_model import Case

logger = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 256
T = TypeVar("T")


class Subscription(Generic[T]):
    """One subscriber's bounded queue. Close it (or use `with`) to unsubscribe."""

    def __init__(self, bus: Bus[T], maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize {maxsize}: expected at least 1")
        self._bus = bus
        self._maxsize = maxsize
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._dropped = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._async_waiting = False

    @property
    def dropped(self) -> int:
        """Events this subscriber lost because its queue was full."""
        with self._cond:
            return self._dropped

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    @property
    def pending(self) -> int:
        """Events queued and not yet read."""
        with self._cond:
            return len(self._items)

    def offer(self, event: T) -> None:
        """Queue `event`, dropping the oldest queued one when full. Safe from any thread."""
        with self._cond:
            if self._closed:
                return
            if len(self._items) >= self._maxsize:
                self._items.popleft()
                self._dropped += 1
            self._items.append(event)
            self._cond.notify()
            wake = self._take_async_waiter()
        self._wake(wake)

    def get(self, timeout: float | None = None) -> T | None:
        """Block until an event arrives; None on timeout, or when closed and drained."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                if self._closed:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return self._items.popleft()

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        loop = asyncio.get_running_loop()
        wakeup = asyncio.Event()
        with self._cond:
            if self._wakeup is not None:
                raise RuntimeError("a subscription can be iterated asynchronously only once")
            self._loop, self._wakeup = loop, wakeup
        while True:
            with self._cond:
                event = self._items.popleft() if self._items else None
                if event is None:
                    if self._closed:
                        return
                    wakeup.clear()
                    self._async_waiting = True
            if event is None:
                await wakeup.wait()
            else:
                yield event

    def _take_async_waiter(self) -> asyncio.AbstractEventLoop | None:
        """Under the lock: the loop to wake, if an asyncio reader is parked."""
        if not self._async_waiting:
            return None
        self._async_waiting = False
        return self._loop

    def _wake(self, loop: asyncio.AbstractEventLoop | None) -> None:
        wakeup = self._wakeup
        if loop is None or wakeup is None:
            return
        try:
            loop.call_soon_threadsafe(wakeup.set)
        except RuntimeError:  # the reader's loop is closed: nobody left to wake
            logger.debug("subscription reader's event loop is closed")

    def close(self) -> None:
        """Unsubscribe. Readers get what is queued, then the iteration ends."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            wake = self._take_async_waiter()
        self._wake(wake)
        self._bus._discard(self)

    def __enter__(self) -> Subscription[T]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Bus(Generic[T]):
    """Fan-out pub/sub of items inside one process. Thread-safe."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self._queue_size = queue_size
        self._lock = threading.Lock()
        self._subscribers: list[Subscription[T]] = []
        self._closed = False
        self._dropped_by_gone = 0

    def subscribe(self, queue_size: int | None = None) -> Subscription[T]:
        """A new subscriber; after `close()` it comes back already closed (its iteration ends at once)."""
        subscription = Subscription[T](self, self._queue_size if queue_size is None else queue_size)
        with self._lock:
            if not self._closed:
                self._subscribers.append(subscription)
                return subscription
        subscription.close()
        return subscription

    def publish(self, event: T) -> None:
        with self._lock:
            subscribers = tuple(self._subscribers)
        for subscription in subscribers:
            subscription.offer(event)

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    @property
    def dropped(self) -> int:
        """Events dropped for slow subscribers, current and past."""
        with self._lock:
            subscribers, gone = tuple(self._subscribers), self._dropped_by_gone
        return gone + sum(s.dropped for s in subscribers)

    @property
    def closed(self) -> bool:
        with self._lock:
            return self._closed

    def close(self) -> None:
        """Close every subscription (live streams end) and refuse new ones."""
        with self._lock:
            self._closed = True
            subscribers = tuple(self._subscribers)
        for subscription in subscribers:
            subscription.close()

    def _discard(self, subscription: Subscription[T]) -> None:
        with self._lock:
            if subscription in self._subscribers:
                self._subscribers.remove(subscription)
                self._dropped_by_gone += subscription.dropped


class EventBus(Bus[Event]):
    """New events, as the intake sink stores them."""


class CaseBus(Bus[Case]):
    """Cases as they are after each change (report, action, incident update, card), from the case store."""
