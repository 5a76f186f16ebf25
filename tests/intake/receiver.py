"""A real webhook receiver for the outbox tests: a threaded `http.server` on a free loopback port.

Each path has its own secret. Every request's Standard Webhooks signature is checked (by the `standardwebhooks`
package's `Webhook.verify` against the wall clock, or by `verify_inbound` against a simulated clock); a
verified request is answered by `status_for` (default 200, or 503 while `down`), and each one answered 2xx is
recorded. An unverified request is answered 401 and counted in `rejected`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

from intake.webhooks import InboundSignatureError, secret_key, verify_inbound


@dataclass(frozen=True)
class Arrival:
    path: str
    webhook_id: str
    type: str
    data: dict[str, object]


@dataclass
class Receiver:
    secrets: Mapping[str, str]  # path -> whsec_ secret
    now: Callable[[], datetime] | None = None  # a simulated clock: verify with `verify_inbound`
    down: bool = False
    retry_after: str | None = None  # sent as `Retry-After` with each 503 while down
    status_for: Callable[[str, dict[str, object]], int] | None = None  # (path, body) -> status
    arrivals: list[Arrival] = field(default_factory=list)
    attempts: int = 0
    rejected: int = 0
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str, userinfo: str = "", query: str = "") -> str:
        return f"http://{userinfo}127.0.0.1:{self.port}{path}{query}"

    def verify(self, path: str, headers: Mapping[str, str], body: bytes) -> dict[str, object]:
        secret = self.secrets[path]
        if self.now is not None:
            return verify_inbound(headers, body, secret, now=self.now())
        parsed: dict[str, object] = Webhook(secret_key(secret)).verify(body, dict(headers))
        return parsed

    def handle(self, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, bytes]:
        with self.lock:
            self.attempts += 1
        try:
            parsed = self.verify(path, headers, body)
        except (InboundSignatureError, WebhookVerificationError) as exc:
            with self.lock:
                self.rejected += 1
            return 401, str(exc).encode()
        if self.down:
            return 503, b"down for maintenance"
        status = self.status_for(path, parsed) if self.status_for is not None else 200
        if 200 <= status < 300:
            data = parsed["data"]
            assert isinstance(data, dict)
            arrival = Arrival(path, headers["webhook-id"], str(parsed["type"]), data)
            with self.lock:
                self.arrivals.append(arrival)
        return status, json.dumps({"status": status}).encode()

    def ids(self) -> list[str]:
        with self.lock:
            return [a.webhook_id for a in self.arrivals]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            path, _, query = self.path.partition("?")
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, answer = receiver.handle(path, headers, body)
            if status >= 400 and query:
                answer += f" (for {self.path})".encode()  # a receiver that quotes the request: must be redacted
            self.send_response(status)
            if status == 503 and receiver.retry_after is not None:
                self.send_header("retry-after", receiver.retry_after)
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def running(receiver: Receiver) -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="test-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
