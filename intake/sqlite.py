"""SQLite for the intake's stores: a file in WAL mode with a busy timeout, UTC text times, migrations.

The embedded default. WAL lets readers run beside the one writer, and `busy_timeout` lets other processes on the
host (an API, a `gridwatch outbox replay`) share the file.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from intake.db import Connection, Cursor, DatabaseError, Dialect, Migrations, Param

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 10.0


def iso_utc(moment: datetime) -> str:
    """Fixed-width UTC text that sorts like the instant it names; naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def connect(target: str | Path, *, uri: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), shareable between threads behind a lock."""
    conn = sqlite3.connect(target, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False, uri=uri)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    return conn


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to a store's file: under WAL it reads beside the writer without blocking it."""
    return connect(path.resolve().as_uri() + "?mode=ro", uri=True)


def use_wal(conn: sqlite3.Connection, what: str) -> None:
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        logger.warning("%s: journal_mode is %s, not wal", what, mode)
    conn.execute("PRAGMA synchronous = FULL")


class SqliteConnection:
    """A `Connection` over `sqlite3`: writes begin with `BEGIN IMMEDIATE`, the file's writer lock."""

    dialect: Dialect = "sqlite"

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    def execute(self, sql: str, params: Sequence[Param] = (), /) -> Cursor:
        return self.raw.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Param]], /) -> Cursor:
        return self.raw.executemany(sql, rows)

    def begin(self) -> None:
        self.raw.execute("BEGIN IMMEDIATE")

    def table_exists(self, name: str) -> bool:
        found = self.raw.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return found.fetchone() is not None

    def close(self) -> None:
        self.raw.close()


class SqliteDatabase:
    """A store in one SQLite file (made on first connect, with its folder)."""

    dialect: Dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def label(self) -> str:
        return str(self.path)

    def exists(self) -> bool:
        return self.path.is_file()

    def connect(self) -> Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(self.path)
        try:
            use_wal(conn, str(self.path))
        except BaseException:
            conn.close()
            raise
        return SqliteConnection(conn)

    def connect_reader(self) -> Connection:
        if not self.path.is_file():
            raise DatabaseError(f"no database at {self.path}")
        return SqliteConnection(connect_read_only(self.path))

    def migrate(self, conn: Connection, migrations: Migrations) -> int:
        return apply_migrations(conn, migrations["sqlite"], str(self.path))


def apply_migrations(conn: Connection, migrations: Sequence[Sequence[str]], what: str) -> int:
    """Apply the migrations not applied yet, each in order, all in one transaction; never edit a published one.
    Returns the schema version after."""
    conn.begin()
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        current = int(conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0])
        for version, statements in enumerate(migrations, start=1):
            if version <= current:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                (version, iso_utc(datetime.now(UTC))),
            )
            logger.info("%s: applied migration %d", what, version)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return max(current, len(migrations))
