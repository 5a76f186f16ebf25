"""The event store: SQLite in WAL mode, one row per event, exactly-once on the event id.

One connection guarded by a lock serves every thread; SQLite work per call is well under a
millisecond, and WAL plus `busy_timeout` lets other processes (an API host, a worker) share the file.
"""

from __future__ import annotations

import builtins
import logging
import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from core.events import Event

logger = logging.getLogger(__name__)

ULID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"
BUSY_TIMEOUT_S = 10.0

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


class EventStore:
    """Events by id, listed newest first with keyset paging on the (time-ordered) ULID."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        self._closed = False
        try:
            self._configure()
            self._migrate()
        except BaseException:
            self._conn.close()
            raise

    def _configure(self) -> None:
        self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            logger.warning("event store %s: journal_mode is %s, not wal", self.db_path, mode)
        self._conn.execute("PRAGMA synchronous = FULL")

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
        """Newest first. `before`/`after` are event ids (cursors): only events with a smaller/larger id.

        `since` keeps events last seen at or after that instant.
        """
        if limit < 1:
            raise ValueError(f"limit {limit}: expected at least 1")
        where, params = _where(camera_id, rule_id, since, before, after)
        rows = self._fetch(f"SELECT body FROM events{where} ORDER BY id DESC LIMIT ?", (*params, limit))
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
        return self._scalar(f"SELECT count(*) FROM events{where}", params)

    def _fetch(self, sql: str, params: Sequence[str | int]) -> builtins.list[tuple[object, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _scalar(self, sql: str, params: Sequence[str | int]) -> int:
        value = self._fetch(sql, params)[0][0]
        if not isinstance(value, int):
            raise TypeError(f"{sql!r} returned {value!r}, expected an integer")
        return value

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
