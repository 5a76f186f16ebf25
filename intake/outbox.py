"""Delivery to the city platform: the durable outbox, sent as Standard Webhooks.

A case change and its deliveries commit in one transaction (`enqueue` into the case store's own database, whose
migrations include `OUTBOX_MIGRATION`). `OutboxDelivery` then sends what is due from its own connection to the same
database: each attempt signed afresh (`webhook-id` is the row's ULID, the same on every attempt, so the receiver drops
repeats), per target and case strictly in order, retried with exponential backoff and jitter, a dead letter after
a permanent refusal (4xx other than 408/429) or the target's `max_attempts`. Nothing is marked delivered before a
2xx: a crash between the commit and the answer sends again, and the receiver sees each webhook id once.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from core.clock import Clock
from core.redact import redact_text
from intake import outbox_store as rows
from intake.db import Connection, Database, open_database
from intake.outbox_store import (
    OUTBOX_MIGRATION,
    DeadLetter,
    DeliveryReport,
    DueRow,
    OutboxError,
    OutboxStats,
    Result,
    enqueue,
)
from intake.webhooks import TargetSettings, retry_after_s, retry_delay, signed_headers

__all__ = [
    "OUTBOX_MIGRATION",
    "DeadLetter",
    "DeliveryReport",
    "OutboxDelivery",
    "OutboxError",
    "OutboxStats",
    "enqueue",
    "replay_command",
]

logger = logging.getLogger(__name__)

LEASE_SLACK_S = 30.0  # a claim outlives the slowest target's request timeout by this much
RETRIED_4XX = frozenset({408, 429})  # request timeout, too many requests: worth another try
ERROR_CHARS = 300  # of a refusal's response body kept in `last_error`
PURGE_EVERY_S = 3600.0  # how often the background thread deletes old delivered rows
PURGE_BATCH = 1000  # rows per transaction, so a purge never holds the case store's writer lock for long
RETRY_AFTER_MAX_S = 3600.0  # a receiver's Retry-After is honoured up to an hour, never longer


def _open(db: Database) -> Connection:
    if not db.exists():
        raise OutboxError(f"outbox: {db.label} does not exist")
    conn = db.connect()
    if not rows.has_outbox(conn):
        conn.close()
        raise OutboxError(f"outbox: {db.label} has no outbox table (the case store's migrations create it)")
    return conn


def _secrets(target: TargetSettings) -> tuple[str, ...]:
    """The strings that must never appear in a log line or a stored error for this target."""
    secret = target.secret.get_secret_value()
    return tuple(p for p in (secret, secret.removeprefix("whsec_"), target.url.password or "") if p)


class OutboxDelivery:
    """Sends the outbox's due deliveries: `run_once(now)` for one round, or `start()` for a background thread
    that runs a round every `poll_s` (at once again while rounds come back full). Up to `workers` deliveries are
    in flight at a time, never two of one case at one target."""

    def __init__(
        self,
        target: Path | str | Database,
        targets: Mapping[str, TargetSettings],
        clock: Clock,
        *,
        http: httpx.Client | None = None,
        rng: random.Random | None = None,
        batch: int = 100,
        workers: int = 8,
        poll_s: float = 1.0,
        keep_delivered: timedelta | None = timedelta(days=7),
    ) -> None:
        """`keep_delivered`: how long a delivered row stays in the outbox (None: for ever); the background
        thread deletes older ones once an hour, a batch per transaction."""
        self.db = open_database(target, "cases")  # the case store's database, and its writer lock
        self._targets = dict(targets)
        self._clock = clock
        self._rng = rng or random.Random()
        self._batch, self._poll_s = batch, poll_s
        self._keep_delivered = keep_delivered
        self._purged_at: float | None = None
        self._lease = timedelta(seconds=max((t.timeout_s for t in targets.values()), default=0) + LEASE_SLACK_S)
        self._conn = _open(self.db)
        self._db_lock = threading.Lock()  # the connection
        self._run_lock = threading.Lock()  # one round at a time
        self._own_http = http is None
        self._http = http if http is not None else httpx.Client(follow_redirects=False)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="outbox-send")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: datetime) -> DeliveryReport:
        """Send every due queue head (up to `batch`) and store the outcomes. Each attempt is signed with `now`
        plus the clock's monotonic time since the round began, so a slow round never sends a stale timestamp."""
        with self._run_lock:
            with self._db_lock:
                due = rows.claim_due(self._conn, now, sorted(self._targets), self._batch, self._lease)
            if not due:
                return DeliveryReport()
            started = self._clock.monotonic()
            results = list(self._pool.map(lambda row: self._attempt(row, now, started), due))
            with self._db_lock:
                rows.record(self._conn, results, now)
        counts = {outcome: sum(r.outcome == outcome for r in results) for outcome in ("delivered", "retry", "dead")}
        return DeliveryReport(
            attempted=len(results), delivered=counts["delivered"], retrying=counts["retry"], dead=counts["dead"]
        )

    def _attempt(self, row: DueRow, now: datetime, started: float) -> Result:
        target = self._targets[row.target]
        sent_at = now + timedelta(seconds=self._clock.monotonic() - started)
        headers = signed_headers(target.secret, row.id, sent_at, row.body)
        try:
            response = self._http.post(
                str(target.url), content=row.body.encode(), headers=headers, timeout=target.timeout_s
            )
        except httpx.HTTPError as exc:
            return self._failed(row, target, now, None, f"{type(exc).__name__}: {exc}")
        if response.is_success:
            logger.debug("outbox: %s (case %s #%d) delivered to %s", row.id, row.case_id, row.seq, target.safe_url)
            return Result(row, "delivered", response.status_code, None, None)
        reason = f"HTTP {response.status_code}: {response.text[:ERROR_CHARS]}".rstrip(": ")
        asked = retry_after_s(response.headers.get("retry-after"), now) if response.status_code in (429, 503) else None
        return self._failed(row, target, now, response.status_code, reason, asked)

    def _failed(
        self,
        row: DueRow,
        target: TargetSettings,
        now: datetime,
        status: int | None,
        why: str,
        retry_after: float | None = None,
    ) -> Result:
        """A failed attempt: a dead letter, or a retry after the backoff (or after what a 429 or 503 asked for in
        `Retry-After`, when that is longer; at most `RETRY_AFTER_MAX_S`)."""
        error = redact_text(why, _secrets(target))
        attempt = row.attempts + 1
        permanent = status is not None and 400 <= status < 500 and status not in RETRIED_4XX
        where = f"{row.id} (case {row.case_id} #{row.seq}) to {target.safe_url}"
        if permanent or attempt >= target.max_attempts:
            cause = "refused" if permanent else f"failed {attempt} time(s)"
            logger.error("outbox: %s %s, now a dead letter: %s", where, cause, error)
            return Result(row, "dead", status, error, None)
        delay = retry_delay(attempt, target, self._rng)
        if retry_after is not None:
            delay = max(delay, min(retry_after, RETRY_AFTER_MAX_S))
        logger.warning(
            "outbox: %s failed (attempt %d of %d): %s; next in %.1f s",
            where,
            attempt,
            target.max_attempts,
            error,
            delay,
        )
        return Result(row, "retry", status, error, now + timedelta(seconds=delay))

    def purge(self, now: datetime) -> int:
        """Delete the delivered rows older than `keep_delivered` (each queue's last one stays); how many went."""
        if self._keep_delivered is None:
            return 0
        removed = 0
        while True:
            with self._db_lock:
                count = rows.purge_delivered(self._conn, now - self._keep_delivered, PURGE_BATCH)
            removed += count
            if count < PURGE_BATCH:
                break
        if removed:
            logger.info(
                "outbox %s: %d delivered row(s) older than %s removed", self.db.label, removed, self._keep_delivered
            )
        return removed

    def dead_letters(self, limit: int = 1000) -> list[DeadLetter]:
        with self._db_lock:
            return rows.dead_letters(self._conn, limit)

    def replay(self, ids: Sequence[str]) -> int:
        """Put the named deliveries (dead, delivered or pending) back to pending, due at once; how many changed."""
        with self._db_lock:
            changed, _ = rows.replay(self._conn, ids, dead_only=False)
        return changed

    def stats(self) -> OutboxStats:
        with self._db_lock:
            return rows.stats(self._conn, sorted(self._targets))

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("outbox delivery already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="outbox-delivery", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            full = False
            try:
                full = self.run_once(self._clock.now()).attempted >= self._batch
                mono = self._clock.monotonic()
                if self._purged_at is None or mono - self._purged_at >= PURGE_EVERY_S:
                    self._purged_at = mono
                    self.purge(self._clock.now())
            except Exception:  # loop boundary: a bad round (database busy, a bug) never ends delivery
                logger.exception("outbox %s: delivery round failed", self.db.label)
            if not full:
                self._stop.wait(self._poll_s)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the background thread after its current round."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def close(self) -> None:
        self.stop()
        self._pool.shutdown(wait=True)
        if self._own_http:
            self._http.close()
        with self._db_lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def replay_command(target: Path | str | Database, ids: Sequence[str] | None, dead_only: bool) -> str:
    """`gridwatch outbox replay`: the named deliveries (with `dead_only`, only those that are dead letters), or
    with no ids every dead letter, back to pending; the running delivery sends them on its next round."""
    db = open_database(target, "cases")
    conn = _open(db)
    try:
        changed, missed = rows.replay(conn, ids or None, dead_only=dead_only)
    finally:
        conn.close()
    line = f"{changed} deliver{'y' if changed == 1 else 'ies'} back to pending in {db.label}"
    if missed:
        kind = "dead letters" if dead_only else "deliveries"
        line += f"; not {kind}: {', '.join(missed)}"
    return line
