"""The intake's database seam: one `Connection` protocol that the stores write their SQL against, and a
`Database` (SQLite file or PostgreSQL URL) that opens such connections.

The stores' SQL is one text for both engines wherever the two agree (placeholders are written `?`; the PostgreSQL
connection rewrites them), and a table per dialect where they do not (schemas, JSON functions). Each write is
`transaction(conn)`: on SQLite a `BEGIN IMMEDIATE` (the file's one writer lock), on PostgreSQL a `BEGIN` plus a
transaction-scoped advisory lock per store, so the stores' read-modify-write steps (a case's transition, the
outbox's claims) are serialised the same way on both, across every host that shares the database.
"""

from __future__ import annotations

import builtins
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol

from core.errors import GridwatchError

Dialect = Literal["sqlite", "postgres"]
# per dialect, the store's migrations: each one a list of statements, applied in one transaction, in order
Migrations = Mapping[Dialect, Sequence[Sequence[str]]]
Param = str | int | float | bytes | None
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class DatabaseError(GridwatchError):
    """The database cannot be opened or used as asked (no file, a closed store, an unsupported URL)."""


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> builtins.list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """One connection in autocommit mode: statements outside `transaction` commit on their own."""

    @property
    def dialect(self) -> Dialect: ...

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, params: Sequence[Param] = (), /) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Param]], /) -> Cursor: ...

    def begin(self) -> None:
        """Open a write transaction, serialised with every other writer of this store."""

    def table_exists(self, name: str) -> bool: ...

    def close(self) -> None: ...


class Database(Protocol):
    """Where a store lives: opens its connections and applies its migrations."""

    @property
    def dialect(self) -> Dialect: ...

    @property
    def label(self) -> str:
        """The store's address as it may be logged and shown: never a password."""

    def exists(self) -> bool:
        """Whether there is a database to read (a SQLite file may not have been made yet)."""

    def connect(self) -> Connection: ...

    def connect_reader(self) -> Connection:
        """A read-only connection (on SQLite under WAL, it reads beside the writer without blocking it)."""

    def migrate(self, conn: Connection, migrations: Migrations) -> int:
        """Apply the migrations not applied yet; the schema version after."""


def postgres_ddl(statements: Iterable[str]) -> tuple[str, ...]:
    """SQLite schema statements as PostgreSQL runs them: the same, less SQLite's `WITHOUT ROWID` table option
    (PostgreSQL tables have no rowid to leave out)."""
    return tuple(re.sub(r"\s*WITHOUT ROWID\s*$", "", statement) for statement in statements)


def open_database(target: Path | str | Database, store: str) -> Database:
    """`target` as a database: a Database as it is, a PostgreSQL URL, or a SQLite file's path. `store` names the
    store (events, cases): on PostgreSQL, where the stores share one database, it keys their migrations and their
    writer locks."""
    if isinstance(target, Path):
        from intake.sqlite import SqliteDatabase

        return SqliteDatabase(target)
    if isinstance(target, str):
        if not target.startswith(POSTGRES_SCHEMES):
            from intake.sqlite import SqliteDatabase

            return SqliteDatabase(Path(target))
        from intake.postgres import PostgresDatabase

        return PostgresDatabase(target, store)
    return target


@contextmanager
def transaction(conn: Connection) -> Iterator[Connection]:
    """A write transaction on `conn`: committed when the block ends, rolled back when it raises."""
    conn.begin()
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class ReadPool:
    """Read-only connections, one per concurrent reader, up to `keep` of them kept idle for reuse.

    Every connection opened is tracked until closed: `close()` closes the idle ones at once and the ones in use
    when their reader gives them back.
    """

    def __init__(self, opener: Callable[[], Connection], keep: int, what: str) -> None:
        self._opener = opener
        self._keep = keep
        self._what = what
        self._lock = threading.Lock()
        self._idle: builtins.list[Connection] = []
        self._open: set[int] = set()
        self._closed = False

    @property
    def open_count(self) -> int:
        with self._lock:
            return len(self._open)

    def _take(self) -> Connection:
        with self._lock:
            if self._closed:
                raise DatabaseError(f"{self._what} is closed")
            if self._idle:
                return self._idle.pop()
        conn = self._opener()
        with self._lock:
            self._open.add(id(conn))
        return conn

    def _give_back(self, conn: Connection, broken: bool) -> None:
        with self._lock:
            if not broken and not self._closed and len(self._idle) < self._keep:
                self._idle.append(conn)
                return
            self._open.discard(id(conn))
        conn.close()

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        conn = self._take()
        broken = False
        try:
            yield conn
        except BaseException:
            broken = True  # a failed read may have lost its connection: never hand that one out again
            raise
        finally:
            self._give_back(conn, broken)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open.difference_update(id(c) for c in idle)
        for conn in idle:
            conn.close()
