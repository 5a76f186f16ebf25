"""The patrol's hand-off: returns at once, refuses when full (back-pressure), keeps what the sink refuses and
stores it once the sink works again, drains at stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

import pytest

from core.events import Event
from core.sink import SinkBusyError
from intake.handoff import QueuedSink
from tests.intake.builders import make_event


class GateSink:
    """A sink that fails while `down` and blocks while `held` is clear; records what it stored."""

    def __init__(self) -> None:
        self.down = False
        self.held = threading.Event()
        self.held.set()
        self.stored: list[str] = []

    def emit(self, event: Event, blobs: Mapping[str, bytes]) -> None:
        self.held.wait()
        if self.down:
            raise OSError(28, "No space left on device")
        self.stored.append(event.id)


def wait_for(check: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_emit_returns_at_once_and_everything_is_stored_in_order() -> None:
    sink = GateSink()
    queued = QueuedSink(sink)
    events = [make_event(i) for i in range(50)]
    t0 = time.perf_counter()
    for e in events:
        queued.emit(e, {})
    took = time.perf_counter() - t0
    queued.stop()
    assert sink.stored == [e.id for e in events]
    assert took < 0.5  # 50 hand-offs; the figure itself is in docs/benchmarks.md
    assert queued.snapshot()["stored"] == 50


def test_a_full_queue_refuses_and_counts_it() -> None:
    sink = GateSink()
    sink.held.clear()  # the intake is stuck
    queued = QueuedSink(sink, maxsize=2)
    queued.emit(make_event(0), {})
    wait_for(lambda: queued.depth() == 0)  # the writer took it and waits in the sink
    queued.emit(make_event(1), {})
    queued.emit(make_event(2), {})
    with pytest.raises(SinkBusyError, match="2 events waiting"):
        queued.emit(make_event(3), {})
    assert queued.snapshot()["refused_full"] == 1
    sink.held.set()
    queued.stop()
    assert len(sink.stored) == 3


def test_an_event_the_sink_refuses_is_kept_and_stored_when_it_works_again() -> None:
    sink = GateSink()
    sink.down = True
    queued = QueuedSink(sink, retry_max_s=0.05)
    first, second = make_event(0), make_event(1)
    queued.emit(first, {})
    queued.emit(second, {})
    wait_for(lambda: queued.snapshot()["sink_failures"] >= 3)
    assert sink.stored == []
    sink.down = False
    wait_for(lambda: len(sink.stored) == 2)
    assert sink.stored == [first.id, second.id]
    queued.stop()
