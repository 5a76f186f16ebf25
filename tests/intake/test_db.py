"""The database seam: placeholders for psycopg, URLs never shown with their secrets, several hosts on one
PostgreSQL database (migrations once, one writer per store)."""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.events import Evidence
from core.settings import IntakeSettings
from intake.case_model import CaseCreate
from intake.case_store import MIGRATIONS as CASE_MIGRATIONS
from intake.case_store import CaseStore
from intake.db import DatabaseError, open_database
from intake.postgres import PostgresDatabase, pg_sql
from intake.sqlite import SqliteDatabase
from intake.store import MIGRATIONS as EVENT_MIGRATIONS
from intake.store import EventStore
from tests.intake.builders import make_event
from tests.support.postgres import PostgresServer

AT = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT a FROM t WHERE b = ? AND c > ?", "SELECT a FROM t WHERE b = %s AND c > %s"),
        ("SELECT '?' || ? FROM t", "SELECT '?' || %s FROM t"),
        ("SELECT a FROM t WHERE c LIKE '05%' AND d = ?", "SELECT a FROM t WHERE c LIKE '05%%' AND d = %s"),
        ('SELECT "we?ird" FROM t', 'SELECT "we?ird" FROM t'),
        ("SELECT 'it''s ?', ?", "SELECT 'it''s ?', %s"),
    ],
)
def test_placeholders_become_psycopgs_outside_quotes(sql: str, expected: str) -> None:
    assert pg_sql(sql) == expected


def test_a_path_or_a_url_chooses_the_backend(tmp_path: Path) -> None:
    assert isinstance(open_database(tmp_path / "x.sqlite3", "events"), SqliteDatabase)
    assert isinstance(open_database("postgresql://db.internal/gw", "events"), PostgresDatabase)
    assert isinstance(open_database("postgres://db.internal/gw", "cases"), PostgresDatabase)


def test_the_url_is_never_shown_with_its_password(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    url = f"postgresql://gridwatch:hunter22@127.0.0.1:{port}/gw"
    db = PostgresDatabase(url, "cases")
    assert "hunter22" not in db.label and db.label.endswith(f"127.0.0.1:{port}/gw (cases)")
    with caplog.at_level(logging.DEBUG), pytest.raises(DatabaseError) as raised:
        CaseStore(url)
    assert "hunter22" not in str(raised.value) and "hunter22" not in caplog.text
    assert f"127.0.0.1:{port}" in str(raised.value)


def test_the_setting_takes_only_postgresql_urls_and_hides_them() -> None:
    settings = IntakeSettings.model_validate({"database_url": "postgresql://gw:hunter22@db/gw"})
    assert "hunter22" not in repr(settings) and "hunter22" not in settings.model_dump_json()
    with pytest.raises(ValidationError, match="postgresql://"):
        IntakeSettings.model_validate({"database_url": "mysql://gw@db/gw"})


def test_two_hosts_starting_at_once_migrate_once(postgres: PostgresServer) -> None:
    url = postgres.new_database()
    with ThreadPoolExecutor(4) as pool:  # each store's first start, twice over, at once; .result() re-raises
        stores = [f.result() for f in [pool.submit(k, url) for k in (CaseStore, CaseStore, EventStore, EventStore)]]
    conn = PostgresDatabase(url, "cases").connect_reader()
    try:
        rows = conn.execute("SELECT store, version FROM gridwatch_migrations ORDER BY store, version").fetchall()
    finally:
        conn.close()
    expected = [
        (store, v)
        for store, m in (("cases", CASE_MIGRATIONS), ("events", EVENT_MIGRATIONS))
        for v in range(1, len(m["postgres"]) + 1)
    ]
    assert rows == expected  # each version once, though four stores started at once
    for store in stores:
        store.close()


def photo(n: int) -> Evidence:
    digest = hashlib.sha256(f"photo {n}".encode()).hexdigest()
    return Evidence(
        key=f"{digest}.jpg", kind="photo", content_type="image/jpeg", sha256=digest, width=64, height=48, stage="before"
    )


def test_two_hosts_never_interleave_their_writes_to_one_case(postgres: PostgresServer) -> None:
    # given: two case stores (two hosts) on one database, and one case
    url = postgres.new_database()
    first, second = CaseStore(url), CaseStore(url)
    case, _ = first.create(CaseCreate(sender_id="app:1", category="0505"), actor="gw", role="operator", at=AT)

    # when: each attaches 20 photos of its own, one at a time, at the same time (each a read-modify-write)
    def attach(store: CaseStore, start: int) -> None:
        for n in range(start, start + 20):
            store.attach_photos(case.id, [photo(n)], actor="gw", role="operator", at=AT)

    threads = [threading.Thread(target=attach, args=(s, i * 100)) for i, s in enumerate((first, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then: no photo lost, each audited once
    final = second.get(case.id)
    assert final is not None
    assert {e.key for e in final.evidence} == {photo(n).key for n in [*range(20), *range(100, 120)]}
    assert [e.action for e in final.audit].count("photo") == 40
    first.close()
    second.close()


def test_one_event_store_per_host_adds_each_event_once(postgres: PostgresServer) -> None:
    url = postgres.new_database()
    hosts = [EventStore(url), EventStore(url)]
    events = [make_event(float(i)) for i in range(50)]
    added: list[bool] = []
    lock = threading.Lock()

    def add_all(store: EventStore) -> None:
        for event in events:
            result = store.add(event)
            with lock:
                added.append(result)

    threads = [threading.Thread(target=add_all, args=(h,)) for h in hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert added.count(True) == 50 and hosts[0].count() == 50
    for host in hosts:
        host.close()
