"""The event store: SQLite in WAL mode, one row per event, exactly-once on the event id.

Writes (migrations, `add`) go through one writer connection behind a lock. Reads use their own read-only
connections from a small pool: WAL lets them run beside the writer, so a slow API query never holds up intake.
WAL plus `busy_timeout` also lets other processes (an API host, a worker) share the file.
"""

from __future__ import annotations

import builtins
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from core.events import Event

logger = logging.getLogger(__name__)

ULID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"
BUSY_TIMEOUT_S = 10.0
READ_POOL_SIZE = 4  # idle read connections kept open; more concurrent reads open (and close) extra ones

# Each migration is a list of statements, applied in one transaction; never edit a published one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE events (
            id TEXT PRIMARY KEY,
            camera_id TEXT NOT NULL,
            rule_id TEXT NOT NULL,
            zone TEXT,
            category TEXT NOT NULL,
            severity TEXT NOT NULL,
            state TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            body TEXT NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX events_camera_id ON events (camera_id, id)",
        "CREATE INDEX events_rule_id ON events (rule_id, id)",
        "CREATE INDEX events_first_seen ON events (first_seen)",
        "CREATE INDEX events_last_seen ON events (last_seen)",
    ),
)


def iso_utc(moment: datetime) -> str:
    """Fixed-width UTC text that sorts like the instant it names; naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _connect(target: str | Path, *, uri: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(target, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False, uri=uri)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    return conn


class _ReadPool:
    """Read-only connections, one per concurrent reader, up to `keep` of them kept idle for reuse.

    Every connection opened is tracked until closed: `close()` closes the idle ones at once and the ones in use
    when their reader gives them back.
    """

    def __init__(self, opener: Callable[[], sqlite3.Connection], keep: int) -> None:
        self._opener = opener
        self._keep = keep
        self._lock = threading.Lock()
        self._idle: builtins.list[sqlite3.Connection] = []
        self._open: set[sqlite3.Connection] = set()
        self._closed = False

    @property
    def open_count(self) -> int:
        with self._lock:
            return len(self._open)

    def _take(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise sqlite3.ProgrammingError("event store is closed")
            if self._idle:
                return self._idle.pop()
        conn = self._opener()
        with self._lock:
            self._open.add(conn)
        return conn

    def _give_back(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._keep:
                self._idle.append(conn)
                return
            self._open.discard(conn)
        conn.close()

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        conn = self._take()
        try:
            yield conn
        finally:
            self._give_back(conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open.difference_update(idle)
        for conn in idle:
            conn.close()


def _where(
    camera_id: str | None,
    rule_id: str | None,
    since: datetime | None,
    before: str | None,
    after: str | None,
) -> tuple[str, list[str]]:
    clauses: list[str] = []
    params: list[str] = []
    for column, value in (("camera_id", camera_id), ("rule_id", rule_id)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        clauses.append("last_seen >= ?")
        params.append(iso_utc(since))
    for op, cursor in (("<", before), (">", after)):
        if cursor is not None:
            clauses.append(f"id {op} ?")
            params.append(cursor)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _table(camera_id: str | None, rule_id: str | None, since: datetime | None) -> str:
    """The FROM target. Left alone, SQLite answers a `since` filter by walking the whole table in id order
    (to skip the sort), which for a recent `since` reads every row; the last_seen index finds them directly.
    """
    if since is not None and camera_id is None and rule_id is None:
        return "events INDEXED BY events_last_seen"
    return "events"


class EventStore:
    """Events by id, listed with keyset paging on the (time-ordered) ULID."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = _connect(db_path)
        self._closed = False
        try:
            self._configure()
            self._migrate()
        except BaseException:
            self._conn.close()
            raise
        self._readers = _ReadPool(self._open_reader, READ_POOL_SIZE)

    def _configure(self) -> None:
        mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            logger.warning("event store %s: journal_mode is %s, not wal", self.db_path, mode)
        self._conn.execute("PRAGMA synchronous = FULL")

    def _open_reader(self) -> sqlite3.Connection:
        """A new read-only connection to the store's file (WAL: it reads beside the writer)."""
        return _connect(self.db_path.resolve().as_uri() + "?mode=ro", uri=True)

    def _migrate(self) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            current = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]
            for version, statements in enumerate(MIGRATIONS, start=1):
                if version <= current:
                    continue
                for statement in statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (version, iso_utc(datetime.now(UTC))),
                )
                logger.info("event store %s: applied migration %d", self.db_path, version)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @property
    def schema_version(self) -> int:
        return self._scalar("SELECT coalesce(max(version), 0) FROM schema_migrations", ())

    def add(self, event: Event) -> bool:
        """Insert `event`; False (and no change) when an event with this id is already stored."""
        row = (
            event.id,
            event.camera_id,
            event.rule_id,
            event.zone,
            event.category,
            event.severity.value,
            event.state.value,
            iso_utc(event.first_seen),
            iso_utc(event.last_seen),
            event.model_dump_json(),
        )
        with self._lock:
            cursor = self._conn.execute(
                "INSERT OR IGNORE INTO events (id, camera_id, rule_id, zone, category, severity, state,"
                " first_seen, last_seen, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            added = cursor.rowcount == 1
        if not added:
            logger.debug("event %s already stored: ignored", event.id)
        return added

    def get(self, event_id: str) -> Event | None:
        rows = self._fetch("SELECT body FROM events WHERE id = ?", (event_id,))
        return Event.model_validate_json(str(rows[0][0])) if rows else None

    def list(
        self,
        camera_id: str | None = None,
        rule_id: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
        before: str | None = None,
        after: str | None = None,
    ) -> builtins.list[Event]:
        """Newest first; with `after`, oldest first. `before`/`after` are event ids (cursors): only events with a
        smaller/larger id. So `limit` keeps the newest events before `before`, and the oldest after `after`:
        paging forward from `after` with the last id of each page visits every event once.

        `since` keeps events last seen at or after that instant.
        """
        if limit < 1:
            raise ValueError(f"limit {limit}: expected at least 1")
        where, params = _where(camera_id, rule_id, since, before, after)
        table = _table(camera_id, rule_id, since)
        order = "ASC" if after is not None else "DESC"
        rows = self._fetch(f"SELECT body FROM {table}{where} ORDER BY id {order} LIMIT ?", (*params, limit))
        return [Event.model_validate_json(str(body)) for (body,) in rows]

    def count(
        self,
        camera_id: str | None = None,
        rule_id: str | None = None,
        since: datetime | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> int:
        where, params = _where(camera_id, rule_id, since, before, after)
        return self._scalar(f"SELECT count(*) FROM {_table(camera_id, rule_id, since)}{where}", params)

    def _fetch(self, sql: str, params: Sequence[str | int]) -> builtins.list[tuple[object, ...]]:
        with self._readers.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def _scalar(self, sql: str, params: Sequence[str | int]) -> int:
        value = self._fetch(sql, params)[0][0]
        if not isinstance(value, int):
            raise TypeError(f"{sql!r} returned {value!r}, expected an integer")
        return value

    @property
    def read_connections(self) -> int:
        """Read connections open now (idle in the pool or in use)."""
        return self._readers.open_count

    def close(self) -> None:
        """Close the writer and every read connection (one in use closes when its read ends)."""
        self._readers.close()
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
