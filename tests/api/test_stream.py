from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from api.routes import stream
from core.events import Event
from tests.api.conftest import Parts
from tests.api.server import SseMessage, serve, sse_messages
from tests.intake.builders import make_event_with_blobs

# Generous read timeout: a broken stream fails the test instead of hanging it; nothing is timed.
TIMEOUT = httpx.Timeout(10.0)


@pytest.fixture
def base_url(app: FastAPI, parts: Parts) -> Iterator[str]:
    with serve(app) as url:
        yield url
        parts.deps.bus.close()  # end open streams so the server stops at once


def emit_from_thread(parts: Parts, event: Event, blobs: dict[str, bytes]) -> None:
    thread = threading.Thread(target=parts.sink.emit, args=(event, blobs), name="patrol")
    thread.start()
    thread.join()


def next_data(messages: Iterator[SseMessage]) -> SseMessage:
    return next(m for m in messages if m.data is not None and m.event != "ready")


def test_an_emitted_event_reaches_a_connected_stream(base_url: str, parts: Parts) -> None:
    # given
    event, blobs = make_event_with_blobs(seed=1)
    with (
        httpx.Client(timeout=TIMEOUT) as client,
        client.stream("GET", f"{base_url}/api/v1/stream") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        messages = sse_messages(response)
        hello = next(messages)  # sent once subscribed
        assert hello.comments == ["connected"]
        assert hello.retry is not None
        # when
        emit_from_thread(parts, event, blobs)
        # then
        message = next_data(messages)
    assert message.id == event.id
    assert message.data is not None
    assert Event.model_validate_json(message.data) == event


def test_reconnect_with_last_event_id_replays_what_was_missed(base_url: str, parts: Parts) -> None:
    # given: three events stored while the client was away
    stored = [make_event_with_blobs(seed=i, seconds=i * 60.0) for i in range(3)]
    for event, blobs in stored:
        parts.sink.emit(event, blobs)
    live, live_blobs = make_event_with_blobs(seed=9, seconds=600.0)
    headers = {"Last-Event-ID": stored[0][0].id}
    # when
    with (
        httpx.Client(timeout=TIMEOUT) as client,
        client.stream("GET", f"{base_url}/api/v1/stream", headers=headers) as response,
    ):
        messages = sse_messages(response)
        replayed = [next_data(messages).id for _ in range(2)]
        emit_from_thread(parts, live, live_blobs)
        after = next_data(messages).id
    # then
    assert replayed == [stored[1][0].id, stored[2][0].id]
    assert after == live.id


def store_five(parts: Parts) -> list[str]:
    """Five events stored a minute apart (ids in time order), none of them seen by a client."""
    stored = [make_event_with_blobs(seed=i, seconds=i * 60.0) for i in range(5)]
    for event, blobs in stored:
        parts.sink.emit(event, blobs)
    return [event.id for event, _ in stored]


def test_a_replay_longer_than_a_page_sends_every_missed_event_oldest_first(
    base_url: str, parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: four missed events and pages of two
    monkeypatch.setattr(stream, "REPLAY_LIMIT", 2)
    stored = store_five(parts)
    live, live_blobs = make_event_with_blobs(seed=9, seconds=600.0)
    # when
    with (
        httpx.Client(timeout=TIMEOUT) as client,
        client.stream("GET", f"{base_url}/api/v1/stream", headers={"Last-Event-ID": stored[0]}) as response,
    ):
        messages = sse_messages(response)
        replayed = [next_data(messages).id for _ in range(4)]
        emit_from_thread(parts, live, live_blobs)
        after = next_data(messages).id
    # then
    assert replayed == stored[1:]
    assert after == live.id


def test_a_replay_too_long_for_one_connection_ends_it_and_the_next_goes_on(
    base_url: str, parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: four missed events, pages of two, one page per connection
    monkeypatch.setattr(stream, "REPLAY_LIMIT", 2)
    monkeypatch.setattr(stream, "REPLAY_MAX_PAGES", 1)
    stored = store_five(parts)
    got: list[list[str | None]] = []
    last_id = stored[0]
    # when: the client reconnects from the last id it got, as a browser does
    with httpx.Client(timeout=TIMEOUT) as client:
        for _ in range(2):
            with client.stream("GET", f"{base_url}/api/v1/stream", headers={"Last-Event-ID": last_id}) as response:
                got.append([m.id for m in sse_messages(response) if m.data is not None and m.event != "ready"])
            last_id = str(got[-1][-1])
    # then
    assert got == [stored[1:3], stored[3:5]]


def test_the_stream_ends_when_the_bus_closes(base_url: str, parts: Parts) -> None:
    with (
        httpx.Client(timeout=TIMEOUT) as client,
        client.stream("GET", f"{base_url}/api/v1/stream") as response,
    ):
        messages = sse_messages(response)
        next(messages)
        parts.deps.bus.close()
        rest = list(messages)
    assert [m.data for m in rest] == []


def test_a_client_that_leaves_is_unsubscribed(base_url: str, parts: Parts) -> None:
    bus = parts.deps.bus
    with (
        httpx.Client(timeout=TIMEOUT) as client,
        client.stream("GET", f"{base_url}/api/v1/stream") as response,
    ):
        messages = sse_messages(response)  # keep a reference: dropping it closes the response
        next(messages)
        assert bus.subscriber_count == 1
    deadline = time.monotonic() + 10.0
    while bus.subscriber_count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert bus.subscriber_count == 0


def test_a_malformed_last_event_id_is_422(base_url: str) -> None:
    response = httpx.get(f"{base_url}/api/v1/stream", headers={"Last-Event-ID": "nope"}, timeout=TIMEOUT)
    assert response.status_code == 422
