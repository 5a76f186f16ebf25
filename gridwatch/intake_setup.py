"""The grid-event intake of `gridwatch run`: the case store with its deadlines and grid map, the feed of
incidents into cases, the card sweeper and the webhook outbox, built from the config folder and settings."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from core.clock import Clock
from core.settings import Settings
from intake.calendar import load_calendar
from intake.case_deadlines import CalendarDeadlines
from intake.case_feed import CaseFeed
from intake.case_model import Case
from intake.case_store import CaseStore, sweep_cards
from intake.deadlines import load_deadline_policy
from intake.evidence import EvidenceStore
from intake.grids import GridMap
from intake.incident_cases import IncidentCases
from intake.outbox import OutboxDelivery
from intake.retention import RetentionJob, RetentionPolicy
from intake.store import EventStore
from rules.categories import CategoryTable

logger = logging.getLogger(__name__)

CASES_FILE = "cases.sqlite3"
EVIDENCE_DIR = "evidence"  # under data_dir, as the runtime stores it
EVENTS_FILE = "events.sqlite3"


def store_targets(settings: Settings) -> tuple[Path | str, Path | str]:
    """Where the event and the case stores live: the PostgreSQL URL of `intake.database_url` for both, or the
    SQLite files in `data_dir`."""
    url = settings.intake.database_url
    if url is not None:
        return url.get_secret_value(), url.get_secret_value()
    return settings.data_dir / EVENTS_FILE, settings.data_dir / CASES_FILE


def _optional(config_dir: Path, name: str) -> Path | None:
    path = config_dir / name
    return path if path.is_file() else None


@dataclass
class Intake:
    """The running parts; `start` and `stop` run their threads."""

    cases: CaseStore
    feed: CaseFeed
    outbox: OutboxDelivery | None
    clock: Clock
    sweep_s: float
    retention: RetentionJob | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self.feed.start()
        if self.outbox is not None:
            self.outbox.start()
        threading.Thread(target=self._sweep, name="case-cards", daemon=True).start()
        if self.retention is not None:
            self.retention.start()

    def _sweep(self) -> None:
        while not self._stop.wait(self.sweep_s):
            try:
                sweep_cards(self.cases, self.clock.now())
            except Exception:  # loop boundary: the next sweep tries again, no card is raised twice
                logger.exception("card sweep failed")

    def stop(self) -> None:
        self._stop.set()
        if self.retention is not None:
            self.retention.stop()
        self.feed.stop()
        try:
            self.feed.run_once()  # what the patrol stored before it stopped
        except Exception:  # stopping goes on; the events stay in the event store for the next start
            logger.exception("last case feed pass failed at stop")
        finally:
            if self.outbox is not None:
                self.outbox.stop()
                self.outbox.close()
            self.cases.close()

    def health(self) -> dict[str, object]:
        out: dict[str, object] = {"feed": vars(self.feed.stats).copy()}
        if self.outbox is not None:
            out["outbox"] = self.outbox.stats().model_dump(mode="json")
        return out


def build_intake(
    config_dir: Path,
    settings: Settings,
    events: EventStore,
    categories: CategoryTable,
    clock: Clock,
    on_change: Callable[[Case], None] | None = None,
) -> Intake:
    """Everything read and checked here, so a bad calendar, deadline or grid file stops the start with its place."""
    conf = settings.intake
    calendar = load_calendar(_optional(config_dir, "calendar.yaml"))
    policy = load_deadline_policy(_optional(config_dir, "deadlines.yaml"), categories)
    grids_file = _optional(config_dir, "grids.geojson")
    grids = GridMap.from_geojson(grids_file) if grids_file is not None else None
    cases = CaseStore(
        store_targets(settings)[1],
        deadlines=CalendarDeadlines(policy, calendar),
        targets=list(conf.targets),
        grids=grids,
        categories=categories,
        link_window_s=conf.link_window_s,
        on_change=on_change,
    )
    incidents = IncidentCases(cases, merge_window_s=conf.merge_window_s, link_window_s=conf.link_window_s)
    feed = CaseFeed(events, incidents, clock.now, interval_s=conf.feed_interval_s)
    keep_delivered = timedelta(days=conf.outbox_keep_days) if conf.outbox_keep_days else None
    outbox = OutboxDelivery(cases.db, conf.targets, clock, keep_delivered=keep_delivered) if conf.targets else None
    logger.info(
        "intake: cases in %s, %d grids, %d delivery targets",
        cases.db.label,
        len(grids) if grids is not None else 0,
        len(conf.targets),
    )
    keep = conf.retention
    retention = None
    if keep.enabled:
        evidence = EvidenceStore(settings.data_dir / EVIDENCE_DIR)
        rules = RetentionPolicy.from_settings(keep)
        retention = RetentionJob(evidence, events.db, cases.db, rules, clock.now, keep.every_s)
    return Intake(cases, feed, outbox, clock, conf.sweep_s, retention)
