"""Events from workers through a real Redis Stream into the one intake store: exactly once, even when a consumer
dies between reading and acknowledging."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import redis

from core.events import Event
from core.sink import EventSink
from intake.bus import EventBus
from intake.evidence import EvidenceStore
from intake.redis_stream import StreamConsumer, StreamSink
from intake.sink import IntakeSink
from intake.store import EventStore
from tests.intake.builders import make_event_with_blobs
from tests.support.redis import RedisServer


@pytest.fixture
def stream(redis_server: RedisServer) -> str:
    return f"{redis_server.namespace()}events"


@pytest.fixture
def intake(tmp_path: Path) -> Iterator[tuple[IntakeSink, EventStore, EvidenceStore]]:
    bus = EventBus()
    evidence = EvidenceStore(tmp_path / "evidence")
    with EventStore(tmp_path / "events.sqlite3") as store:
        yield IntakeSink(store, evidence, bus), store, evidence
    bus.close()


class DiesAfterStoring:
    """A consumer's sink that stores the event and then 'dies' before the acknowledgement."""

    def __init__(self, sink: EventSink) -> None:
        self._sink = sink

    def emit(self, event: Event, blobs: Mapping[str, bytes]) -> None:
        self._sink.emit(event, blobs)
        raise RuntimeError("killed after storing, before XACK")


def consumer(client: redis.Redis, stream: str, name: str, sink: EventSink, idle_s: float = 30.0) -> StreamConsumer:
    return StreamConsumer(client, stream, "intake", name, sink, batch=16, block_ms=0, claim_idle_s=idle_s)


def test_events_of_two_workers_are_stored_exactly_once(
    redis_server: RedisServer, stream: str, intake: tuple[IntakeSink, EventStore, EvidenceStore]
) -> None:
    sink, store, evidence = intake
    with redis_server.client() as c1, redis_server.client() as c2, redis_server.client() as c3:
        # given the intake's consumer group, and two workers emitting 40 events each at once
        first = consumer(c3, stream, "intake-1", sink)
        sent: list[tuple[Event, dict[str, bytes]]] = []
        workers = [StreamSink(c1, stream), StreamSink(c2, stream)]

        def emit(w: int) -> None:
            for i in range(40):
                event, blobs = make_event_with_blobs(w * 100 + i, seconds=w * 100 + i, camera_id=f"cam-{w}")
                sent.append((event, blobs))
                workers[w].emit(event, blobs)

        threads = [threading.Thread(target=emit, args=(w,)) for w in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        # when one consumer reads 10 and is killed before acknowledging, another stores 10 and dies before its
        # acknowledgement, and a third takes over what they left pending
        doomed = consumer(c3, stream, "intake-doomed", sink)
        assert len(doomed.read_only(10)) == 10
        stored_then_died = consumer(c3, stream, "intake-died", DiesAfterStoring(sink))
        assert stored_then_died.poll(block_ms=0) == 0
        assert stored_then_died.stats.failed == 16
        survivor = consumer(c3, stream, "intake-2", sink, idle_s=0.0)
        total = 0
        while (n := survivor.poll(block_ms=0)) or first.pending():
            total += n
        total += first.poll(block_ms=0)

        # then every event is in the store once, with its evidence, and nothing is left in the stream
        ids = {e.id for e, _b in sent}
        assert len(ids) == 80
        assert store.count() == 80
        assert all(store.get(i) is not None for i in ids)
        assert all(evidence.exists(k) for _e, blobs in sent for k in blobs)
        assert survivor.stats.claimed >= 26
        assert survivor.pending() == 0
        assert c3.xlen(stream) == 0


def test_a_malformed_entry_is_dropped_not_retried(
    redis_server: RedisServer, stream: str, intake: tuple[IntakeSink, EventStore, EvidenceStore]
) -> None:
    sink, store, _ = intake
    with redis_server.client() as client:
        c = consumer(client, stream, "intake-1", sink)
        client.xadd(stream, {b"event": b"{not json"})
        assert c.poll(block_ms=0) == 0
        assert c.stats.malformed == 1 and c.pending() == 0 and store.count() == 0
