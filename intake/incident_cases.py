"""Camera and sensor incidents into cases: the intake's side of the incidents the patrol raises."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from core.events import Event, EventState
from intake.case_model import INCIDENT_PREFIX, AuditEntry, Case, CaseCreate, Reporter, Source
from intake.case_store import CaseStore
from intake.db import Connection
from intake.sqlite import iso_utc

logger = logging.getLogger(__name__)

FINAL = ("closed", "rejected")
KEEP_EVIDENCE = 12  # a long incident updates often: a case keeps its first snapshot pair and the latest ones


class IncidentCases:
    """Camera and sensor incidents into cases, through the same store: one case per incident, its updates attach
    evidence, its close is noted (the case stays open for the loop); repeats of one problem (same camera,
    category and zone within `merge_window_s`) join one case; a human report in the same grid and category
    within `link_window_s` is linked for the dispatcher to confirm. Replaying an event changes nothing."""

    def __init__(self, store: CaseStore, *, merge_window_s: float = 86_400.0, link_window_s: float = 3_600.0) -> None:
        self.store = store
        self.merge_window_s = merge_window_s
        self.link_window_s = link_window_s

    def apply(self, event: Event, at: datetime) -> Case | None:
        """The case the event of an incident went to; None for an event without an incident."""
        if not event.incident_id:
            return None
        with self.store.transaction() as conn:
            return self.apply_in(conn, event, at)

    def apply_in(self, conn: Connection, event: Event, at: datetime) -> Case | None:
        """`apply` inside the caller's transaction. An event older than the last one applied of its incident
        (a replay) changes nothing, nor does an event without an incident."""
        if not event.incident_id:
            return None
        row = conn.execute(
            "SELECT last_event FROM case_incidents WHERE incident_id = ?", (event.incident_id,)
        ).fetchone()
        if row is not None and event.id <= str(row[0]):
            return None
        case = self._case_of(conn, event)
        if case is None:
            case = self._open(conn, event, at)
        elif event.state == EventState.close:
            case = self._closed(conn, case, event, at)
        else:
            case = self._attach(conn, case, event, at)
        conn.execute("UPDATE case_incidents SET last_event = ? WHERE incident_id = ?", (event.id, event.incident_id))
        return case

    def _case_of(self, conn: Connection, event: Event) -> Case | None:
        row = conn.execute("SELECT case_id FROM case_incidents WHERE incident_id = ?", (event.incident_id,)).fetchone()
        if row is not None:
            return self.store.read(conn, str(row[0]))
        since = iso_utc(event.first_seen - timedelta(seconds=self.merge_window_s))
        row = conn.execute(
            "SELECT id FROM cases WHERE camera_id = ? AND source = ? AND category = ? AND coalesce(zone, '') = ?"
            f" AND reported_at >= ? AND state NOT IN {FINAL} ORDER BY id DESC LIMIT 1",
            (_device(event), _source(event).value, _category(event), event.zone or "", since),
        ).fetchone()
        if row is None:
            return None
        conn.execute(
            "INSERT INTO case_incidents (incident_id, case_id, last_event) VALUES (?, ?, '')",
            (event.incident_id, row[0]),
        )
        case = self.store.read(conn, str(row[0]))
        if case is not None:
            note = (
                f"incident {event.incident_id} of the same {_source(event).value}, category and zone joined this case"
            )
            self._note(conn, case, "merge", note, event.last_seen)
        return case

    def _open(self, conn: Connection, event: Event, at: datetime) -> Case:
        store = self.store
        report = CaseCreate(
            sender_id=f"{INCIDENT_PREFIX}{event.incident_id}",
            source=_source(event),
            category=_category(event),
            description=event.reason[:4000],
            lon=event.lon,
            lat=event.lat,
            grid_code=event.grid_code,
            reporter=Reporter(
                camera_id=event.camera_id[:64],
                sensor_id=event.sensor_id[:64],
                rule_id=event.rule_id[:64],
                model=event.model[:100],
            ),
        )
        extra = {
            "evidence": event.evidence,
            "incident_id": event.incident_id,
            "zone": event.zone,
            "incident_open": event.state != EventState.close,
            "address": event.camera_name,
        }
        case = store.new_case(conn, report, event.first_seen, extra)
        case = case.model_copy(update={"linked": store.link(conn, case, self.link_window_s)})
        store.insert(conn, case)
        conn.execute(
            "INSERT INTO case_incidents (incident_id, case_id, last_event) VALUES (?, ?, '')",
            (event.incident_id, case.id),
        )
        store.audit(
            conn,
            case,
            AuditEntry(
                at=at,
                actor=f"{_source(event).value}:{_device(event)}",
                role="operator",
                action="report",
                from_state=None,
                to_state=case.state,
                note=f"incident {event.incident_id} of rule {event.rule_id}",
            ),
        )
        store.notify(conn, case, "case.reported")
        logger.info("case %s from incident %s (%s %s)", case.number, event.incident_id, report.source, _device(event))
        return case

    def _attach(self, conn: Connection, case: Case, event: Event, at: datetime) -> Case:
        known = {e.key for e in case.evidence}
        fresh = [e for e in event.evidence if e.key not in known]
        if event.sensor_id and event.reason and case.incident_id == event.incident_id:
            self._note(conn, case, "reading", f"incident {event.incident_id}: {event.reason}", event.last_seen)
        if not fresh and case.incident_open and case.incident_id == event.incident_id:
            return case
        evidence = [*case.evidence, *fresh]
        if len(evidence) > KEEP_EVIDENCE:
            evidence = evidence[:2] + evidence[-(KEEP_EVIDENCE - 2) :]
        changed = case.model_copy(
            update={"evidence": evidence, "incident_id": event.incident_id, "incident_open": True, "updated_at": at}
        )
        self.store.save(conn, changed)
        return changed

    def _closed(self, conn: Connection, case: Case, event: Event, at: datetime) -> Case:
        if not case.incident_open or case.incident_id != event.incident_id:
            return case
        changed = case.model_copy(update={"incident_open": False, "updated_at": at})
        self.store.save(conn, changed)
        self._note(conn, changed, "incident_closed", f"incident {event.incident_id}: {event.reason}", at)
        return changed

    def _note(self, conn: Connection, case: Case, action: str, note: str, at: datetime) -> None:
        entry = AuditEntry(
            at=at, actor="intake", role="operator", action=action, from_state=case.state, to_state=case.state, note=note
        )
        self.store.audit(conn, case, entry)


def _category(event: Event) -> str:
    """The case category of an incident's event: its rule's, or the major class 99 (video analysis) for a rule
    that names none."""
    return event.category or "99"


def _source(event: Event) -> Source:
    return Source.sensor if event.sensor_id or event.rule_kind.startswith("sensor") else Source.camera


def _device(event: Event) -> str:
    """The camera or sensor an incident's event is about (the cases' `camera_id` column holds either)."""
    return event.camera_id or event.sensor_id
