"""The event store: one row per event, exactly-once on the event id, and one row per incident; in SQLite (WAL,
the embedded default) or PostgreSQL (`intake.db`).

Writes (migrations, `add`) go through one writer connection behind a lock. Reads use their own read-only
connections from a small pool: they run beside the writer, so a slow API query never holds up intake. Other
processes (an API host, a worker) share the SQLite file (WAL plus `busy_timeout`) or the PostgreSQL database.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from core.events import Event, EventState, Evidence
from intake.db import Connection, Database, DatabaseError, Dialect, Migrations, ReadPool, open_database, transaction
from intake.sqlite import iso_utc

logger = logging.getLogger(__name__)

ULID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"
INCIDENT_ID_PATTERN = r"^([0-9A-HJKMNP-TV-Z]{26})?$"  # "" is the incident id of events without an incident
READ_POOL_SIZE = 4  # idle read connections kept open; more concurrent reads open (and close) extra ones

# Each migration is a list of statements, applied in one transaction; never edit a published one.
SQLITE_MIGRATIONS: tuple[tuple[str, ...], ...] = (
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
    (
        # version-1 rows have no incident: "" (a body written before this column existed is read for its id)
        "ALTER TABLE events ADD COLUMN incident_id TEXT NOT NULL DEFAULT ''",
        """UPDATE events SET incident_id = json_extract(body, '$.incident_id')
            WHERE json_type(body, '$.incident_id') = 'text'""",
        "CREATE INDEX events_incident_id ON events (incident_id, id)",
        # one row per incident, kept by `EventStore.add` in the event's own transaction (see `IncidentSummary`)
        """CREATE TABLE incidents (
            incident_id TEXT PRIMARY KEY,
            camera_id TEXT NOT NULL,
            latest_id TEXT NOT NULL,
            closed INTEGER NOT NULL,
            open_id TEXT,
            evidence_id TEXT,
            first_seen TEXT NOT NULL,
            event_count INTEGER NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX incidents_latest ON incidents (latest_id)",
        "CREATE INDEX incidents_closed ON incidents (closed, latest_id)",
        "CREATE INDEX incidents_camera ON incidents (camera_id, latest_id)",
        "CREATE INDEX incidents_camera_closed ON incidents (camera_id, closed, latest_id)",
        # the incidents of events stored before this migration: what `add` would have made of them
        """INSERT INTO incidents
            (incident_id, camera_id, latest_id, closed, open_id, evidence_id, first_seen, event_count)
        SELECT g.incident_id, g.camera_id, g.latest_id,
            (SELECT state FROM events WHERE id = g.latest_id) = 'close',
            g.open_id, g.evidence_id,
            coalesce((SELECT first_seen FROM events WHERE id = g.open_id), g.first_seen), g.event_count
        FROM (
            SELECT incident_id, min(camera_id) AS camera_id, max(id) AS latest_id,
                min(CASE WHEN state = 'open' THEN id END) AS open_id,
                max(CASE WHEN json_array_length(body, '$.evidence') > 0 THEN id END) AS evidence_id,
                min(first_seen) AS first_seen, count(*) AS event_count
            FROM events WHERE incident_id != '' GROUP BY incident_id
        ) AS g""",
    ),
    (
        # the removals of evidence retention (intake.retention), which made this table itself before
        "CREATE TABLE IF NOT EXISTS pruned (key TEXT PRIMARY KEY, at TEXT NOT NULL, reason TEXT NOT NULL)"
        " WITHOUT ROWID",
    ),
)

# PostgreSQL started with the schema SQLite reached at its version 3.
POSTGRES_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE events (
            id TEXT PRIMARY KEY,
            incident_id TEXT NOT NULL DEFAULT '',
            camera_id TEXT NOT NULL,
            rule_id TEXT NOT NULL,
            zone TEXT,
            category TEXT NOT NULL,
            severity TEXT NOT NULL,
            state TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            body TEXT NOT NULL
        )""",
        "CREATE INDEX events_camera_id ON events (camera_id, id)",
        "CREATE INDEX events_rule_id ON events (rule_id, id)",
        "CREATE INDEX events_first_seen ON events (first_seen)",
        "CREATE INDEX events_last_seen ON events (last_seen)",
        "CREATE INDEX events_incident_id ON events (incident_id, id)",
        """CREATE TABLE incidents (
            incident_id TEXT PRIMARY KEY,
            camera_id TEXT NOT NULL,
            latest_id TEXT NOT NULL,
            closed INTEGER NOT NULL,
            open_id TEXT,
            evidence_id TEXT,
            first_seen TEXT NOT NULL,
            event_count INTEGER NOT NULL
        )""",
        "CREATE INDEX incidents_latest ON incidents (latest_id)",
        "CREATE INDEX incidents_closed ON incidents (closed, latest_id)",
        "CREATE INDEX incidents_camera ON incidents (camera_id, latest_id)",
        "CREATE INDEX incidents_camera_closed ON incidents (camera_id, closed, latest_id)",
        "CREATE TABLE pruned (key TEXT PRIMARY KEY, at TEXT NOT NULL, reason TEXT NOT NULL)",
    ),
)
MIGRATIONS: Migrations = {"sqlite": SQLITE_MIGRATIONS, "postgres": POSTGRES_MIGRATIONS}

# One incident's row after one more of its events is stored. In an UPDATE every right-hand side reads the row as it
# was, so the order of the assignments does not matter. Events may come in any order (a retried one late): the
# latest is the one with the largest id, the evidence is that of the latest event that has any, `first_seen` is
# the open event's (the earliest seen until the open event is stored). Written for both SQLite and PostgreSQL:
# CASE for the larger of two (SQLite's two-argument max() is greatest() on PostgreSQL), and the stored row's
# columns named by the table (PostgreSQL finds a bare name ambiguous beside `excluded`).
_UPSERT_INCIDENT = """INSERT INTO incidents
    (incident_id, camera_id, latest_id, closed, open_id, evidence_id, first_seen, event_count)
    VALUES (?, ?, ?, ?, ?, ?, ?, 1)
    ON CONFLICT (incident_id) DO UPDATE SET
        latest_id = CASE WHEN excluded.latest_id > incidents.latest_id
            THEN excluded.latest_id ELSE incidents.latest_id END,
        closed = CASE WHEN excluded.latest_id > incidents.latest_id THEN excluded.closed ELSE incidents.closed END,
        open_id = coalesce(incidents.open_id, excluded.open_id),
        evidence_id = CASE
            WHEN incidents.evidence_id IS NULL THEN excluded.evidence_id
            WHEN excluded.evidence_id IS NULL THEN incidents.evidence_id
            WHEN excluded.evidence_id > incidents.evidence_id THEN excluded.evidence_id
            ELSE incidents.evidence_id END,
        first_seen = CASE
            WHEN incidents.open_id IS NOT NULL THEN incidents.first_seen
            WHEN excluded.open_id IS NOT NULL THEN excluded.first_seen
            WHEN excluded.first_seen < incidents.first_seen THEN excluded.first_seen
            ELSE incidents.first_seen END,
        event_count = incidents.event_count + 1"""

# What the filters of `list_incidents` are served by: each one an index that ends in latest_id, so a page is read
# in order and stops after `limit` rows, however many incidents there are.
_INCIDENT_INDEXES = {
    (False, False): "incidents_latest",
    (False, True): "incidents_closed",
    (True, False): "incidents_camera",
    (True, True): "incidents_camera_closed",
}

IncidentStateFilter = Literal["open", "closed"]


class IncidentSummary(BaseModel):
    """One incident as its events so far tell it: the latest event (by id), with the evidence of the latest event
    that has any (a close usually has none), `first_seen` of its open event and how many events it has.

    Why a table (`incidents`, kept by `EventStore.add` in the same transaction as the event) and not a
    `GROUP BY incident_id` over the events: the list is ordered by each incident's latest event and filtered by
    whether that event is a close, and both are known only after grouping. A GROUP BY would aggregate every
    incident (or every event of one camera) for each page: 100k events read to show 50 tiles. The table keeps
    those facts as columns with indexes ending in `latest_id`, so a page is an index range read of `limit` rows
    plus two primary-key look-ups each, and an add costs one more upsert in a transaction it already has. The
    migration that made the table filled it from the events already stored, with the same rules as `add`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    incident_id: str = Field(pattern=ULID_PATTERN)
    state: EventState = Field(description="the latest event's: `close` once the incident is over")
    first_seen: datetime = Field(description="of the open event (the earliest first_seen until it is stored)")
    last_seen: datetime = Field(description="of the latest event")
    event_count: int = Field(ge=1, description="events stored for this incident: open, updates, close")
    evidence: list[Evidence] = Field(description="of the latest event that has evidence; empty if none has")
    latest: Event


def _summary(first_seen: object, event_count: object, latest_body: object, evidence_body: object) -> IncidentSummary:
    latest = Event.model_validate_json(str(latest_body))
    if evidence_body is None:
        evidence: builtins.list[Evidence] = []
    elif evidence_body == latest_body:
        evidence = latest.evidence
    else:
        evidence = Event.model_validate_json(str(evidence_body)).evidence
    if not isinstance(event_count, int):
        raise TypeError(f"incident {latest.incident_id}: event_count {event_count!r}, expected an integer")
    return IncidentSummary(
        incident_id=latest.incident_id,
        state=latest.state,
        first_seen=datetime.fromisoformat(str(first_seen)),
        last_seen=latest.last_seen,
        event_count=event_count,
        evidence=evidence,
        latest=latest,
    )


def _incident_row(event: Event) -> tuple[str | int | None, ...]:
    """The values `_UPSERT_INCIDENT` inserts for `event`, as if it were its incident's only event."""
    return (
        event.incident_id,
        event.camera_id,
        event.id,
        1 if event.state is EventState.close else 0,
        event.id if event.state is EventState.open else None,
        event.id if event.evidence else None,
        iso_utc(event.first_seen),
    )


def _where(
    camera_id: str | None,
    rule_id: str | None,
    since: datetime | None,
    before: str | None,
    after: str | None,
    incident_id: str | None = None,
) -> tuple[str, list[str]]:
    clauses: list[str] = []
    params: list[str] = []
    for column, value in (("camera_id", camera_id), ("rule_id", rule_id), ("incident_id", incident_id)):
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


def _table(
    dialect: Dialect, camera_id: str | None, rule_id: str | None, since: datetime | None, incident_id: str | None
) -> str:
    """The FROM target. Left alone, SQLite answers a `since` filter by walking the whole table in id order
    (to skip the sort), which for a recent `since` reads every row; the last_seen index finds them directly.
    PostgreSQL's planner weighs both from its statistics.
    """
    if dialect == "sqlite" and since is not None and camera_id is None and rule_id is None and incident_id is None:
        return "events INDEXED BY events_last_seen"
    return "events"


class EventStore:
    """Events by id, listed with keyset paging on the (time-ordered) ULID."""

    def __init__(self, target: Path | str | Database) -> None:
        """`target`: a SQLite file's path, a PostgreSQL URL, or a Database."""
        self.db = open_database(target, "events")
        self._lock = threading.Lock()
        self._conn = self.db.connect()
        self._closed = False
        try:
            self._version = self.db.migrate(self._conn, MIGRATIONS)
        except BaseException:
            self._conn.close()
            raise
        self._readers = ReadPool(self._open_reader, READ_POOL_SIZE, f"event store {self.db.label}")

    @property
    def _join(self) -> str:
        """SQLite's CROSS JOIN keeps the tables in the order written (incidents first, by its index)."""
        return "CROSS JOIN" if self.db.dialect == "sqlite" else "JOIN"

    def _open_reader(self) -> Connection:
        """A new read-only connection (on SQLite under WAL, it reads beside the writer)."""
        return self.db.connect_reader()

    @property
    def db_path(self) -> Path:
        """The SQLite file (for tools that read it directly)."""
        path = getattr(self.db, "path", None)
        if not isinstance(path, Path):
            raise DatabaseError(f"event store {self.db.label} is not a SQLite file")
        return path

    @property
    def schema_version(self) -> int:
        return self._version

    def add(self, event: Event) -> bool:
        """Insert `event`; False (and no change) when an event with this id is already stored.

        An event of an incident also updates that incident's row, in the same transaction.
        """
        row = (
            event.id,
            event.incident_id,
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
        with self._lock, transaction(self._conn) as conn:
            cursor = conn.execute(
                "INSERT INTO events (id, incident_id, camera_id, rule_id, zone, category, severity,"
                " state, first_seen, last_seen, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                row,
            )
            added = cursor.rowcount == 1
            if added and event.incident_id:
                conn.execute(_UPSERT_INCIDENT, _incident_row(event))
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
        incident_id: str | None = None,
    ) -> builtins.list[Event]:
        """Newest first; with `after`, oldest first. `before`/`after` are event ids (cursors): only events with a
        smaller/larger id. So `limit` keeps the newest events before `before`, and the oldest after `after`:
        paging forward from `after` with the last id of each page visits every event once.

        `since` keeps events last seen at or after that instant; `incident_id` the events of that incident
        ("": the events without an incident).
        """
        if limit < 1:
            raise ValueError(f"limit {limit}: expected at least 1")
        where, params = _where(camera_id, rule_id, since, before, after, incident_id)
        table = _table(self.db.dialect, camera_id, rule_id, since, incident_id)
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
        incident_id: str | None = None,
    ) -> int:
        where, params = _where(camera_id, rule_id, since, before, after, incident_id)
        table = _table(self.db.dialect, camera_id, rule_id, since, incident_id)
        return self._scalar(f"SELECT count(*) FROM {table}{where}", params)

    def list_incidents(
        self,
        camera_id: str | None = None,
        state: IncidentStateFilter | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> builtins.list[IncidentSummary]:
        """Incidents, the one with the newest latest event first. `before` is a latest event id (a cursor: pass
        the last item's `latest.id`); `state` keeps the `open` ones (latest event an open or an update) or the
        `closed` ones.

        The order is by activity, so an incident that gets a new event while a caller pages moves to the front:
        a later page does not show it again, and a caller that must not miss it follows the live stream too.
        """
        if limit < 1:
            raise ValueError(f"limit {limit}: expected at least 1")
        clauses: builtins.list[str] = []
        params: builtins.list[str | int] = []
        if camera_id is not None:
            clauses.append("i.camera_id = ?")
            params.append(camera_id)
        if state is not None:
            clauses.append("i.closed = ?")
            params.append(1 if state == "closed" else 0)
        if before is not None:
            clauses.append("i.latest_id < ?")
            params.append(before)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        index = _INCIDENT_INDEXES[(camera_id is not None, state is not None)]
        hint = f" INDEXED BY {index}" if self.db.dialect == "sqlite" else ""
        rows = self._fetch(
            f"SELECT i.first_seen, i.event_count, latest.body, shown.body FROM incidents AS i{hint}"
            f" {self._join} events AS latest ON latest.id = i.latest_id"
            f" LEFT JOIN events AS shown ON shown.id = i.evidence_id{where} ORDER BY i.latest_id DESC LIMIT ?",
            (*params, limit),
        )
        return [_summary(*row) for row in rows]

    def get_incident(self, incident_id: str) -> IncidentSummary | None:
        rows = self._fetch(
            "SELECT i.first_seen, i.event_count, latest.body, shown.body FROM incidents AS i"
            f" {self._join} events AS latest ON latest.id = i.latest_id"
            " LEFT JOIN events AS shown ON shown.id = i.evidence_id WHERE i.incident_id = ?",
            (incident_id,),
        )
        return _summary(*rows[0]) if rows else None

    def _fetch(self, sql: str, params: Sequence[str | int]) -> builtins.list[tuple[object, ...]]:
        with self._readers.connection() as conn:
            return [tuple(r) for r in conn.execute(sql, params).fetchall()]

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
