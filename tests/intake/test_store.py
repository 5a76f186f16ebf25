from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.events import Event
from intake.store import MIGRATIONS, EventStore
from tests.intake.builders import BASE_TIME, make_event, make_event_with_blobs


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "db" / "events.sqlite3"


@pytest.fixture
def store(db_path: Path) -> Iterator[EventStore]:
    with EventStore(db_path) as opened:
        yield opened


def ids(events: list[Event]) -> list[str]:
    return [e.id for e in events]


def test_round_trip_keeps_every_field(store: EventStore) -> None:
    # given
    event, _ = make_event_with_blobs(seed=1)
    # when
    assert store.add(event) is True
    # then
    assert store.get(event.id) == event


def test_get_unknown_id_is_none(store: EventStore) -> None:
    assert store.get(make_event().id) is None


def test_add_is_idempotent_on_id(store: EventStore) -> None:
    # given
    first = make_event(camera_id="cam-1")
    same_id = make_event(event_id=first.id, camera_id="cam-2")
    # when
    added = [store.add(first), store.add(first), store.add(same_id)]
    # then
    assert added == [True, False, False]
    assert store.count() == 1
    assert store.get(first.id) == first


def test_journal_mode_is_wal_for_every_connection(store: EventStore, db_path: Path) -> None:
    store.add(make_event())
    other = sqlite3.connect(db_path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()


def test_reopening_keeps_events_and_schema_version(db_path: Path) -> None:
    event = make_event()
    with EventStore(db_path) as first:
        first.add(event)
        assert first.schema_version == len(MIGRATIONS)
    with EventStore(db_path) as second:
        assert second.schema_version == len(MIGRATIONS)
        assert second.get(event.id) == event


@pytest.fixture
def by_minute(store: EventStore) -> list[str]:
    """Six events a minute apart in `store`: cameras a/b alternate, rule r1 for the first four, r2 after."""
    events = [
        make_event(i * 60.0, camera_id="cam-a" if i % 2 == 0 else "cam-b", rule_id=f"r{1 + i // 4}") for i in range(6)
    ]
    for event in events:
        store.add(event)
    return ids(events)


def minute(i: int) -> datetime:
    return BASE_TIME + timedelta(minutes=i)


@pytest.mark.parametrize(
    ("camera", "rule", "since", "expected_minutes"),
    [
        (None, None, None, [5, 4, 3, 2, 1, 0]),
        ("cam-a", None, None, [4, 2, 0]),
        ("cam-b", "r1", None, [3, 1]),
        (None, "r2", None, [5, 4]),
        (None, None, minute(3), [5, 4, 3]),
        (None, None, minute(3).replace(tzinfo=None), [5, 4, 3]),  # naive means UTC
        ("cam-a", "r1", minute(1), [2]),
        ("cam-z", None, None, []),
    ],
)
def test_list_filters_newest_first(
    store: EventStore,
    by_minute: list[str],
    camera: str | None,
    rule: str | None,
    since: datetime | None,
    expected_minutes: list[int],
) -> None:
    expected = [by_minute[m] for m in expected_minutes]
    assert ids(store.list(camera_id=camera, rule_id=rule, since=since)) == expected
    assert store.count(camera_id=camera, rule_id=rule, since=since) == len(expected)


def test_keyset_paging_visits_every_event_once(store: EventStore, by_minute: list[str]) -> None:
    # given
    pages: list[list[str]] = []
    before: str | None = None
    # when
    while True:
        page = store.list(limit=4, before=before)
        if not page:
            break
        pages.append(ids(page))
        before = page[-1].id
    # then
    assert [len(p) for p in pages] == [4, 2]
    assert [event_id for page in pages for event_id in page] == by_minute[::-1]


def test_paging_with_a_filter_and_after_cursor(store: EventStore, by_minute: list[str]) -> None:
    newest_a = store.list(camera_id="cam-a", limit=1)
    assert ids(newest_a) == [by_minute[4]]
    older_a = store.list(camera_id="cam-a", before=newest_a[0].id)
    assert ids(older_a) == [by_minute[2], by_minute[0]]
    assert ids(store.list(after=by_minute[3])) == [by_minute[4], by_minute[5]]  # oldest first after a cursor
    assert store.count(after=by_minute[3], before=by_minute[5]) == 1


def test_paging_forward_from_an_after_cursor_visits_every_later_event_once(
    store: EventStore, by_minute: list[str]
) -> None:
    # given
    pages: list[list[str]] = []
    after = by_minute[0]
    # when
    while page := store.list(limit=2, after=after):
        pages.append(ids(page))
        after = page[-1].id
    # then: the oldest come first, none is skipped
    assert pages == [by_minute[1:3], by_minute[3:5], by_minute[5:]]


class TracedStore(EventStore):
    """An event store whose read connections record every statement they run."""

    def __init__(self, db_path: Path) -> None:
        self.statements: list[str] = []
        super().__init__(db_path)

    def _open_reader(self) -> sqlite3.Connection:
        conn = super()._open_reader()
        conn.set_trace_callback(self.statements.append)
        return conn


def query_plan(db_path: Path, sql: str) -> list[str]:
    conn = sqlite3.connect(db_path)
    try:
        return [str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("camera", "rule", "since", "before", "after"),
    [
        (None, None, minute(3), None, None),
        (None, None, datetime(2099, 1, 1, tzinfo=UTC), None, None),
        (None, None, minute(3), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ", None),
        ("cam-a", None, None, None, None),
        ("cam-a", None, minute(3), None, None),
        (None, "r1", None, None, None),
        (None, "r1", minute(3), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ", None),
        (None, None, None, None, "00000000000000000000000000"),
    ],
)
def test_filtered_queries_do_not_scan_the_whole_table(
    db_path: Path,
    camera: str | None,
    rule: str | None,
    since: datetime | None,
    before: str | None,
    after: str | None,
) -> None:
    # given: a store whose read connections record the statements they run, with values filled in
    with TracedStore(db_path) as store:
        for i in range(6):
            store.add(make_event(i * 60.0, camera_id="cam-a", rule_id="r1"))
        # when
        store.list(camera_id=camera, rule_id=rule, since=since, before=before, after=after)
        store.count(camera_id=camera, rule_id=rule, since=since, before=before, after=after)
        plans = [(sql, query_plan(db_path, sql)) for sql in store.statements if sql.startswith("SELECT")]
    # then
    assert len(plans) == 2
    for sql, plan in plans:
        assert not [step for step in plan if step.startswith("SCAN")], (sql, plan)


def test_limit_must_be_positive(store: EventStore) -> None:
    with pytest.raises(ValueError, match="limit 0"):
        store.list(limit=0)


def test_concurrent_adds_from_eight_threads_lose_nothing_and_add_shared_ones_once(store: EventStore) -> None:
    # given: each thread has 40 events of its own, and all threads race to add the same 20
    own = [[make_event(t * 1000 + i, camera_id=f"cam-{t}") for i in range(40)] for t in range(8)]
    shared = [make_event(100_000 + i, camera_id="shared") for i in range(20)]
    wins: list[int] = [0] * 8
    start = threading.Barrier(8)

    def worker(t: int) -> None:
        start.wait()
        for i, event in enumerate(own[t]):
            assert store.add(event)
            if i < len(shared):
                wins[t] += store.add(shared[(i + t) % len(shared)])

    # when
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then
    assert sum(wins) == len(shared)
    assert store.count() == 8 * 40 + len(shared)
    assert store.count(camera_id="shared") == len(shared)
    assert all(store.count(camera_id=f"cam-{t}") == 40 for t in range(8))


class PausingStore(EventStore):
    """An event store whose reads stop at their first step until `resume` is set: a slow query, held open."""

    def __init__(self, db_path: Path) -> None:
        self.reading = threading.Event()
        self.resume = threading.Event()
        super().__init__(db_path)

    def _open_reader(self) -> sqlite3.Connection:
        conn = super()._open_reader()
        conn.set_progress_handler(self._pause, 1)
        return conn

    def _pause(self) -> int:
        self.reading.set()
        self.resume.wait()
        return 0


def test_a_read_in_progress_does_not_hold_up_adds(db_path: Path) -> None:
    # given: a read that has started and is stopped inside SQLite
    early, late = make_event(0.0), make_event(60.0)
    with PausingStore(db_path) as store:
        store.add(early)
        results: list[list[Event]] = []
        reader = threading.Thread(target=lambda: results.append(store.list()), name="api-read")
        reader.start()
        try:
            assert store.reading.wait(timeout=10.0)
            # when: intake adds an event meanwhile
            writer = threading.Thread(target=store.add, args=(late,), name="patrol")
            writer.start()
            writer.join(timeout=10.0)  # a deadlock guard: it ends at once unless the read holds it up
            # then
            added = not writer.is_alive()
        finally:
            store.resume.set()
            reader.join()
        writer.join()
        assert added
        assert early.id in ids(results[0])
        assert ids(store.list()) == [late.id, early.id]


def test_close_closes_every_connection_it_opened(db_path: Path) -> None:
    # given: three reads held open at once, so the store opened three read connections
    store = PausingStore(db_path)
    store.add(make_event())
    readers = [threading.Thread(target=store.list) for _ in range(3)]
    for thread in readers:
        thread.start()
    deadline = time.monotonic() + 10.0  # a hang guard, not a timing
    while store.read_connections < 3 and time.monotonic() < deadline:
        time.sleep(0.001)
    store.resume.set()
    for thread in readers:
        thread.join()
    assert store.read_connections == 3
    # when
    store.close()
    # then: no connection is left, so SQLite removed the WAL files when the last one closed
    assert store.read_connections == 0
    assert not db_path.with_name(db_path.name + "-wal").exists()
    assert not db_path.with_name(db_path.name + "-shm").exists()
