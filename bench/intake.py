"""`python -m bench.intake`: what the grid-event intake costs.

1. Case writes with evidence per second on SQLite and on PostgreSQL (a real server started here, as the tests
   do): reports posted through `CaseStore.create` (each with its photo evidence already stored), and camera
   incidents applied by the feed (`IncidentCases.apply`), one at a time, each its own transaction (fsync), as the
   intake runs them.
2. What the intake adds to a patrol visit while the city platform is down: the time `emit` of the patrol's sink
   takes for an incident event with two real snapshot JPEGs (evidence files, the event row, the feed's wake-up),
   while the case feed applies the events and the outbox retries against a receiver that refuses connections.

Writes the `## Intake` section of docs/benchmarks.md (other sections are kept).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import socket
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
from ulid import ULID

from bench.report import replace_section
from core.clock import SystemClock
from core.events import Event, EventState
from core.settings import TargetSettings
from intake.bus import EventBus
from intake.calendar import WorkCalendar
from intake.case_deadlines import CalendarDeadlines
from intake.case_feed import CaseFeed
from intake.case_model import CaseCreate
from intake.case_store import CaseStore
from intake.deadlines import DeadlinePolicy
from intake.evidence import EvidenceStore
from intake.handoff import QueuedSink
from intake.incident_cases import IncidentCases
from intake.outbox import OutboxDelivery
from intake.sink import IntakeSink
from intake.store import EventStore
from tests.intake.builders import make_event, make_evidence, make_image_bytes
from tests.support.assets import media_mirror
from tests.support.postgres import postgres_server

logger = logging.getLogger("bench.intake")
ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Intake"
SECRET = "whsec_" + "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI="


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _store(where: Path | str, targets: Sequence[str] = ()) -> CaseStore:
    """A case store in the folder `where` (SQLite) or the PostgreSQL database it names."""
    deadlines = CalendarDeadlines(DeadlinePolicy(), WorkCalendar())
    target = where / "cases.sqlite3" if isinstance(where, Path) else where
    return CaseStore(target, deadlines=deadlines, targets=targets)


def report_writes(where: Path | str, evidence_folder: Path, n: int) -> float:
    """Reports with a photo each, written one by one: cases per second."""
    evidence_store = EvidenceStore(evidence_folder)
    store = _store(where, ["city"])
    photos = [make_image_bytes(i) for i in range(16)]
    at = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
    t0 = time.perf_counter()
    for i in range(n):
        data = photos[i % len(photos)]
        evidence_store.put_keyed(make_evidence(data).key, data)
        report = CaseCreate(sender_id=f"app:{i}", category="0505", description="占道", lon=121.47, lat=31.23)
        store.create(report, actor="gw", role="operator", at=at, evidence=[make_evidence(data)])
    rate = n / (time.perf_counter() - t0)
    store.close()
    return rate


def incident_writes(where: Path | str, n: int) -> float:
    """Camera incidents (an open with its snapshot) applied one by one: cases per second."""
    store = _store(where)
    cases = IncidentCases(store, merge_window_s=0)
    now = datetime.now(UTC)
    photos = [make_image_bytes(i) for i in range(16)]
    events = [
        make_event(i, incident_id=str(ULID()), camera_id=f"cam-{i}", evidence=[make_evidence(photos[i % 16])])
        for i in range(n)
    ]
    t0 = time.perf_counter()
    for event in events:
        cases.apply(event, now)
    rate = n / (time.perf_counter() - t0)
    store.close()
    return rate


def _incident_event(i: int, jpegs: Sequence[bytes], blobs: dict[str, bytes]) -> Event:
    annotated, frame = jpegs[(2 * i) % len(jpegs)], jpegs[(2 * i + 1) % len(jpegs)]
    evidence = [make_evidence(annotated), make_evidence(frame, kind="frame")]
    blobs.update({evidence[0].key: annotated, evidence[1].key: frame})
    base = make_event(0, incident_id=str(ULID()), camera_id=f"cam-{i}", evidence=evidence, state=EventState.open)
    return base.model_copy(update={"id": str(ULID()), "first_seen": datetime.now(UTC), "last_seen": datetime.now(UTC)})


def emit_costs(folder: Path, n: int, jpegs: Sequence[bytes], *, intake: bool, queued: bool = False) -> list[float]:
    """Milliseconds of the patrol's `emit` for `n` incident events with two footage snapshots each; with `intake`,
    while the case feed and the outbox (its receiver down: connections refused) run beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    events, bus = EventStore(folder / "events.sqlite3"), EventBus()
    sink = IntakeSink(events, EvidenceStore(folder / "evidence"), bus)
    if not intake:
        costs = []
        for i in range(n):
            blobs: dict[str, bytes] = {}
            event = _incident_event(i, jpegs, blobs)
            t0 = time.perf_counter()
            sink.emit(event, blobs)
            costs.append((time.perf_counter() - t0) * 1e3)
            time.sleep(0.005)
        bus.close()
        events.close()
        return costs
    store = _store(folder, ["city"])
    feed = CaseFeed(events, IncidentCases(store), lambda: datetime.now(UTC), interval_s=0.2)
    target = TargetSettings.model_validate(
        {"url": f"http://127.0.0.1:{_closed_port()}/down", "secret": SECRET, "timeout_s": 1.0, "backoff_base_s": 0.5}
    )
    outbox = OutboxDelivery(store.db, {"city": target}, SystemClock(), poll_s=0.2)
    handoff = QueuedSink(sink) if queued else None
    patrol_sink = handoff if handoff is not None else sink
    feed.start()
    outbox.start()
    costs = []
    try:
        for i in range(n):
            blobs = {}
            event = _incident_event(i, jpegs, blobs)
            t0 = time.perf_counter()
            patrol_sink.emit(event, blobs)
            feed.notify()
            costs.append((time.perf_counter() - t0) * 1e3)
            time.sleep(0.005)
    finally:
        if handoff is not None:
            handoff.stop()
        feed.stop()
        outbox.stop()
        outbox.close()
        store.close()
        bus.close()
        events.close()
    return costs


def _footage_jpegs(count: int) -> list[bytes]:
    """Real snapshot-sized JPEGs: frames of the shared footage at the evidence quality."""
    capture = cv2.VideoCapture(str(media_mirror() / "vtest_h264.mp4"))
    out: list[bytes] = []
    while len(out) < count:
        ok, frame = capture.read()
        if not ok:
            break
        out.append(bytes(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()))
    capture.release()
    return out


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def section(
    reports: tuple[float, float],
    incidents: tuple[float, float],
    rows: Sequence[tuple[str, list[float]]],
    cases_made: int,
    snapshot_kb: int,
    pg_version: str,
) -> str:
    table = "\n".join(f"| {name} | {statistics.median(v):.3f} | {_pct(v, 99):.3f} |" for name, v in rows)
    return f"""{HEADING}

How to run: `python -m bench.intake` (part of `make bench`). Machine: {platform.machine()}, {os.cpu_count()} cores,
Python {platform.python_version()}. SQLite in WAL mode with `synchronous = FULL`; PostgreSQL {pg_version} on this
machine over loopback TCP with its defaults (`fsync` and `synchronous_commit` on): on both, every commit reaches the
disk before it returns. One writer at a time per store (SQLite's file lock, PostgreSQL's advisory lock).

| what | SQLite per second | PostgreSQL per second | target |
|---|---|---|---|
| reports with a photo: `CaseStore.create` | {reports[0]:,.0f} | {reports[1]:,.0f} | >= 500 each |
| camera incidents into cases: `IncidentCases.apply` | {incidents[0]:,.0f} | {incidents[1]:,.0f} | >= 500 each |

A report's write is its number, deadline, audit row and outbox row; an incident's adds the merge and link checks.

What a visit waits for when it hands an incident event with two snapshots of the footage (about {snapshot_kb} KB
each) to the intake, {len(rows[0][1]):,} events 5 ms apart, the city platform down (connections refused):

| the patrol's sink | median ms | p99 ms |
|---|---|---|
{table}

The patrol's sink in `gridwatch run` is the hand-off queue (`intake.handoff.QueuedSink`): the visit returns
as soon as the event is queued; the evidence files, the event row (both fsynced), the case feed and the outbox
run on their own threads. The rows above it show what the visit would wait for if it stored the event itself.
The case feed made {cases_made:,} cases from the last run's events meanwhile.
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.intake", description=__doc__)
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--emits", type=int, default=500)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    jpegs = _footage_jpegs(40)
    snapshot_kb = round(statistics.mean(len(j) for j in jpegs) / 1024)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "r").mkdir()
        (root / "i").mkdir()
        with postgres_server() as pg:
            pg_version = pg.version()
            reports = (
                report_writes(root / "r", root / "r" / "evidence", args.writes),
                report_writes(pg.new_database(), root / "pr" / "evidence", args.writes),
            )
            incidents = (incident_writes(root / "i", args.writes), incident_writes(pg.new_database(), args.writes))
        rows = [
            ("storing the event itself, no intake threads", emit_costs(root / "a", args.emits, jpegs, intake=False)),
            ("storing it itself, case feed + outbox running", emit_costs(root / "b", args.emits, jpegs, intake=True)),
            (
                "hand-off queue, case feed + outbox running",
                emit_costs(root / "c", args.emits, jpegs, intake=True, queued=True),
            ),
        ]
        done = CaseStore(root / "c" / "cases.sqlite3")
        cases_made = len(done.list(limit=100_000))
        done.close()
    text = section(reports, incidents, rows, cases_made, snapshot_kb, pg_version)
    replace_section(args.out, HEADING, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
