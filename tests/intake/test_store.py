from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.events import Event, EventState
from intake.db import Connection
from intake.sqlite import SqliteConnection
from intake.store import MIGRATIONS, EventStore, IncidentStateFilter, IncidentSummary, iso_utc
from tests.intake.builders import BASE_TIME, make_event, make_event_with_blobs, ulid_at
from tests.support.postgres import StoreTargets


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "db" / "events.sqlite3"


@pytest.fixture
def store(store_targets: StoreTargets) -> Iterator[EventStore]:
    """An event store on each backend, SQLite and PostgreSQL."""
    with EventStore(store_targets.events) as opened:
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


def test_journal_mode_is_wal_for_every_connection(db_path: Path) -> None:
    with EventStore(db_path) as store:
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
        assert first.schema_version == len(MIGRATIONS["sqlite"])
    with EventStore(db_path) as second:
        assert second.schema_version == len(MIGRATIONS["sqlite"])
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

    def _open_reader(self) -> Connection:
        conn = super()._open_reader()
        assert isinstance(conn, SqliteConnection)
        conn.raw.set_trace_callback(self.statements.append)
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

    def _open_reader(self) -> Connection:
        conn = super()._open_reader()
        assert isinstance(conn, SqliteConnection)
        conn.raw.set_progress_handler(self._pause, 1)
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


# --- incidents ---------------------------------------------------------------------------------------------------

INCIDENT_A = ulid_at(BASE_TIME)
INCIDENT_B = ulid_at(BASE_TIME + timedelta(seconds=1))


def lifecycle(
    incident_id: str, start: float, *, camera_id: str = "cam-1", closed: bool = True
) -> tuple[Event, Event, Event | None]:
    """An incident's open (with evidence), one update 60 s later (fresh evidence) and, if `closed`, its close
    125 s after that (no evidence). All share the open's first_seen."""
    opened_at = BASE_TIME + timedelta(seconds=start - 5)
    common = {"incident_id": incident_id, "camera_id": camera_id, "first_seen": opened_at}
    first, _ = make_event_with_blobs(seed=int(start) * 2, seconds=start, camera_id=camera_id)
    fresh, _ = make_event_with_blobs(seed=int(start) * 2 + 1, seconds=start + 60, camera_id=camera_id)
    opened = make_event(start, evidence=first.evidence, **common)
    update = make_event(start + 60, state=EventState.update, evidence=fresh.evidence, **common)
    close = make_event(start + 185, state=EventState.close, **common) if closed else None
    return opened, update, close


def test_an_incident_sums_up_its_open_update_and_close(store: EventStore) -> None:
    # given
    opened, update, close = lifecycle(INCIDENT_A, 0.0)
    assert close is not None
    # when
    for event in (opened, update, close):
        assert store.add(event)
    # then
    summary = store.get_incident(INCIDENT_A)
    assert summary == IncidentSummary(
        incident_id=INCIDENT_A,
        state=EventState.close,
        first_seen=opened.first_seen,
        last_seen=close.last_seen,
        event_count=3,
        evidence=update.evidence,
        latest=close,
    )
    assert store.list_incidents() == [summary]
    assert ids(store.list(incident_id=INCIDENT_A)) == [close.id, update.id, opened.id]
    assert store.count(incident_id=INCIDENT_A) == 3


def test_an_open_incident_shows_its_latest_event_with_evidence(store: EventStore) -> None:
    opened, update, _ = lifecycle(INCIDENT_A, 0.0, closed=False)
    store.add(opened)
    first = store.get_incident(INCIDENT_A)
    assert first is not None
    assert (first.state, first.event_count, first.evidence, first.latest) == ("open", 1, opened.evidence, opened)
    store.add(update)
    second = store.get_incident(INCIDENT_A)
    assert second is not None
    assert (second.state, second.event_count, second.evidence, second.latest) == ("update", 2, update.evidence, update)


def test_events_arriving_out_of_order_give_the_same_incident(store: EventStore, tmp_path: Path) -> None:
    # given: the same lifecycle stored in order in one store, and close, open, update (a late retry) in another
    events = lifecycle(INCIDENT_A, 0.0)
    opened, update, close = events
    assert close is not None
    with EventStore(tmp_path / "in-order.sqlite3") as in_order:
        for event in (opened, update, close):
            in_order.add(event)
        expected = in_order.get_incident(INCIDENT_A)
    # when
    for event in (close, opened, update, update, close):
        store.add(event)
    # then: the latest is still the close, the evidence the update's, first_seen the open's, each event counted once
    assert store.get_incident(INCIDENT_A) == expected


def test_events_without_an_incident_have_no_incident_and_are_listed_by_the_empty_id(store: EventStore) -> None:
    plain = make_event(0.0)
    opened, _, _ = lifecycle(INCIDENT_A, 10.0)
    store.add(plain)
    store.add(opened)
    assert ids(store.list(incident_id="")) == [plain.id]
    assert store.count(incident_id="") == 1
    assert [s.incident_id for s in store.list_incidents()] == [INCIDENT_A]
    assert store.get_incident("") is None
    assert store.get_incident(INCIDENT_B) is None


@pytest.fixture
def incidents(store: EventStore) -> dict[str, str]:
    """Five incidents, the newest activity last: name -> incident id.
    a1 (cam-a, closed), b1 (cam-b, open), a2 (cam-a, open), b2 (cam-b, closed); then a1-late, an open incident on cam-a
    whose open is oldest of all but whose update comes after everything else."""
    names = ["a1", "b1", "a2", "b2"]
    made: dict[str, str] = {}
    for i, name in enumerate(names):
        incident_id = ulid_at(BASE_TIME + timedelta(seconds=1000 * (i + 1)))
        for event in lifecycle(incident_id, 1000.0 * (i + 1), camera_id=f"cam-{name[0]}", closed=i % 3 == 0):
            if event is not None:
                store.add(event)
        made[name] = incident_id
    late = ulid_at(BASE_TIME)
    opened, update, _ = lifecycle(late, 0.0, camera_id="cam-a", closed=False)
    store.add(opened)
    store.add(update.model_copy(update={"id": ulid_at(BASE_TIME + timedelta(seconds=9000))}))
    made["a1-late"] = late
    return made


@pytest.mark.parametrize(
    ("camera", "state", "expected"),
    [
        (None, None, ["a1-late", "b2", "a2", "b1", "a1"]),
        (None, "open", ["a1-late", "a2", "b1"]),
        (None, "closed", ["b2", "a1"]),
        ("cam-a", None, ["a1-late", "a2", "a1"]),
        ("cam-b", "open", ["b1"]),
        ("cam-b", "closed", ["b2"]),
        ("cam-z", None, []),
    ],
)
def test_list_incidents_filters_newest_activity_first(
    store: EventStore,
    incidents: dict[str, str],
    camera: str | None,
    state: IncidentStateFilter | None,
    expected: list[str],
) -> None:
    listed = store.list_incidents(camera_id=camera, state=state)
    assert [s.incident_id for s in listed] == [incidents[name] for name in expected]
    assert all(s.event_count == (3 if s.state == "close" else 2) for s in listed)


def test_incident_paging_visits_every_incident_once(store: EventStore, incidents: dict[str, str]) -> None:
    # given
    pages: list[list[str]] = []
    before: str | None = None
    # when
    while page := store.list_incidents(limit=2, before=before):
        pages.append([s.incident_id for s in page])
        before = page[-1].latest.id
    # then
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sorted(i for p in pages for i in p) == sorted(incidents.values())
    assert [s.incident_id for s in store.list_incidents(camera_id="cam-a", limit=1, before=before)] == []


def test_list_incidents_limit_must_be_positive(store: EventStore) -> None:
    with pytest.raises(ValueError, match="limit 0"):
        store.list_incidents(limit=0)


@pytest.mark.parametrize(
    ("camera", "state", "before"),
    [
        (None, None, None),
        (None, None, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"),
        (None, "open", None),
        (None, "closed", "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"),
        ("cam-a", None, None),
        ("cam-a", None, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"),
        ("cam-a", "open", None),
        ("cam-a", "closed", "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"),
    ],
)
def test_incident_queries_read_an_index_in_order(
    db_path: Path, camera: str | None, state: IncidentStateFilter | None, before: str | None
) -> None:
    # given
    with TracedStore(db_path) as store:
        for i in range(3):
            for event in lifecycle(ulid_at(BASE_TIME + timedelta(seconds=1000 * i)), 1000.0 * i, camera_id="cam-a"):
                assert event is not None
                store.add(event)
        # when
        store.list_incidents(camera_id=camera, state=state, before=before)
        store.get_incident(INCIDENT_A)
        plans = [(sql, query_plan(db_path, sql)) for sql in store.statements if sql.startswith("SELECT")]
    # then: each page is a range of an index, read in the order asked for, with primary-key look-ups of the events
    assert len(plans) == 2
    for sql, plan in plans:
        assert not [step for step in plan if "TEMP B-TREE" in step], (sql, plan)
        scans = [step for step in plan if step.startswith("SCAN")]
        if camera is None and state is None and before is None and "LIMIT" in sql:
            assert scans == ["SCAN i USING INDEX incidents_latest"], (sql, plan)  # stops after `limit` rows
        else:
            assert scans == [], (sql, plan)


@pytest.mark.parametrize(
    ("camera", "since", "before"),
    [(None, None, None), ("cam-a", None, None), (None, minute(3), None), (None, None, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ")],
)
def test_incident_filter_on_events_is_served_by_its_index(
    db_path: Path, camera: str | None, since: datetime | None, before: str | None
) -> None:
    with TracedStore(db_path) as store:
        for event in lifecycle(INCIDENT_A, 0.0, camera_id="cam-a"):
            assert event is not None
            store.add(event)
        store.list(incident_id=INCIDENT_A, camera_id=camera, since=since, before=before)
        store.count(incident_id=INCIDENT_A, camera_id=camera, since=since, before=before)
        plans = [(sql, query_plan(db_path, sql)) for sql in store.statements if sql.startswith("SELECT")]
    assert len(plans) == 2
    for sql, plan in plans:
        assert not [step for step in plan if step.startswith("SCAN")], (sql, plan)
        assert any("events_incident_id" in step for step in plan), (sql, plan)


# --- migration from a version-1 file -----------------------------------------------------------------------------


def v1_database(db_path: Path, events: list[Event], *, v1_bodies: bool) -> None:
    """A store file as the first release wrote it: migration 1 only, its columns, and (with `v1_bodies`) bodies
    in event schema 1, without `incident_id`."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        for statement in MIGRATIONS["sqlite"][0]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (1, '2024-05-01T00:00:00.000000Z')")
        for event in events:
            body = event.model_dump(mode="json")
            if v1_bodies:
                del body["incident_id"]
                body["schema_version"] = 1
            conn.execute(
                "INSERT INTO events (id, camera_id, rule_id, zone, category, severity, state, first_seen, last_seen,"
                " body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    event.id,
                    event.camera_id,
                    event.rule_id,
                    event.zone,
                    event.category,
                    event.severity.value,
                    event.state.value,
                    iso_utc(event.first_seen),
                    iso_utc(event.last_seen),
                    json.dumps(body, ensure_ascii=False),
                ),
            )
        conn.commit()
    finally:
        conn.close()


def test_a_version_1_database_opens_migrated_and_its_events_read_as_incident_less(db_path: Path) -> None:
    # given: a version-1 file with two version-1 events
    old = [make_event(0.0), make_event_with_blobs(seed=3, seconds=60.0)[0]]
    v1_database(db_path, old, v1_bodies=True)
    # when
    with EventStore(db_path) as store:
        # then: migrated, every old event reads back as it was (schema 1), without an incident
        assert store.schema_version == len(MIGRATIONS["sqlite"])
        assert store.list() == [event.model_copy(update={"schema_version": 1}) for event in old[::-1]]
        assert [(event.schema_version, event.incident_id) for event in store.list()] == [(1, "")] * 2
        assert ids(store.list(incident_id="")) == ids(old[::-1])
        assert store.list_incidents() == []
        # and: new events with incidents go in beside them
        opened, update, close = lifecycle(INCIDENT_B, 120.0)
        for event in (opened, update, close):
            assert event is not None
            store.add(event)
        assert [s.incident_id for s in store.list_incidents()] == [INCIDENT_B]
        assert store.count() == 5
    with EventStore(db_path) as reopened:
        assert reopened.schema_version == len(MIGRATIONS["sqlite"])
        assert reopened.count(incident_id="") == 2


def test_the_migration_fills_incidents_from_events_stored_before_it(db_path: Path, tmp_path: Path) -> None:
    # given: incident events written into a version-1 file (bodies that name their incident, no column for it)
    events = [e for e in (*lifecycle(INCIDENT_A, 0.0), *lifecycle(INCIDENT_B, 500.0, closed=False)) if e is not None]
    v1_database(db_path, [*events, make_event(900.0)], v1_bodies=False)
    with EventStore(tmp_path / "fresh.sqlite3") as fresh:
        for event in events:
            fresh.add(event)
        expected = fresh.list_incidents()
    # when
    with EventStore(db_path) as store:
        # then: the incidents are what adding the same events to a new store gives
        assert store.list_incidents() == expected
        assert ids(store.list(incident_id=INCIDENT_A)) == ids(store.list(incident_id=INCIDENT_A, camera_id="cam-1"))
        assert store.count(incident_id=INCIDENT_A) == 3
        assert store.count(incident_id="") == 1
