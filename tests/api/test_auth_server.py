"""The session cookie against a real uvicorn server, for what a browser fetches without headers: stream, images."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.auth import SESSION_COOKIE, SessionClaims, encode_session
from core.events import Event
from tests.api.conftest import SESSION_KEY, Parts, bearer
from tests.api.server import serve, sse_messages
from tests.intake.builders import make_event_with_blobs

# Generous read timeout: a broken stream fails the test instead of hanging it; nothing is timed.
TIMEOUT = httpx.Timeout(10.0)


@pytest.fixture
def secured_app(secured_parts: Parts) -> FastAPI:
    return create_app(secured_parts.deps)


@pytest.fixture
def base_url(secured_app: FastAPI, secured_parts: Parts) -> Iterator[str]:
    with serve(secured_app) as url:
        yield url
        secured_parts.deps.bus.close()  # end open streams so the server stops at once


@contextmanager
def signed_in(base_url: str) -> Iterator[httpx.Client]:
    """A client holding only the session cookie: the token went with the sign-in request and nowhere else."""
    with httpx.Client(base_url=base_url, timeout=TIMEOUT) as client:
        response = client.post("/api/v1/session", headers=bearer("viewer"))
        assert response.status_code == 200, response.text
        assert SESSION_COOKIE in client.cookies
        yield client


def test_the_stream_accepts_the_session_cookie(base_url: str, secured_parts: Parts) -> None:
    # given
    event, blobs = make_event_with_blobs(seed=5)
    with signed_in(base_url) as client, client.stream("GET", "/api/v1/stream") as response:
        assert response.status_code == 200
        messages = sse_messages(response)
        assert next(messages).comments == ["connected"]
        # when
        thread = threading.Thread(target=secured_parts.sink.emit, args=(event, blobs))
        thread.start()
        thread.join()
        # then
        message = next(m for m in messages if m.data is not None)
    assert message.data is not None
    assert Event.model_validate_json(message.data) == event


def test_evidence_accepts_the_session_cookie_and_is_privately_cached(base_url: str, secured_parts: Parts) -> None:
    event, blobs = make_event_with_blobs(seed=6)
    secured_parts.sink.emit(event, blobs)
    key = event.evidence[0].key
    with signed_in(base_url) as client:
        response = client.get(f"/api/v1/evidence/{key}")
    assert response.status_code == 200
    assert response.content == blobs[key]
    assert response.headers["cache-control"].startswith("private")


@pytest.mark.parametrize(
    "cookie",
    [
        None,
        encode_session(SESSION_KEY, SessionClaims(sub="viewer-1", role="viewer", exp=1_000)),
        encode_session(b"z" * 32, SessionClaims(sub="viewer-1", role="viewer", exp=4_000_000_000)),
    ],
    ids=["none", "expired", "forged"],
)
def test_the_stream_refuses_a_missing_expired_or_forged_session(base_url: str, cookie: str | None) -> None:
    cookies = {SESSION_COOKIE: cookie} if cookie else None
    with httpx.Client(base_url=base_url, timeout=TIMEOUT, cookies=cookies) as client:
        response = client.get("/api/v1/stream")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
