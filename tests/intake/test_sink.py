from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from intake.bus import EventBus, Subscription
from intake.evidence import EvidenceError, EvidenceStore
from intake.sink import IntakeSink
from intake.store import EventStore
from tests.intake.builders import make_event_with_blobs, make_image_bytes


@dataclass
class Intake:
    sink: IntakeSink
    store: EventStore
    evidence: EvidenceStore
    live: Subscription


@pytest.fixture
def intake(tmp_path: Path) -> Iterator[Intake]:
    bus = EventBus()
    evidence = EvidenceStore(tmp_path / "evidence")
    with EventStore(tmp_path / "events.sqlite3") as store:
        yield Intake(IntakeSink(store, evidence, bus), store, evidence, bus.subscribe())
    bus.close()


def test_emit_stores_evidence_and_event_and_publishes_it(intake: Intake) -> None:
    # given
    event, blobs = make_event_with_blobs(seed=1)
    # when
    intake.sink.emit(event, blobs)
    # then
    ((key, data),) = blobs.items()
    assert intake.evidence.read(key) == data
    assert intake.store.get(event.id) == event
    assert intake.live.get(timeout=0) == event


def test_emitting_the_same_event_again_stores_and_publishes_nothing_new(intake: Intake) -> None:
    event, blobs = make_event_with_blobs(seed=2)
    intake.sink.emit(event, blobs)
    intake.sink.emit(event, blobs)
    assert intake.store.count() == 1
    assert intake.live.get(timeout=0) == event
    assert intake.live.get(timeout=0) is None


def test_evidence_already_stored_need_not_be_sent_again(intake: Intake) -> None:
    event, blobs = make_event_with_blobs(seed=3)
    ((key, data),) = blobs.items()
    intake.evidence.put_keyed(key, data)
    intake.sink.emit(event, {})
    assert intake.store.get(event.id) == event


def test_a_blob_under_a_wrong_key_stops_the_event(intake: Intake) -> None:
    # given
    event, blobs = make_event_with_blobs(seed=4)
    ((key, _),) = blobs.items()
    # when
    with pytest.raises(EvidenceError, match="does not match"):
        intake.sink.emit(event, {key: make_image_bytes(99)})
    # then
    assert intake.store.get(event.id) is None
    assert intake.live.get(timeout=0) is None


def test_evidence_neither_given_nor_stored_stops_the_event(intake: Intake) -> None:
    event, _ = make_event_with_blobs(seed=5)
    with pytest.raises(EvidenceError, match="neither given nor already stored"):
        intake.sink.emit(event, {})
    assert intake.store.count() == 0


def test_racing_emits_of_one_event_publish_it_once(intake: Intake) -> None:
    # given
    event, blobs = make_event_with_blobs(seed=6)
    start = threading.Barrier(8)

    def emit() -> None:
        start.wait()
        intake.sink.emit(event, blobs)

    # when
    threads = [threading.Thread(target=emit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then
    assert intake.live.get(timeout=0) == event
    assert intake.live.get(timeout=0) is None
    assert intake.store.count() == 1
