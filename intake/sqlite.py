"""SQLite basics shared by the intake's stores: connections (WAL, busy timeout), UTC text times, migrations."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

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


def apply_migrations(conn: sqlite3.Connection, migrations: Sequence[Sequence[str]], what: str) -> None:
    """Apply the migrations not applied yet, each in order, all in one transaction; never edit a published one."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        current = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]
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
