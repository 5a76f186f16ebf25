"""Evidence retention: which evidence files may go, by the severity of the events naming them and the state of the
cases holding them, and a disk high-water mark; with a report of what was removed.

A file is removed by age only when nothing still needs it: no open case holds it (in its body's `evidence`, or as
the evidence of the latest events of one of its incidents), no event of an open incident names it, every event
naming it was last seen more than its severity's keep days ago, and every closed or rejected case holding it was
closed more than `closed_case_days` ago. When the disk holding the evidence is fuller than the high-water mark
after that, the files no open case or open incident needs go oldest first (by the last time anything needed them)
until it is below the low-water mark. Evidence of an open case is never removed, whatever the disk.

Each removal is first recorded in the `pruned` table of the events database (key, when, why), then the file is
unlinked: a crash between the two leaves the file, which the next run removes; the API answers 410 Gone for a
recorded key whose file is gone.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from core.errors import GridwatchError
from core.events import Severity
from core.settings import RetentionSettings
from intake.case_model import FINAL_STATES
from intake.db import Connection, Database, Dialect, open_database, transaction
from intake.evidence import EvidenceError, EvidenceStore, validate_key
from intake.sqlite import iso_utc

logger = logging.getLogger(__name__)

Reason = Literal["age", "high_water"]
CASE_ONLY = "case"  # the severity bucket of evidence only cases name (people's photos): no event gives it one
SEVERITY_RANK: dict[str, int] = {CASE_ONLY: -1, **{s.value: i for i, s in enumerate(Severity)}}
RECORD_BATCH = 500
_EPOCH = datetime.min.replace(tzinfo=UTC)  # removals recorded per transaction on the events database

_FINAL = "(" + ", ".join(f"'{s.value}'" for s in sorted(FINAL_STATES)) + ")"
_OPEN_CASE_INCIDENTS = (
    f"SELECT incident_id FROM cases WHERE state NOT IN {_FINAL} AND incident_id != ''"
    " UNION SELECT ci.incident_id FROM case_incidents AS ci JOIN cases AS c ON c.id = ci.case_id"
    f" WHERE c.state NOT IN {_FINAL}"
)


@dataclass(frozen=True)
class _Queries:
    open_case_keys: str
    closed_case_keys: str
    incident_keys: str  # the evidence of the latest events of the incidents named in a JSON array
    event_keys: str  # every event naming a key: its severity, when it was last seen, whether its incident is open


_QUERIES: dict[Dialect, _Queries] = {
    "sqlite": _Queries(
        open_case_keys="SELECT DISTINCT json_extract(j.value, '$.key') FROM cases AS c,"
        f" json_each(c.body, '$.evidence') AS j WHERE c.state NOT IN {_FINAL}",
        closed_case_keys="SELECT json_extract(j.value, '$.key'),"
        " coalesce(json_extract(c.body, '$.nodes.' || c.state), c.updated_at)"
        f" FROM cases AS c, json_each(c.body, '$.evidence') AS j WHERE c.state IN {_FINAL}",
        incident_keys="SELECT DISTINCT json_extract(j.value, '$.key') FROM incidents AS i"
        " JOIN events AS e ON e.id IN (i.latest_id, i.evidence_id), json_each(e.body, '$.evidence') AS j"
        " WHERE i.incident_id IN (SELECT value FROM json_each(?))",
        event_keys="SELECT json_extract(j.value, '$.key'), e.severity, e.last_seen, coalesce(i.closed = 0, 0)"
        " FROM events AS e JOIN json_each(e.body, '$.evidence') AS j"
        " LEFT JOIN incidents AS i ON e.incident_id != '' AND i.incident_id = e.incident_id",
    ),
    "postgres": _Queries(
        open_case_keys="SELECT DISTINCT j.value ->> 'key' FROM cases AS c"
        " CROSS JOIN LATERAL jsonb_array_elements(c.body::jsonb -> 'evidence') AS j(value)"
        f" WHERE c.state NOT IN {_FINAL}",
        closed_case_keys="SELECT j.value ->> 'key', coalesce(c.body::jsonb -> 'nodes' ->> c.state, c.updated_at)"
        " FROM cases AS c CROSS JOIN LATERAL jsonb_array_elements(c.body::jsonb -> 'evidence') AS j(value)"
        f" WHERE c.state IN {_FINAL}",
        incident_keys="SELECT DISTINCT j.value ->> 'key' FROM incidents AS i"
        " JOIN events AS e ON e.id IN (i.latest_id, i.evidence_id)"
        " CROSS JOIN LATERAL jsonb_array_elements(e.body::jsonb -> 'evidence') AS j(value)"
        " WHERE i.incident_id IN (SELECT jsonb_array_elements_text(?::jsonb))",
        event_keys="SELECT j.value ->> 'key', e.severity, e.last_seen, coalesce(i.closed = 0, false)"
        " FROM events AS e CROSS JOIN LATERAL jsonb_array_elements(e.body::jsonb -> 'evidence') AS j(value)"
        " LEFT JOIN incidents AS i ON e.incident_id != '' AND i.incident_id = e.incident_id",
    ),
}


class RetentionError(GridwatchError):
    """A database retention needs is missing."""


class DiskUsage(Protocol):
    """What `shutil.disk_usage` returns."""

    @property
    def total(self) -> int: ...
    @property
    def used(self) -> int: ...
    @property
    def free(self) -> int: ...


DiskUsageFn = Callable[[Path], DiskUsage]


def _days(days: int) -> timedelta | None:
    return None if days == 0 else timedelta(days=days)


@dataclass(frozen=True)
class RetentionPolicy:
    """How long evidence is kept: `keep` per severity after an event was last seen, `closed_case` after a case
    was closed or rejected (None: forever, by age), and the disk's high- and low-water marks in percent."""

    keep: Mapping[Severity, timedelta | None]
    closed_case: timedelta | None = timedelta(days=365)
    high_water_pct: float = 90.0
    low_water_pct: float = 80.0
    dry_run: bool = False

    @classmethod
    def from_settings(cls, settings: RetentionSettings, *, dry_run: bool = False) -> RetentionPolicy:
        """The policy of `settings`; `dry_run` True makes it a dry run whatever the settings say."""
        days = settings.keep_days
        keep = {s: _days(getattr(days, s.value)) for s in Severity}
        return cls(
            keep=keep,
            closed_case=_days(settings.closed_case_days),
            high_water_pct=settings.high_water_pct,
            low_water_pct=settings.low_water_pct,
            dry_run=dry_run or settings.dry_run,
        )


class Tally(BaseModel):
    model_config = ConfigDict(extra="forbid")

    files: int = 0
    bytes: int = 0

    def add(self, size: int) -> None:
        self.files += 1
        self.bytes += size


class DiskState(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    total: int
    used: int
    free: int

    @property
    def used_pct(self) -> float:
        return 100.0 * self.used / self.total if self.total > 0 else 0.0

    def less(self, freed: int) -> DiskState:
        return DiskState(total=self.total, used=self.used - freed, free=self.free + freed)


class RemovedFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    bytes: int
    reason: Reason
    severity: str = Field(description=f"the highest severity of the events naming it; {CASE_ONLY!r} for none")
    last_needed: datetime = Field(description="the latest last_seen of its events or closing of its cases")


class PruneReport(BaseModel):
    """What one run removed (or, in a dry run, would have) and kept, and the disk before and after."""

    model_config = ConfigDict(extra="forbid")

    at: datetime
    dry_run: bool
    removed: Tally = Field(default_factory=Tally)
    by_reason: dict[Reason, Tally] = Field(default_factory=dict)
    by_severity: dict[str, Tally] = Field(default_factory=dict)
    kept_open_case: Tally = Field(default_factory=Tally, description="files kept because an open case needs them")
    kept_open_incident: Tally = Field(default_factory=Tally, description="files of open incidents of no open case")
    high_water: bool = Field(default=False, description="the disk was above the high-water mark after the age pass")
    disk_before: DiskState
    disk_after: DiskState
    files: list[RemovedFile] = Field(default_factory=list)

    def count(self, item: RemovedFile) -> None:
        self.files.append(item)
        self.removed.add(item.bytes)
        self.by_reason.setdefault(item.reason, Tally()).add(item.bytes)
        self.by_severity.setdefault(item.severity, Tally()).add(item.bytes)

    def summary(self) -> str:
        """One line, for the log."""
        reasons = ", ".join(f"{r} {t.files}" for r, t in sorted(self.by_reason.items())) or "none"
        return (
            f"evidence retention{' (dry run)' if self.dry_run else ''}: removed {self.removed.files} files"
            f" ({_size(self.removed.bytes)}; {reasons}), kept {self.kept_open_case.files} for open cases,"
            f" disk {self.disk_before.used_pct:.1f}% -> {self.disk_after.used_pct:.1f}%"
        )

    def text(self) -> str:
        """Several lines, for `gridwatch evidence prune`."""
        lines = [self.summary()]
        for title, tallies in (("by reason", self.by_reason), ("by severity", self.by_severity)):
            parts = [f"{name} {t.files} files {_size(t.bytes)}" for name, t in sorted(tallies.items())]
            lines.append(f"  {title}: {', '.join(parts) or 'none'}")
        case, incident = self.kept_open_case, self.kept_open_incident
        lines.append(f"  kept: {case.files} files {_size(case.bytes)} of open cases,")
        lines.append(f"        {incident.files} files {_size(incident.bytes)} of open incidents without an open case")
        if self.high_water:
            lines.append("  the disk was above the high-water mark: oldest evidence removed first")
        return "\n".join(lines)


def _size(n: int) -> str:
    """Bytes as people read them: 812 B, 3.4 MB (powers of 1000)."""
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 1000:
            return f"{value:.1f} {unit}"
    return f"{value / 1000:.1f} TB"


@dataclass
class _Key:
    """What the databases say of one evidence key."""

    severity: str = CASE_ONLY
    last_needed: datetime = _EPOCH
    expires: datetime = _EPOCH  # removable by age once past this
    forever: bool = False  # some event or case keeps it with keep days 0
    hold: Literal["open_case", "open_incident"] | None = None

    def needed(self, seen: datetime, keep: timedelta | None) -> None:
        self.last_needed = max(self.last_needed, seen)
        if keep is None:
            self.forever = True
        else:
            self.expires = max(self.expires, seen + keep)


@dataclass
class _Facts:
    keys: dict[str, _Key] = field(default_factory=dict)

    def of(self, key: object) -> _Key | None:
        try:
            text = validate_key(str(key))
        except EvidenceError:
            logger.warning("retention: malformed evidence key %r in the database: ignored", key)
            return None
        return self.keys.setdefault(text, _Key())


def _moment(text: object) -> datetime:
    moment = datetime.fromisoformat(str(text))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@contextmanager
def _read_only(db: Database) -> Iterator[Connection]:
    if not db.exists():
        raise RetentionError(f"retention: no database at {db.label}")
    with closing(db.connect_reader()) as conn:
        yield conn


def _case_facts(facts: _Facts, cases_db: Database | None, policy: RetentionPolicy) -> list[str]:
    """Mark the keys of open cases held and age those of closed ones; the incidents of open cases."""
    if cases_db is None:
        return []
    queries = _QUERIES[cases_db.dialect]
    with _read_only(cases_db) as conn:
        for (key,) in conn.execute(queries.open_case_keys):
            if (item := facts.of(key)) is not None:
                item.hold = "open_case"
        for key, closed_at in conn.execute(queries.closed_case_keys):
            if (item := facts.of(key)) is not None:
                item.needed(_moment(closed_at), policy.closed_case)
        return [str(incident) for (incident,) in conn.execute(_OPEN_CASE_INCIDENTS)]


def _event_facts(facts: _Facts, events_db: Database, open_incidents: Sequence[str], policy: RetentionPolicy) -> None:
    queries = _QUERIES[events_db.dialect]
    with _read_only(events_db) as conn:
        for (key,) in conn.execute(queries.incident_keys, (json.dumps(list(open_incidents)),)):
            if (item := facts.of(key)) is not None:
                item.hold = "open_case"
        for key, severity, last_seen, incident_open in conn.execute(queries.event_keys):
            item = facts.of(key)
            if item is None:
                continue
            item.needed(_moment(last_seen), policy.keep[Severity(str(severity))])
            if SEVERITY_RANK[str(severity)] > SEVERITY_RANK[item.severity]:
                item.severity = str(severity)
            if incident_open and item.hold is None:
                item.hold = "open_incident"


def _file_size(evidence: EvidenceStore, key: str) -> int | None:
    try:
        return evidence.path(key).stat().st_size
    except FileNotFoundError:
        return None  # removed before (the pruned table says when), or never stored


def _disk(disk_usage: DiskUsageFn, root: Path) -> DiskState:
    where = root
    while not where.exists() and where != where.parent:
        where = where.parent  # no evidence yet: the disk it will be on
    usage = disk_usage(where)
    return DiskState(total=usage.total, used=usage.used, free=usage.free)


def _choose(
    evidence: EvidenceStore, facts: _Facts, report: PruneReport, policy: RetentionPolicy, now: datetime
) -> None:
    """Count the held files, then choose the files that go: by age, then to get below the low-water mark."""
    candidates: list[tuple[datetime, str, _Key]] = []
    for key, item in facts.keys.items():
        if item.hold is not None:
            if (size := _file_size(evidence, key)) is not None:
                held = report.kept_open_case if item.hold == "open_case" else report.kept_open_incident
                held.add(size)
        elif not item.forever and item.expires < now:  # strictly past its keep
            if (size := _file_size(evidence, key)) is not None:
                report.count(_removed(key, size, "age", item))
        else:
            candidates.append((item.last_needed, key, item))
    disk = report.disk_before.less(report.removed.bytes)
    report.high_water = disk.used_pct > policy.high_water_pct
    if not report.high_water:
        return
    for _, key, item in sorted(candidates, key=lambda c: (c[0], c[1])):
        if disk.used_pct < policy.low_water_pct:
            break
        if (size := _file_size(evidence, key)) is not None:
            report.count(_removed(key, size, "high_water", item))
            disk = disk.less(size)
    if disk.used_pct >= policy.low_water_pct:
        logger.warning("retention: disk still %.1f%% used after removing all removable evidence", disk.used_pct)


def _removed(key: str, size: int, reason: Reason, item: _Key) -> RemovedFile:
    return RemovedFile(key=key, bytes=size, reason=reason, severity=item.severity, last_needed=item.last_needed)


def _remove(evidence: EvidenceStore, events_db: Database, files: Sequence[RemovedFile], now: datetime) -> None:
    """Record each removal in the `pruned` table (made by the event store's migrations), then unlink its file
    (a batch at a time)."""
    with closing(events_db.connect()) as conn:
        if not conn.table_exists("pruned"):
            raise RetentionError(f"retention: {events_db.label} has no pruned table (open it as an event store)")
        for start in range(0, len(files), RECORD_BATCH):
            batch = files[start : start + RECORD_BATCH]
            with transaction(conn):
                conn.executemany(
                    "INSERT INTO pruned (key, at, reason) VALUES (?, ?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET at = excluded.at, reason = excluded.reason",
                    [(f.key, iso_utc(now), f.reason) for f in batch],
                )
            for item in batch:
                evidence.path(item.key).unlink(missing_ok=True)
                logger.debug("retention: removed %s (%s, %d bytes)", item.key, item.reason, item.bytes)


def prune(
    evidence: EvidenceStore,
    events: Path | str | Database,
    cases: Path | str | Database | None,
    policy: RetentionPolicy,
    now: datetime,
    *,
    disk_usage: DiskUsageFn = shutil.disk_usage,
) -> PruneReport:
    """Remove the evidence `policy` lets go at `now` (nothing in a dry run) and report it.

    `events` and `cases` are the two stores' databases; `cases` None: there are no cases (only events and their
    incidents decide). `disk_usage` measures the disk holding `evidence.root` (`shutil.disk_usage`)."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    events_db = open_database(events, "events")
    facts = _Facts()
    open_incidents = _case_facts(facts, open_database(cases, "cases") if cases is not None else None, policy)
    _event_facts(facts, events_db, open_incidents, policy)
    before = _disk(disk_usage, evidence.root)
    report = PruneReport(at=now, dry_run=policy.dry_run, disk_before=before, disk_after=before)
    _choose(evidence, facts, report, policy, now)
    if policy.dry_run:
        report.disk_after = before.less(report.removed.bytes)
    else:
        _remove(evidence, events_db, report.files, now)
        report.disk_after = _disk(disk_usage, evidence.root)
    return report


class PrunedRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    at: datetime
    reason: Reason


def pruned_record(events: Path | str | Database, key: str) -> PrunedRecord | None:
    """When and why retention removed `key`; None if it never did (or there is no events database)."""
    events_db = open_database(events, "events")
    if not events_db.exists():
        return None
    with _read_only(events_db) as conn:
        if not conn.table_exists("pruned"):
            return None
        row = conn.execute("SELECT at, reason FROM pruned WHERE key = ?", (key,)).fetchone()
    return None if row is None else PrunedRecord(key=key, at=_moment(row[0]), reason=row[1])


class RetentionJob:
    """Runs `prune` every `every_s` seconds in a thread, logging a one-line summary of each run that removes
    anything."""

    def __init__(
        self,
        evidence: EvidenceStore,
        events_db: Path | str | Database,
        cases_db: Path | str | Database | None,
        policy: RetentionPolicy,
        now: Callable[[], datetime],
        every_s: float,
    ) -> None:
        self.evidence, self.events_db, self.cases_db = evidence, events_db, cases_db
        self.policy, self._now, self.every_s = policy, now, every_s
        self.last: PruneReport | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> PruneReport:
        report = prune(self.evidence, self.events_db, self.cases_db, self.policy, self._now())
        self.last = report
        if report.files:
            logger.info("%s", report.summary())
        return report

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="evidence-retention", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.run_once()
            except Exception:  # loop boundary: the next run tries again; each removal was recorded first
                logger.exception("evidence retention failed")

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
