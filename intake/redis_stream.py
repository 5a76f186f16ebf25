"""Events from many patrol workers into the one intake, through a Redis Stream with a consumer group.

Workers' side: `StreamSink` is an `EventSink`; `emit` XADDs one entry with the event (its JSON) and the bytes of
its evidence (`blob:<key>` fields). The evidence travels in the entry, so workers need no shared storage; a
snapshot is 50-200 KB and an entry lives only until the intake has stored it (it is deleted after its XACK).

Intake's side: `StreamConsumer` reads with XREADGROUP, stores each entry through the intake's sink (`IntakeSink`:
evidence, then the event, idempotent on the event id), and only then XACKs (and XDELs) it. Entries read by a
consumer that died before its XACK stay pending; XAUTOCLAIM hands them to a live consumer once they have been
idle `claim_idle_s`, so nothing is lost, and the store's idempotency makes a second delivery harmless: every
event is stored exactly once. An entry that cannot be decoded is logged and acknowledged (it would fail forever).

The stream and group names come from the composition root (`ingest.redis_keys` owns every key name).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis
from pydantic import ValidationError

from core.events import Event
from core.sink import EventSink

logger = logging.getLogger(__name__)

EVENT_FIELD = b"event"
BLOB_PREFIX = b"blob:"
Entries = list[tuple[bytes, dict[bytes, bytes]]]


class StreamSink:
    """The workers' `EventSink`: one XADD per event. Thread-safe (redis-py's pool)."""

    def __init__(self, client: redis.Redis, stream: str) -> None:
        self._r = client
        self._stream = stream

    def emit(self, event: Event, blobs: Mapping[str, bytes]) -> None:
        fields: dict[bytes, bytes] = {EVENT_FIELD: event.model_dump_json().encode()}
        fields |= {BLOB_PREFIX + key.encode(): data for key, data in blobs.items()}
        self._r.xadd(self._stream, fields)  # type: ignore[arg-type]


@dataclass
class ConsumerStats:
    stored: int = 0
    claimed: int = 0  # entries taken over from a consumer that went quiet
    failed: int = 0  # sink refusals (the entry stays pending and comes back)
    malformed: int = 0


class StreamConsumer:
    """Stores the stream's events through `sink`, as consumer `name` of `group`."""

    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        group: str,
        name: str,
        sink: EventSink,
        *,
        batch: int = 32,
        block_ms: int = 1000,
        claim_idle_s: float = 30.0,
    ) -> None:
        self._r = client
        self._stream, self._group, self.name = stream, group, name
        self._sink = sink
        self._batch, self._block_ms = batch, block_ms
        self._claim_idle_ms = int(claim_idle_s * 1000)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = ConsumerStats()
        self.ensure_group()

    def ensure_group(self) -> None:
        try:
            self._r.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def poll(self, block_ms: int | None = None) -> int:
        """Take over what a quiet consumer left pending, then read new entries; returns how many were stored."""
        stored = 0
        reply: list[Any] = self._r.xautoclaim(
            self._stream, self._group, self.name, self._claim_idle_ms, "0-0", count=self._batch
        )
        claimed: Entries = reply[1]
        if claimed:
            self.stats.claimed += len(claimed)
            logger.info("event stream: %d pending entries taken over by %s", len(claimed), self.name)
            stored += self._handle(claimed)
        block = self._block_ms if block_ms is None else block_ms
        got = self._r.xreadgroup(
            self._group, self.name, {self._stream: ">"}, count=self._batch, block=block if block > 0 else None
        )
        replies: list[tuple[bytes, Entries]] = got or []  # type: ignore[assignment]
        for _stream, entries in replies:
            stored += self._handle(entries)
        return stored

    def read_only(self, count: int) -> list[bytes]:
        """Read entries without storing or acknowledging them (a consumer that dies before its XACK, in tests)."""
        got = self._r.xreadgroup(self._group, self.name, {self._stream: ">"}, count=count)
        replies: list[tuple[bytes, Entries]] = got or []  # type: ignore[assignment]
        return [entry_id for _s, entries in replies for entry_id, _f in entries]

    def _handle(self, entries: Entries) -> int:
        stored = 0
        for entry_id, fields in entries:
            if not fields:  # deleted meanwhile (stored and XDELed by another consumer): only the ack is left
                self._ack(entry_id)
                continue
            try:
                event = Event.model_validate_json(fields[EVENT_FIELD])
            except (KeyError, ValidationError) as exc:
                self.stats.malformed += 1
                logger.error("event stream entry %s is not an event, dropped: %s", entry_id.decode(), exc)
                self._ack(entry_id)
                continue
            blobs = {k[len(BLOB_PREFIX) :].decode(): v for k, v in fields.items() if k.startswith(BLOB_PREFIX)}
            try:
                self._sink.emit(event, blobs)
            except Exception:  # loop boundary: stays pending, taken over again after claim_idle_s
                self.stats.failed += 1
                logger.exception("event %s from the stream not stored; it stays pending", event.id)
                continue
            self._ack(entry_id)
            self.stats.stored += 1
            stored += 1
        return stored

    def _ack(self, entry_id: bytes) -> None:
        pipe = self._r.pipeline()
        pipe.xack(self._stream, self._group, entry_id)
        pipe.xdel(self._stream, entry_id)
        pipe.execute()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"event-stream-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except redis.RedisError as exc:  # loop boundary: Redis away for a moment, try again
                logger.warning("event stream read failed: %s", exc)
                self._stop.wait(1.0)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def pending(self) -> int:
        info = self._r.xpending(self._stream, self._group)
        return int(info["pending"])

    def health(self) -> dict[str, int]:
        return {**vars(self.stats), "pending": self.pending()}
