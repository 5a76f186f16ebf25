"""Run an ASGI app under a real uvicorn server on a free loopback port, in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import uvicorn
from fastapi import FastAPI

START_TIMEOUT_S = 10.0


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Yield the base URL; stop the server (and wait for its thread) on exit."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT_S)


@dataclass
class SseMessage:
    data: str | None = None
    id: str | None = None
    retry: int | None = None
    comments: list[str] = field(default_factory=list)
    event: str | None = None


def sse_messages(response: httpx.Response) -> Iterator[SseMessage]:
    """Parse a text/event-stream body into messages (blank-line separated)."""
    message = SseMessage()
    for line in response.iter_lines():
        if line == "":
            yield message
            message = SseMessage()
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "":
            message.comments.append(value)
        elif name == "data":
            message.data = value if message.data is None else message.data + "\n" + value
        elif name == "id":
            message.id = value
        elif name == "event":
            message.event = value
        elif name == "retry":
            message.retry = int(value)
