"""The outbox table: deliveries written in the caller's transaction, claimed, recorded, listed and replayed.

Each row is one delivery of one case change to one target. Rows of one (target, case) form a queue in `seq`
order: only its head (the lowest `seq` not delivered) may be sent, so a delivery that keeps failing, or a dead
letter, holds back the later ones of its case at that target until it is delivered or replayed; other cases and
other targets go on. Times are fixed-width UTC text (`iso_utc`); `next_attempt_at = ''` means due at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict
from ulid import ULID

from core.errors import GridwatchError
from core.redact import sanitize_url
from intake.db import Connection, postgres_ddl, transaction
from intake.sqlite import iso_utc
from intake.webhooks import render_body

OUTBOX_MIGRATION: tuple[str, ...] = (
    """CREATE TABLE outbox (
        id TEXT PRIMARY KEY,
        target TEXT NOT NULL,
        case_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        event_type TEXT NOT NULL,
        body TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        next_attempt_at TEXT NOT NULL DEFAULT '',
        claimed_until TEXT,
        last_status INTEGER,
        last_error TEXT,
        done_at TEXT,
        UNIQUE (target, case_id, seq)
    ) WITHOUT ROWID""",
    "CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending'",
    "CREATE INDEX outbox_state ON outbox (state, target)",
)
POSTGRES_OUTBOX = postgres_ddl(OUTBOX_MIGRATION)

_EARLIER_UNDELIVERED = """EXISTS (SELECT 1 FROM outbox AS e WHERE e.target = o.target AND e.case_id = o.case_id
    AND e.seq < o.seq AND e.state != 'delivered')"""
_CHUNK = 500  # ids per statement, well under SQLite's limit on bound parameters

Outcome = Literal["delivered", "retry", "dead"]


class OutboxError(GridwatchError):
    """The outbox cannot do what was asked: no outbox table, no open transaction, nothing named to replay."""


class DeliveryReport(BaseModel):
    """What one `run_once` did."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0


class DeadLetter(BaseModel):
    """A delivery given up on: its last HTTP status (None: no answer) and error. No secret, no URL credentials."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    target: str
    case_id: str
    seq: int
    event_type: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    dead_at: datetime


class TargetStats(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str
    pending: int = 0
    held: int = 0  # pending behind an earlier undelivered delivery of the same case (counted in `pending` too)
    delivered: int = 0
    dead: int = 0
    oldest_pending_at: datetime | None = None


class OutboxStats(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    targets: list[TargetStats]
    unconfigured: list[str]  # targets with rows but no settings: their deliveries wait


@dataclass(frozen=True)
class DueRow:
    id: str
    target: str
    case_id: str
    seq: int
    event_type: str
    body: str
    attempts: int
    claim: str


@dataclass(frozen=True)
class Result:
    row: DueRow
    outcome: Outcome
    status: int | None
    error: str | None
    next_attempt_at: datetime | None  # for a retry


def _time(text: object) -> datetime:
    return datetime.fromisoformat(str(text)).astimezone(UTC)


def enqueue(
    conn: Connection,
    *,
    case_id: str,
    event_type: str,
    payload: Mapping[str, object],
    targets: Sequence[str],
    occurred_at: datetime | None = None,
) -> list[str]:
    """One delivery per target, inserted in the caller's open transaction (never committed here); their
    webhook ids (ULIDs), in the order of `targets`. The body is rendered now, so every attempt sends the same bytes;
    `payload` must be JSON-serialisable. `occurred_at` (default: now) is the body's `timestamp`.
    """
    if not conn.in_transaction:
        raise OutboxError("enqueue: no open transaction; BEGIN first, so the deliveries commit with the case change")
    if len(set(targets)) != len(targets):
        raise OutboxError(f"enqueue: targets {list(targets)!r} name one target twice")
    created = datetime.now(UTC)
    body = render_body(event_type, occurred_at or created, payload)
    ids: list[str] = []
    for target in targets:
        webhook_id = str(ULID())
        conn.execute(
            "INSERT INTO outbox (id, target, case_id, seq, event_type, body, created_at)"
            " SELECT ?, ?, ?, coalesce(max(seq), 0) + 1, ?, ?, ? FROM outbox WHERE target = ? AND case_id = ?",
            (webhook_id, target, case_id, event_type, body, iso_utc(created), target, case_id),
        )
        ids.append(webhook_id)
    return ids


def has_outbox(conn: Connection) -> bool:
    return conn.table_exists("outbox")


def claim_due(conn: Connection, now: datetime, targets: Sequence[str], limit: int, lease: timedelta) -> list[DueRow]:
    """Claim up to `limit` due queue heads of the configured `targets` for `lease` (one transaction), so that
    another deliverer on the same file skips them until the lease ends; the oldest due first."""
    if not targets:
        return []
    at, claim = iso_utc(now), iso_utc(now + lease)
    marks = ", ".join("?" * len(targets))
    select = (
        "SELECT o.id, o.target, o.case_id, o.seq, o.event_type, o.body, o.attempts FROM outbox AS o"
        f" WHERE o.state = 'pending' AND o.next_attempt_at <= ? AND o.target IN ({marks})"
        f" AND (o.claimed_until IS NULL OR o.claimed_until <= ?) AND NOT {_EARLIER_UNDELIVERED}"
        " ORDER BY o.next_attempt_at, o.id LIMIT ?"
    )
    params: tuple[str | int, ...] = (at, *targets, at, limit)
    if conn.execute(select, params).fetchone() is None:
        return []  # nothing due: the writer lock is not taken, so an idle outbox never holds up the case store
    with transaction(conn):
        rows = conn.execute(select, params).fetchall()
        if rows:
            conn.executemany("UPDATE outbox SET claimed_until = ? WHERE id = ?", [(claim, r[0]) for r in rows])
    return [
        DueRow(id=r[0], target=r[1], case_id=r[2], seq=r[3], event_type=r[4], body=r[5], attempts=r[6], claim=claim)
        for r in rows
    ]


def record(conn: Connection, results: Sequence[Result], now: datetime) -> None:
    """Store the outcome of each attempt, in one transaction. A row replayed (or re-claimed after its lease ran
    out) while it was being sent is left as it is now: its claim no longer matches."""
    at = iso_utc(now)
    params = [
        (
            {"delivered": "delivered", "retry": "pending", "dead": "dead"}[r.outcome],
            r.status,
            r.error,
            iso_utc(r.next_attempt_at) if r.next_attempt_at is not None else "",
            None if r.outcome == "retry" else at,
            r.row.id,
            r.row.claim,
        )
        for r in results
    ]
    with transaction(conn):
        conn.executemany(
            "UPDATE outbox SET state = ?, attempts = attempts + 1, last_status = ?, last_error = ?,"
            " next_attempt_at = ?, done_at = ?, claimed_until = NULL"
            " WHERE id = ? AND state = 'pending' AND claimed_until = ?",
            params,
        )


def replay(conn: Connection, ids: Sequence[str] | None, *, dead_only: bool) -> tuple[int, list[str]]:
    """Put deliveries back to pending, due at once, with their attempts reset (the webhook id stays, so a
    receiver that had it already drops it). `ids` None: every dead letter (needs `dead_only`). Returns how many
    rows changed and the ids that matched none (unknown, or not dead with `dead_only`)."""
    if ids is None and not dead_only:
        raise OutboxError("replay: name the deliveries to send again, or ask for every dead letter")
    only_dead = " AND state = 'dead'" if dead_only else ""
    reset = (
        "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = '', claimed_until = NULL,"
        f" done_at = NULL WHERE 1 = 1{only_dead}"
    )
    with transaction(conn):
        changed, missed = 0, list[str]()
        if ids is None:
            changed = conn.execute(reset).rowcount
        else:
            for start in range(0, len(ids), _CHUNK):
                chunk = list(dict.fromkeys(ids[start : start + _CHUNK]))
                marks = ", ".join("?" * len(chunk))
                found = {r[0] for r in conn.execute(f"SELECT id FROM outbox WHERE id IN ({marks}){only_dead}", chunk)}
                missed += [i for i in chunk if i not in found]
                changed += conn.execute(f"{reset} AND id IN ({marks})", chunk).rowcount
    return changed, missed


def purge_delivered(conn: Connection, before: datetime, limit: int) -> int:
    """Delete up to `limit` delivered rows done before `before`, in one transaction; how many went. The last row
    of each (target, case) queue stays, so the next change of that case is numbered after it."""
    with transaction(conn):
        return conn.execute(
            "DELETE FROM outbox WHERE id IN (SELECT o.id FROM outbox AS o WHERE o.state = 'delivered'"
            " AND o.done_at < ? AND EXISTS (SELECT 1 FROM outbox AS n WHERE n.target = o.target"
            " AND n.case_id = o.case_id AND n.seq > o.seq) ORDER BY o.done_at LIMIT ?)",
            (iso_utc(before), limit),
        ).rowcount


def dead_letters(conn: Connection, limit: int) -> list[DeadLetter]:
    rows = conn.execute(
        "SELECT id, target, case_id, seq, event_type, attempts, last_status, last_error, created_at, done_at"
        " FROM outbox WHERE state = 'dead' ORDER BY done_at, id LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        DeadLetter(
            id=r[0],
            target=sanitize_url(r[1]),
            case_id=r[2],
            seq=r[3],
            event_type=r[4],
            attempts=r[5],
            last_status=r[6],
            last_error=r[7],
            created_at=_time(r[8]),
            dead_at=_time(r[9]),
        )
        for r in rows
    ]


def stats(conn: Connection, configured: Sequence[str]) -> OutboxStats:
    per: dict[str, dict[str, object]] = {name: {} for name in configured}
    for target, state, count, oldest in conn.execute(
        "SELECT target, state, count(*), min(created_at) FROM outbox GROUP BY target, state"
    ):
        per.setdefault(target, {})[state] = count
        if state == "pending":
            per[target]["oldest_pending_at"] = _time(oldest)
    held = f"SELECT o.target, count(*) FROM outbox AS o WHERE o.state = 'pending' AND {_EARLIER_UNDELIVERED}"
    for target, count in conn.execute(f"{held} GROUP BY o.target"):
        per[target]["held"] = count
    return OutboxStats(
        targets=[TargetStats.model_validate({"target": sanitize_url(t), **v}) for t, v in sorted(per.items())],
        unconfigured=sorted(sanitize_url(t) for t in per if t not in configured),
    )
