"""PostgreSQL for the intake's stores (psycopg 3), for several API and worker hosts sharing one database.

The stores write `?` placeholders; `pg_sql` rewrites them to psycopg's `%s` (and a literal `%` to `%%`), outside
quoted text. Every store in one database keeps its own migration history in `gridwatch_migrations`, and each write
transaction takes the store's advisory lock (`pg_advisory_xact_lock`), released at COMMIT or ROLLBACK: the same one
writer per store that SQLite's `BEGIN IMMEDIATE` gives, now across hosts. Reads run beside the writers.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache

import psycopg
from psycopg.pq import TransactionStatus

from core.redact import sanitize_url
from intake.db import Connection, Cursor, DatabaseError, Dialect, Migrations, Param

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10
STATEMENT_TIMEOUT_MS = 60_000  # a runaway query ends with an error instead of holding a connection for ever
LOCK_TIMEOUT_MS = 30_000  # a writer that cannot get its store's lock in this time fails (and its caller retries)


@lru_cache(maxsize=1024)
def pg_sql(sql: str) -> str:
    """`sql` with each `?` outside quotes as `%s` and each `%` as `%%` (psycopg's placeholder syntax)."""
    out: list[str] = []
    quote: str | None = None
    for char in sql:
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "?":
            out.append("%s")
            continue
        if char == "%":
            out.append("%%")
            continue
        out.append(char)
    return "".join(out)


def lock_key(store: str) -> int:
    """A stable signed 64-bit advisory-lock key for a store's name."""
    digest = hashlib.sha256(f"gridwatch.store.{store}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


MIGRATION_LOCK = lock_key("migrations")


class PostgresConnection:
    """A `Connection` over psycopg in autocommit mode; `begin` also takes the store's advisory lock."""

    dialect: Dialect = "postgres"

    def __init__(self, raw: psycopg.Connection[tuple[object, ...]], key: int) -> None:
        self.raw = raw
        self._key = key

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def execute(self, sql: str, params: Sequence[Param] = (), /) -> Cursor:
        return self.raw.execute(pg_sql(sql), tuple(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Param]], /) -> Cursor:
        cur = self.raw.cursor()
        cur.executemany(pg_sql(sql), [tuple(r) for r in rows])
        return cur

    def begin(self) -> None:
        try:  # one round trip: a simple query of two statements (the key is an int, made here)
            self.raw.execute(f"BEGIN; SELECT pg_advisory_xact_lock({int(self._key)})".encode())
        except BaseException:
            if self.in_transaction:
                self.raw.execute("ROLLBACK")
            raise

    def table_exists(self, name: str) -> bool:
        row = self.raw.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
        return bool(row and row[0])

    def close(self) -> None:
        self.raw.close()


class PostgresDatabase:
    """One store (`events`, `cases`) in a PostgreSQL database named by a URL."""

    dialect: Dialect = "postgres"

    def __init__(self, url: str, store: str) -> None:
        self.url = url
        self.store = store
        self._key = lock_key(store)

    @property
    def label(self) -> str:
        return f"{sanitize_url(self.url)} ({self.store})"

    def exists(self) -> bool:
        return True

    def _open(self, *, read_only: bool) -> PostgresConnection:
        options = f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={LOCK_TIMEOUT_MS}"
        if read_only:
            options += " -c default_transaction_read_only=on"
        try:
            raw = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_S,
                options=options,
                application_name=f"gridwatch-{self.store}",
            )
        except psycopg.Error as exc:
            # psycopg's message names host and port, never the password; the URL is shown without it
            raise DatabaseError(f"cannot connect to {self.label}: {str(exc).strip()}") from None
        raw.execute("SET TIME ZONE 'UTC'")
        return PostgresConnection(raw, self._key)

    def connect(self) -> Connection:
        return self._open(read_only=False)

    def connect_reader(self) -> Connection:
        return self._open(read_only=True)

    def migrate(self, conn: Connection, migrations: Migrations) -> int:
        steps = migrations["postgres"]
        conn.begin()  # two hosts starting at once: the second waits on the store's lock, then finds all applied
        try:
            conn.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))  # one store's schema change at a time
            conn.execute(
                "CREATE TABLE IF NOT EXISTS gridwatch_migrations (store TEXT NOT NULL, version INTEGER NOT NULL,"
                " applied_at TEXT NOT NULL, PRIMARY KEY (store, version))"
            )
            row = conn.execute(
                "SELECT coalesce(max(version), 0) FROM gridwatch_migrations WHERE store = ?", (self.store,)
            ).fetchone()
            current = int(row[0])
            for version, statements in enumerate(steps, start=1):
                if version <= current:
                    continue
                for statement in statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO gridwatch_migrations (store, version, applied_at) VALUES (?, ?, ?)",
                    (self.store, version, datetime.now(UTC).isoformat()),
                )
                logger.info("%s: applied migration %d", self.label, version)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return max(current, len(steps))
