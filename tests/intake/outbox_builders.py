"""Builders for the outbox tests: a database with the outbox table, secrets, targets, a clock that stands still."""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from intake.db import Connection, Database, open_database, transaction
from intake.outbox import OUTBOX_MIGRATION, enqueue
from intake.outbox_store import POSTGRES_OUTBOX
from intake.webhooks import TargetSettings
from tests.support.postgres import StoreTargets


class SimClock:
    """Simulated time: starts at the real now (so signatures are fresh for the package's wall-clock check)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.at = start or datetime.now(UTC)
        self.mono = 0.0

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)
        self.mono += seconds


def make_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def make_target(url: str, secret: str, **overrides: float | int) -> TargetSettings:
    values: dict[str, object] = {
        "url": url,
        "secret": secret,
        "timeout_s": 2.0,
        "max_attempts": 100,
        "backoff_base_s": 1.0,
        "backoff_max_s": 60.0,
        **overrides,
    }
    return TargetSettings.model_validate(values)


def make_db(targets: StoreTargets) -> Database:
    """The case store's database (a SQLite file in WAL mode, or PostgreSQL) with the outbox table, as the case
    store's migrations leave it."""
    db = open_database(targets.cases, "cases")
    conn = db.connect()
    try:
        db.migrate(conn, {"sqlite": (OUTBOX_MIGRATION,), "postgres": (POSTGRES_OUTBOX,)})
    finally:
        conn.close()
    return db


def put(conn: Connection, case_id: str, n: int, targets: Sequence[str], event_type: str = "case.updated") -> list[str]:
    """One case change with its deliveries, committed in one transaction (as the case store does)."""
    with transaction(conn):
        return enqueue(
            conn, case_id=case_id, event_type=event_type, payload={"case_id": case_id, "n": n}, targets=targets
        )


def outbox_rows(db: Database, columns: str = "id, state, attempts") -> list[tuple[object, ...]]:
    conn = db.connect_reader()
    try:
        return [tuple(r) for r in conn.execute(f"SELECT {columns} FROM outbox ORDER BY id").fetchall()]
    finally:
        conn.close()
