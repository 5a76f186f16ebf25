"""The case store: one row per case with its audit trail, numbered per year, idempotent on the sender's id, and
the webhook outbox in the same database, so a case change and its deliveries commit together. SQLite (WAL) or
PostgreSQL (`intake.db`).

Writes go through one connection behind a lock, each in a transaction that holds the store's writer lock (on
PostgreSQL across hosts); reads use pooled read-only connections beside it. Deadlines come from a
`DeadlineRules` handed in (the working-day calendar). `on_change`, if given, gets every case a transaction
inserted or saved, as it is after the commit (the alert wall's live case tiles): one seam for reports, actions,
incident updates, links and cards alike.
"""

from __future__ import annotations

import builtins
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from ulid import ULID

from core.events import Evidence
from core.settings import ApiRole
from intake.case_model import FINAL_STATES, ActionRequest, AuditEntry, Case, CaseCreate, CaseState, Complexity, Source
from intake.db import (
    Connection,
    Database,
    DatabaseError,
    Migrations,
    ReadPool,
    open_database,
    postgres_ddl,
    transaction,
)
from intake.deadlines import Card, Deadlines, cards_due
from intake.grids import GridMap
from intake.outbox_store import OUTBOX_MIGRATION, POSTGRES_OUTBOX, enqueue
from intake.sqlite import iso_utc
from intake.workflow import Step, TransitionRefusedError, allowed_actions, plan
from rules.categories import CategoryTable

logger = logging.getLogger(__name__)

LOCAL = ZoneInfo("Asia/Shanghai")  # case numbers count per year of the city's calendar

READ_POOL_SIZE = 4
# proposed suppressions (`intake.suppressions`): beside the cases they come from
SUPPRESSIONS_SQLITE = (
    """CREATE TABLE suppressions (
        id TEXT PRIMARY KEY,
        rule_id TEXT NOT NULL,
        camera_id TEXT NOT NULL,
        state TEXT NOT NULL,
        case_id TEXT NOT NULL,
        body TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX suppressions_state ON suppressions (state, rule_id, camera_id)",
    "CREATE INDEX suppressions_case ON suppressions (case_id)",
)
SQLITE_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE cases (
            id TEXT PRIMARY KEY,
            number TEXT NOT NULL UNIQUE,
            sender_id TEXT NOT NULL UNIQUE,
            source TEXT NOT NULL,
            category TEXT NOT NULL,
            state TEXT NOT NULL,
            grid_code TEXT NOT NULL,
            camera_id TEXT NOT NULL,
            zone TEXT,
            incident_id TEXT NOT NULL,
            next_card_at TEXT NOT NULL,
            reported_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            body TEXT NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX cases_state ON cases (state, reported_at)",
        "CREATE INDEX cases_incident ON cases (incident_id)",
        "CREATE INDEX cases_camera_category ON cases (camera_id, category, reported_at)",
        "CREATE INDEX cases_grid_category ON cases (grid_code, category, reported_at)",
        "CREATE INDEX cases_reported ON cases (reported_at)",
        "CREATE INDEX cases_next_card ON cases (next_card_at) WHERE next_card_at != ''",
        "CREATE TABLE case_numbers (year INTEGER PRIMARY KEY, last INTEGER NOT NULL)",
        """CREATE TABLE case_audit (
            case_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (case_id, seq)
        ) WITHOUT ROWID""",
        "CREATE TABLE intake_cursors (name TEXT PRIMARY KEY, position TEXT NOT NULL) WITHOUT ROWID",
        "CREATE TABLE case_incidents (incident_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, last_event TEXT NOT NULL)"
        " WITHOUT ROWID",
    ),
    tuple(OUTBOX_MIGRATION),
    SUPPRESSIONS_SQLITE,
)
# PostgreSQL started with the schema SQLite reached at its version 2, the same statements (`postgres_ddl`), and an
# index for `category LIKE '05%'` (SQLite's LIKE cannot use one)
POSTGRES_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        *postgres_ddl(SQLITE_MIGRATIONS[0]),
        "CREATE INDEX cases_category ON cases (category text_pattern_ops)",
        *POSTGRES_OUTBOX,
    ),
    postgres_ddl(SUPPRESSIONS_SQLITE),
)
MIGRATIONS: Migrations = {"sqlite": SQLITE_MIGRATIONS, "postgres": POSTGRES_MIGRATIONS}


class DeadlineRules(Protocol):
    """Deadlines of a case from its category and complexity (the working-day calendar and the 1-3-5 rule); a
    string instead says why there is none (a year the calendar does not know), never a guess."""

    def initial(self, category: str, complexity: Complexity, reported_at: datetime) -> Deadlines | str: ...

    def extended(self, deadlines: Deadlines, workdays: int) -> Deadlines | str: ...

    def resumed(self, deadlines: Deadlines, suspended_at: datetime, resumed_at: datetime) -> Deadlines | str: ...


class NoDeadlines:
    def initial(self, category: str, complexity: Complexity, reported_at: datetime) -> Deadlines | str:
        return "no deadline rules configured"

    def extended(self, deadlines: Deadlines, workdays: int) -> Deadlines | str:
        return deadlines

    def resumed(self, deadlines: Deadlines, suspended_at: datetime, resumed_at: datetime) -> Deadlines | str:
        return deadlines


# the work is done (handled, being checked, closed) or refused: no card comes any more
DONE_STATES = FINAL_STATES | {CaseState.handled, CaseState.checking}
# no card either while suspended (挂起): the clock stops, and resuming moves the deadlines by the time spent
NO_CARD_STATES = DONE_STATES | {CaseState.suspended}


def deadlines_of(case: Case) -> Deadlines | None:
    if case.verify_by is None or case.due_by is None or case.red_by is None:
        return None
    return Deadlines(case.verify_by, case.due_by, case.complexity, case.red_by)


def deadline_fields(found: Deadlines | str) -> dict[str, object]:
    """The case fields of a computed deadline, or of the reason there is none."""
    if isinstance(found, str):
        return {"verify_by": None, "due_by": None, "red_by": None, "deadline_note": found}
    return {"verify_by": found.verify_by, "due_by": found.due_by, "red_by": found.red_by, "deadline_note": ""}


def next_card_at(case: Case) -> str:
    """When the sweeper must next look at the case: the earliest card deadline not carded yet ('' for none)."""
    if case.state in NO_CARD_STATES:
        return ""
    thresholds = [("yellow", case.due_by)] if case.complexity == "general" else []  # as `cards_due` raises them
    due = [at for kind, at in [*thresholds, ("red", case.red_by)] if at is not None and kind not in case.cards]
    return iso_utc(min(due)) if due else ""


class CaseNotFoundError(LookupError):
    pass


class CaseStore:
    """Cases, their audit, and their deliveries. `targets` are the webhook target names each change goes to."""

    def __init__(
        self,
        target: Path | str | Database,
        *,
        deadlines: DeadlineRules | None = None,
        targets: Sequence[str] = (),
        grids: GridMap | None = None,
        categories: CategoryTable | None = None,
        link_window_s: float = 3_600.0,
        on_change: Callable[[Case], None] | None = None,
    ) -> None:
        """`target`: a SQLite file's path, a PostgreSQL URL, or a Database. `grids` derives a case's grid (and its
        district / street / community) from its lon/lat; `categories` names its category."""
        self.grids = grids
        self.categories = categories
        self.link_window_s = link_window_s
        self.db = open_database(target, "cases")
        self.deadlines: DeadlineRules = deadlines if deadlines is not None else NoDeadlines()
        self.targets = tuple(targets)
        self.on_change = on_change
        self._changed: builtins.list[str] = []  # ids saved in the transaction under way (held by the lock)
        self._lock = threading.Lock()
        self._conn = self.db.connect()
        try:
            self.db.migrate(self._conn, MIGRATIONS)
        except BaseException:
            self._conn.close()
            raise
        self._readers = ReadPool(self.db.connect_reader, READ_POOL_SIZE, f"case store {self.db.label}")

    @property
    def db_path(self) -> Path:
        """The SQLite file (for tools that read it directly)."""
        path = getattr(self.db, "path", None)
        if not isinstance(path, Path):
            raise DatabaseError(f"case store {self.db.label} is not a SQLite file")
        return path

    def close(self) -> None:
        self._readers.close()
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self._lock:
            self._changed = []
            with transaction(self._conn) as conn:
                yield conn
            changed, self._changed = self._changed, []
        self._announce(changed)

    def _announce(self, case_ids: Sequence[str]) -> None:
        """Hand each committed change to `on_change`; a failing callback is logged and never undoes the write."""
        if self.on_change is None:
            return
        for case_id in dict.fromkeys(case_ids):
            case = self.get(case_id)
            if case is None:
                continue
            try:
                self.on_change(case)
            except Exception:  # sink boundary: the change is committed whatever a listener does
                logger.exception("case %s: change listener failed", case.number)

    @contextmanager
    def _reader(self) -> Iterator[Connection]:
        with self._readers.connection() as conn:
            yield conn

    # --- reading

    def get(self, case_id: str) -> Case | None:
        with self._reader() as conn:
            return self.read(conn, case_id)

    def read(self, conn: Connection, case_id: str) -> Case | None:
        row = conn.execute("SELECT body FROM cases WHERE id = ?", (case_id,)).fetchone()
        if row is None:
            return None
        audit = [
            AuditEntry.model_validate_json(r[0])
            for r in conn.execute("SELECT body FROM case_audit WHERE case_id = ? ORDER BY seq", (case_id,))
        ]
        return Case.model_validate_json(row[0]).model_copy(update={"audit": audit})

    def list(
        self,
        *,
        state: CaseState | None = None,
        source: str | None = None,
        category: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> builtins.list[Case]:
        """Newest first (ids are time-ordered ULIDs); `before` is the id of the last case of the previous page."""
        clauses, params = [], list[str]()
        for column, value in (("state", state), ("source", source)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(str(value))
        if category is not None:
            clauses.append("category LIKE ?")
            params.append(category + "%")
        if before is not None:
            clauses.append("id < ?")
            params.append(before)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._reader() as conn:
            rows = conn.execute(f"SELECT id FROM cases{where} ORDER BY id DESC LIMIT ?", (*params, limit)).fetchall()
            return [c for (case_id,) in rows if (c := self.read(conn, str(case_id))) is not None]

    # --- writing

    def create(
        self, report: CaseCreate, *, actor: str, role: ApiRole, at: datetime, **extra: object
    ) -> tuple[Case, bool]:
        """The case for `report` and True, or the case made before from the same `sender_id` and False.
        `extra` sets further case fields (evidence, grid path, category label, incident fields)."""
        with self.transaction() as conn:
            found = conn.execute("SELECT id FROM cases WHERE sender_id = ?", (report.sender_id,)).fetchone()
            if found is not None:
                existing = self.read(conn, str(found[0]))
                assert existing is not None
                return existing, False
            case = self.new_case(conn, report, at, extra)
            case = case.model_copy(update={"linked": self.link(conn, case, self.link_window_s)})
            self.insert(conn, case)
            self.audit(
                conn,
                case,
                AuditEntry(
                    at=at,
                    actor=actor,
                    role=role,
                    action="report",
                    from_state=None,
                    to_state=case.state,
                    note=f"{report.source.value} report",
                ),
            )
            self.notify(conn, case, "case.reported")
        logger.info("case %s (%s) reported by %s: %s", case.number, case.id, actor, case.category)
        return case, True

    def new_case(self, conn: Connection, report: CaseCreate, at: datetime, extra: Mapping[str, object]) -> Case:
        found = self.deadlines.initial(report.category, report.complexity, at)
        return Case.model_validate(
            {
                **report.model_dump(exclude={"occurred_at"}),
                **self._place(report),
                "id": str(ULID()),
                "number": self._next_number(conn, at),
                "reported_at": at,
                "updated_at": at,
                "nodes": {CaseState.reported.value: at},
                **deadline_fields(found),
                **extra,
            }
        )

    def link(self, conn: Connection, case: Case, window_s: float) -> builtins.list[str]:
        """The open cases of the other kind (camera and sensor cases for a human report, human reports for a camera
        case) in the same grid and category, reported within `window_s` before it: each is linked back, and the
        dispatcher confirms whether they are one problem (`duplicate`)."""
        if not case.grid_code or window_s <= 0:
            return []
        machine = case.source in (Source.camera, Source.sensor)
        other = "NOT IN" if machine else "IN"
        rows = conn.execute(
            f"SELECT id FROM cases WHERE grid_code = ? AND category = ? AND reported_at >= ? AND reported_at <= ?"
            f" AND source {other} ('camera', 'sensor') AND state NOT IN ('closed', 'rejected') ORDER BY id",
            (
                case.grid_code,
                case.category,
                iso_utc(case.reported_at - timedelta(seconds=window_s)),
                iso_utc(case.reported_at),
            ),
        ).fetchall()
        for (other_id,) in rows:
            found = self.read(conn, str(other_id))
            if found is not None and case.id not in found.linked:
                self.save(conn, found.model_copy(update={"linked": [*found.linked, case.id]}))
        return [str(r[0]) for r in rows]

    def _place(self, report: CaseCreate) -> dict[str, object]:
        """The grid the report's lon/lat falls in (a grid code sent with the report wins), its path of names, and
        the category's name from the table."""
        out: dict[str, object] = {}
        if self.categories is not None:
            out["category_label"] = self.categories.label(report.category)
        if self.grids is None:
            return out
        grid = self.grids.get(report.grid_code) if report.grid_code else None
        if grid is None and report.lon is not None and report.lat is not None:
            grid = self.grids.lookup(report.lon, report.lat)
        if grid is not None:
            out |= {
                "grid_code": report.grid_code or grid.code,
                "grid_path": [grid.district, grid.street, grid.community, grid.name],
            }
        return out

    def _next_number(self, conn: Connection, at: datetime) -> str:
        year = at.astimezone(LOCAL).year
        (last,) = conn.execute(
            "INSERT INTO case_numbers (year, last) VALUES (?, 1)"
            " ON CONFLICT (year) DO UPDATE SET last = case_numbers.last + 1 RETURNING last",
            (year,),
        ).fetchone()
        return f"{year}-{int(last):06d}"

    def insert(self, conn: Connection, case: Case) -> None:
        conn.execute(
            "INSERT INTO cases (id, number, sender_id, source, category, state, grid_code, camera_id, zone,"
            " incident_id, next_card_at, reported_at, updated_at, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                case.id,
                case.number,
                case.sender_id,
                case.source.value,
                case.category,
                case.state.value,
                case.grid_code,
                case.reporter.camera_id or case.reporter.sensor_id,  # the device: a camera, or a sensor
                case.zone,
                case.incident_id,
                next_card_at(case),
                iso_utc(case.reported_at),
                iso_utc(case.updated_at),
                _body(case),
            ),
        )
        self._changed.append(case.id)

    def save(self, conn: Connection, case: Case) -> None:
        conn.execute(
            "UPDATE cases SET state = ?, incident_id = ?, next_card_at = ?, updated_at = ?, body = ? WHERE id = ?",
            (case.state.value, case.incident_id, next_card_at(case), iso_utc(case.updated_at), _body(case), case.id),
        )
        self._changed.append(case.id)

    def audit(self, conn: Connection, case: Case, entry: AuditEntry) -> None:
        conn.execute(
            "INSERT INTO case_audit (case_id, seq, body)"
            " SELECT ?, coalesce(max(seq), 0) + 1, ? FROM case_audit WHERE case_id = ?",
            (case.id, entry.model_dump_json(), case.id),
        )

    def notify(self, conn: Connection, case: Case, event_type: str) -> None:
        """Queue the case's new state for every delivery target, in this transaction."""
        if self.targets:
            payload = json.loads(_body(case))
            enqueue(conn, case_id=case.id, event_type=event_type, payload=payload, targets=self.targets)

    def transition(
        self, case_id: str, action: str, request: ActionRequest, *, actor: str, role: ApiRole, at: datetime
    ) -> Case:
        """Apply an operator's action: checked against the state and the role (TransitionRefusedError lists what
        is allowed), audited, and queued for delivery, in one transaction."""
        with self.transaction() as conn:
            case = self.read(conn, case_id)
            if case is None:
                raise CaseNotFoundError(case_id)
            step = plan(case, action, role, request)
            if action == "duplicate":
                self._check_original(conn, case, request.duplicate_of)
            changed = self._applied(case, step, request, at)
            self.save(conn, changed)
            note = request.note or step.action.label
            self.audit(
                conn,
                changed,
                AuditEntry(
                    at=at, actor=actor, role=role, action=action, from_state=step.before, to_state=step.after, note=note
                ),
            )
            self.notify(conn, changed, f"case.{action}")
        logger.info("case %s: %s by %s (%s -> %s)", case.number, action, actor, step.before.value, step.after.value)
        return self.get(case_id) or changed

    def _check_original(self, conn: Connection, case: Case, original_id: str) -> None:
        """A duplicate names another case that exists."""
        if original_id == case.id or self.read(conn, original_id) is None:
            allowed = allowed_actions(case.state, "admin")
            raise TransitionRefusedError(f"duplicate_of {original_id!r} is not another case", allowed)

    def _applied(self, case: Case, step: Step, request: ActionRequest, at: datetime) -> Case:
        update: dict[str, object] = {"state": step.after, "updated_at": at}
        nodes = dict(case.nodes)
        nodes.setdefault(step.after.value, at)
        update["nodes"] = nodes
        name = step.action.name
        if name == "dispatch":
            update["department"] = request.department
        elif name == "extend":
            update["extensions"] = case.extensions + 1
            current = deadlines_of(case)
            if current is not None:
                update |= deadline_fields(self.deadlines.extended(current, request.workdays))
        elif name == "resume":
            current, since = deadlines_of(case), _suspended_at(case)
            if current is not None and since is not None:
                update |= deadline_fields(self.deadlines.resumed(current, since, at))
        elif name == "rework":
            update["reworks"] = case.reworks + 1
        elif name == "false_alarm":
            update["false_alarm"] = True
        elif name == "duplicate":
            update["duplicate_of"] = request.duplicate_of
        return case.model_copy(update=update)

    def attach_photos(
        self, case_id: str, evidence: Sequence[Evidence], *, actor: str, role: ApiRole, at: datetime
    ) -> Case:
        """Append photos (evidence of kind `photo`, before or after) to a case, audited as `photo` with their
        stage and count (the state does not change) and queued for delivery as `case.photos`, in one
        transaction. A photo the case already holds at the same stage is not added twice. A closed or rejected
        case takes no photos: TransitionRefusedError (not forbidden, so a 409)."""
        from intake.workflow import TransitionRefusedError, allowed_actions

        with self.transaction() as conn:
            case = self.read(conn, case_id)
            if case is None:
                raise CaseNotFoundError(case_id)
            if case.state in FINAL_STATES:
                raise TransitionRefusedError(
                    f"case {case.number} is {case.state.value}: it takes no more photos",
                    allowed_actions(case.state, role),
                )
            held = {(e.key, e.stage) for e in case.evidence}
            added: builtins.list[Evidence] = []
            for item in evidence:
                if (item.key, item.stage) not in held:
                    held.add((item.key, item.stage))
                    added.append(item)
            if not added:
                return case
            changed = case.model_copy(update={"evidence": [*case.evidence, *added], "updated_at": at})
            self.save(conn, changed)
            stages = [f"{n} {s}" for s in ("before", "after") if (n := sum(e.stage == s for e in added))]
            note = f"{', '.join(stages) or len(added)} photo{'s' if len(added) > 1 else ''}"
            entry = AuditEntry(
                at=at, actor=actor, role=role, action="photo", from_state=case.state, to_state=case.state, note=note
            )
            self.audit(conn, changed, entry)
            self.notify(conn, changed, "case.photos")
        logger.info("case %s: %d photo(s) attached by %s", case.number, len(added), actor)
        return self.get(case_id) or changed


def sweep_cards(store: CaseStore, now: datetime) -> list[tuple[Case, Card]]:
    """Raise the yellow and red cards now due, each once per case: recorded on the case, audited as done by the
    sweeper, and queued for delivery (a red card is the escalation to the city level)."""
    raised: list[tuple[Case, Card]] = []
    with store.transaction() as conn:
        rows = conn.execute(
            "SELECT id FROM cases WHERE next_card_at != '' AND next_card_at <= ? ORDER BY next_card_at",
            (iso_utc(now),),
        ).fetchall()
        for (case_id,) in rows:
            case = store.read(conn, str(case_id))
            deadlines = deadlines_of(case) if case is not None else None
            if case is None or deadlines is None:
                continue
            cards = cards_due(deadlines, state_is_done=case.state in NO_CARD_STATES, cards_already=case.cards, now=now)
            changed = case.model_copy(update={"cards": [*case.cards, *(c.kind for c in cards)], "updated_at": now})
            store.save(conn, changed)
            for card in cards:
                note = (
                    f"{card.kind} card: {card.overdue_by} past {card.deadline.isoformat()}, to the {card.escalate_to}"
                )
                entry = AuditEntry(
                    at=now,
                    actor="sweeper",
                    role="admin",
                    action=f"card_{card.kind}",
                    from_state=case.state,
                    to_state=case.state,
                    note=note,
                )
                store.audit(conn, changed, entry)
                raised.append((changed, card))
            if cards:
                store.notify(conn, changed, "case.card")
    for case, card in raised:
        logger.info("case %s: %s card (%s)", case.number, card.kind, card.escalate_to)
    return raised


def _suspended_at(case: Case) -> datetime | None:
    return next((e.at for e in reversed(case.audit) if e.to_state == CaseState.suspended), None)


def _body(case: Case) -> str:
    """The stored form of a case: without its audit, which has its own rows."""
    return case.model_copy(update={"audit": []}).model_dump_json()


def cursor(conn: Connection, name: str) -> str:
    row = conn.execute("SELECT position FROM intake_cursors WHERE name = ?", (name,)).fetchone()
    return "" if row is None else str(row[0])


def set_cursor(conn: Connection, name: str, position: str) -> None:
    conn.execute(
        "INSERT INTO intake_cursors (name, position) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET position = ?",
        (name, position, position),
    )
