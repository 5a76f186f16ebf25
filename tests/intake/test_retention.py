"""Evidence retention against real files and real SQLite: the event store, the case store and the evidence folder
as the intake keeps them. Only the disk's size is simulated (`disk_usage`, an OS boundary)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.app import ApiDeps, create_app
from core.events import Event, EventState, Evidence, Severity
from core.settings import RetentionSettings, SeverityKeepDays
from gridwatch.cli import main
from intake.bus import EventBus
from intake.case_model import Case, CaseCreate
from intake.case_store import CaseStore
from intake.evidence import EvidenceStore
from intake.retention import (
    PruneReport,
    RetentionError,
    RetentionJob,
    RetentionPolicy,
    Tally,
    prune,
    pruned_record,
)
from intake.store import EventStore
from tests.intake.builders import BASE_TIME, make_event, make_evidence, make_image_bytes, ulid_at
from tests.intake.case_builders import act, close_at
from tests.support.postgres import StoreTargets

DAY = timedelta(days=1)
DEFAULT = RetentionPolicy.from_settings(RetentionSettings())


class Usage(NamedTuple):
    total: int
    used: int
    free: int


class FakeDisk:
    """A disk of `total` bytes holding `other` bytes of something else plus the evidence files now present."""

    def __init__(self, root: Path, total: int, other: int) -> None:
        self.root, self.total, self.other = root, total, other

    def evidence_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    def __call__(self, path: Path) -> Usage:
        used = self.other + self.evidence_bytes()
        return Usage(self.total, used, self.total - used)


@dataclass
class World:
    tmp: Path
    evidence: EvidenceStore
    events: EventStore
    cases: CaseStore
    seed: int = 0

    def file(self) -> Evidence:
        """A new real JPEG, stored, and its evidence record."""
        self.seed += 1
        data = make_image_bytes(self.seed)
        self.evidence.put(data, "jpg")
        return make_evidence(data)

    def event(
        self,
        at: datetime,
        severity: Severity = Severity.minor,
        evidence: list[Evidence] | None = None,
        *,
        incident_id: str = "",
        state: EventState = EventState.open,
    ) -> Event:
        """An event last seen at `at`, naming `evidence` (one new file when None), stored."""
        event = make_event(
            (at - BASE_TIME).total_seconds(),
            event_id=ulid_at(at + timedelta(microseconds=self.seed)),
            severity=severity,
            evidence=evidence if evidence is not None else [self.file()],
            incident_id=incident_id,
            state=state,
        )
        self.seed += 1
        assert self.events.add(event)
        return event

    def case(self, evidence: list[Evidence], at: datetime, *, incident_id: str = "") -> Case:
        self.seed += 1
        report = CaseCreate(sender_id=f"gw-{self.seed}", category="0501")
        case, created = self.cases.create(
            report, actor="gw-0117", role="operator", at=at, evidence=evidence, incident_id=incident_id
        )
        assert created
        return case

    def size(self, *items: Evidence) -> int:
        return sum(self.evidence.path(e.key).stat().st_size for e in items)

    def present(self, item: Evidence) -> bool:
        return self.evidence.exists(item.key)

    def prune(self, now: datetime, policy: RetentionPolicy = DEFAULT, disk: FakeDisk | None = None) -> PruneReport:
        usage = disk if disk is not None else FakeDisk(self.evidence.root, 10**12, 0)
        return prune(self.evidence, self.events.db, self.cases.db, policy, now, disk_usage=usage)


@pytest.fixture
def world(tmp_path: Path, store_targets: StoreTargets) -> Iterator[World]:
    """Evidence files with both stores on each backend, SQLite and PostgreSQL."""
    events = EventStore(store_targets.events)
    cases = CaseStore(store_targets.cases)
    try:
        yield World(tmp_path, EvidenceStore(tmp_path / "evidence"), events, cases)
    finally:
        cases.close()
        events.close()


def test_evidence_of_an_open_case_survives_any_age(world: World) -> None:
    # given an info event's evidence, held by a case that is still open ten years on
    event = world.event(BASE_TIME, Severity.info)
    world.case(event.evidence, BASE_TIME)
    # when
    report = world.prune(BASE_TIME + 3650 * DAY)
    # then
    assert world.present(event.evidence[0])
    assert report.removed == Tally()
    assert report.kept_open_case == Tally(files=1, bytes=world.size(*event.evidence))


def test_evidence_of_a_closed_case_goes_after_its_keep_days(world: World) -> None:
    # given a minor event (30 days) whose evidence a case holds, closed 10 days later; and a rejected one
    event = world.event(BASE_TIME, Severity.minor)
    close_at(world.cases, world.case(event.evidence, BASE_TIME), BASE_TIME + 10 * DAY)
    photo = world.file()
    photo_size = world.size(photo)
    act(world.cases, world.case([photo], BASE_TIME), ["reject"], BASE_TIME + 20 * DAY)
    # when / then: 365 days after the closing both are kept, the day after the closed case's file goes
    assert world.prune(BASE_TIME + 375 * DAY).removed.files == 0
    report = world.prune(BASE_TIME + 375 * DAY + timedelta(seconds=1))
    assert not world.present(event.evidence[0])
    assert world.present(photo)
    assert report.by_reason == {"age": Tally(files=1, bytes=report.removed.bytes)}
    assert report.by_severity == {"minor": report.removed}
    # and the rejected case's photo (no event: the "case" bucket) 365 days after its rejection
    later = world.prune(BASE_TIME + 386 * DAY)
    assert [f.key for f in later.files] == [photo.key]
    assert later.by_severity == {"case": Tally(files=1, bytes=photo_size)}


def test_closed_case_days_zero_keeps_its_evidence_forever(world: World) -> None:
    event = world.event(BASE_TIME, Severity.info)
    close_at(world.cases, world.case(event.evidence, BASE_TIME), BASE_TIME + DAY)
    policy = RetentionPolicy.from_settings(RetentionSettings(closed_case_days=0))
    assert world.prune(BASE_TIME + 9999 * DAY, policy).removed.files == 0
    assert world.present(event.evidence[0])


def test_each_severity_keeps_its_own_days(world: World) -> None:
    # given one event of each severity, all last seen at BASE_TIME, and no case
    by_severity = {s: world.event(BASE_TIME, s) for s in Severity}
    sizes = {s.value: world.size(*e.evidence) for s, e in by_severity.items()}
    # when / then: each goes the moment its days are past, not before
    expected = [(7, "info"), (30, "minor"), (90, "major"), (365, "critical")]
    for days, severity in expected:
        assert world.prune(BASE_TIME + days * DAY).removed.files == 0
        report = world.prune(BASE_TIME + days * DAY + timedelta(seconds=1))
        assert report.by_severity == {severity: Tally(files=1, bytes=sizes[severity])}
        assert [f.key for f in report.files] == [by_severity[Severity(severity)].evidence[0].key]
    assert not any(world.present(e.evidence[0]) for e in by_severity.values())


def test_a_file_named_by_several_events_lives_as_long_as_the_longest_keep(world: World) -> None:
    shared = world.file()
    world.event(BASE_TIME, Severity.info, [shared])
    world.event(BASE_TIME - 10 * DAY, Severity.critical, [shared])
    world.event(BASE_TIME + 20 * DAY, Severity.info, [shared])
    assert world.prune(BASE_TIME + 355 * DAY).removed.files == 0
    report = world.prune(BASE_TIME + 356 * DAY)
    assert [(f.key, f.severity, f.last_needed) for f in report.files] == [
        (shared.key, "critical", BASE_TIME + 20 * DAY)
    ]


def test_keep_days_zero_keeps_that_severity_forever(world: World) -> None:
    event = world.event(BASE_TIME, Severity.info)
    settings = RetentionSettings(keep_days=SeverityKeepDays(info=0))
    assert world.prune(BASE_TIME + 9999 * DAY, RetentionPolicy.from_settings(settings)).removed.files == 0
    assert world.present(event.evidence[0])


def test_evidence_of_an_open_incident_is_never_pruned_until_it_closes(world: World) -> None:
    # given an incident opened a year ago with an info event (7 days), no case
    incident = ulid_at(BASE_TIME)
    opened = world.event(BASE_TIME, Severity.info, incident_id=incident)
    # when / then
    report = world.prune(BASE_TIME + 365 * DAY)
    assert world.present(opened.evidence[0])
    assert report.kept_open_incident == Tally(files=1, bytes=world.size(*opened.evidence))
    # once closed, its evidence ages like any other
    world.event(BASE_TIME + 365 * DAY, Severity.info, [], incident_id=incident, state=EventState.close)
    assert [f.key for f in world.prune(BASE_TIME + 366 * DAY).files] == [opened.evidence[0].key]


def test_the_latest_evidence_of_an_open_cases_incident_is_kept_even_when_the_case_does_not_hold_it(
    world: World,
) -> None:
    # given a closed incident whose latest evidence is not among the case's own (it keeps only some), case open
    incident = ulid_at(BASE_TIME)
    first = world.event(BASE_TIME, Severity.info, incident_id=incident)
    latest = world.event(BASE_TIME + DAY, Severity.info, incident_id=incident, state=EventState.update)
    world.event(BASE_TIME + 2 * DAY, Severity.info, [], incident_id=incident, state=EventState.close)
    world.case(first.evidence, BASE_TIME, incident_id=incident)
    # when
    report = world.prune(BASE_TIME + 100 * DAY)
    # then
    assert world.present(first.evidence[0]) and world.present(latest.evidence[0])
    assert report.kept_open_case.files == 2
    assert report.removed.files == 0


def high_water_world(world: World) -> tuple[list[Event], Evidence, FakeDisk]:
    """Six recent critical events a day apart (none old enough to go by age) and, oldest of all, an open case's
    file; a disk whose other contents leave it 95 % full."""
    held = world.file()
    world.case([held], BASE_TIME - 100 * DAY)
    world.event(BASE_TIME - 100 * DAY, Severity.info, [held])
    events = [world.event(BASE_TIME + i * DAY, Severity.critical) for i in range(6)]
    total = 20 * world.size(held)
    disk = FakeDisk(world.evidence.root, total, 0)
    disk.other = int(total * 0.95) - disk.evidence_bytes()
    return events, held, disk


def test_above_the_high_water_mark_the_oldest_go_first_until_below_low_water(world: World) -> None:
    # given
    events, held, disk = high_water_world(world)
    before = disk(world.evidence.root)
    policy = RetentionPolicy.from_settings(RetentionSettings(high_water_pct=90, low_water_pct=80))
    sizes = [world.size(*e.evidence) for e in events]
    # the files that must go, oldest first, to get below 80 %
    used, expected = before.used, []
    for event, size in zip(events, sizes, strict=True):
        if used * 100 / before.total < 80:
            break
        expected.append(event.evidence[0].key)
        used -= size
    assert 0 < len(expected) < len(events)
    # when
    report = world.prune(BASE_TIME + 7 * DAY, policy, disk)
    # then
    assert [f.key for f in report.files] == expected
    assert all(f.reason == "high_water" for f in report.files)
    assert world.present(held)
    assert [world.present(e.evidence[0]) for e in events] == [e.evidence[0].key not in expected for e in events]
    assert report.high_water
    assert report.removed == Tally(files=len(expected), bytes=before.used - used)
    assert report.by_reason == {"high_water": report.removed}
    assert report.by_severity == {"critical": report.removed}
    assert report.kept_open_case == Tally(files=1, bytes=world.size(held))
    assert (report.disk_before.used, report.disk_after.used) == (before.used, used)
    last = sizes[len(expected) - 1]
    assert report.disk_after.used_pct < 80 <= (used + last) * 100 / before.total  # not one file more than needed


def test_a_disk_that_stays_full_never_loses_an_open_cases_file(world: World, caplog: pytest.LogCaptureFixture) -> None:
    events, held, disk = high_water_world(world)
    disk.total = 10 * disk.evidence_bytes()
    disk.other = disk.total - disk.evidence_bytes()  # 100 % full, and above 90 % whatever goes
    with caplog.at_level(logging.WARNING, logger="intake.retention"):
        report = world.prune(BASE_TIME + 7 * DAY, DEFAULT, disk)
    assert report.removed.files == len(events)
    assert world.present(held)
    assert "disk still" in caplog.text


def test_below_the_high_water_mark_nothing_goes_before_its_time(world: World) -> None:
    _, _, disk = high_water_world(world)
    disk.other = int(disk.total * 0.89) - disk.evidence_bytes()
    report = world.prune(BASE_TIME + 7 * DAY, DEFAULT, disk)
    assert report.removed == Tally()
    assert not report.high_water


def test_a_dry_run_removes_nothing_and_reports_what_a_real_run_does(world: World) -> None:
    # given old info evidence (age) and recent critical evidence on a full disk (high water)
    old = world.event(BASE_TIME - 30 * DAY, Severity.info)
    _, _, disk = high_water_world(world)
    before = disk.evidence_bytes()
    dry_policy = RetentionPolicy.from_settings(RetentionSettings(dry_run=True))
    # when
    dry = world.prune(BASE_TIME + 7 * DAY, dry_policy, disk)
    # then nothing is gone, nothing is recorded
    assert disk.evidence_bytes() == before and world.present(old.evidence[0])
    assert pruned_record(world.events.db, old.evidence[0].key) is None
    real = world.prune(BASE_TIME + 7 * DAY, DEFAULT, disk)
    assert dry.dry_run and not real.dry_run
    assert dry.model_dump(exclude={"dry_run"}) == real.model_dump(exclude={"dry_run"})
    assert set(dry.by_reason) == {"age", "high_water"}
    assert not world.present(old.evidence[0])


def test_the_api_answers_410_for_a_pruned_key_and_404_for_an_unknown_one(world: World) -> None:
    # given
    gone = world.event(BASE_TIME, Severity.info)
    kept = world.event(BASE_TIME + 300 * DAY, Severity.critical)
    world.prune(BASE_TIME + 300 * DAY)
    deps = ApiDeps(store=world.events, evidence=world.evidence, bus=EventBus(), health=dict, version="t")
    with TestClient(create_app(deps)) as client:
        # when
        removed = client.get(f"/api/v1/evidence/{gone.evidence[0].key}")
        unknown = client.get(f"/api/v1/evidence/{'0' * 64}.jpg")
        present = client.get(f"/api/v1/evidence/{kept.evidence[0].key}")
    # then
    assert removed.status_code == 410
    day = (BASE_TIME + 300 * DAY).date().isoformat()
    assert f"removed by retention on {day}" in removed.json()["detail"]
    assert unknown.status_code == 404
    assert present.status_code == 200


def test_the_pruned_table_says_when_and_why(world: World) -> None:
    gone = world.event(BASE_TIME, Severity.info)
    now = BASE_TIME + 30 * DAY
    world.prune(now)
    record = pruned_record(world.events.db, gone.evidence[0].key)
    assert record is not None
    assert (record.at, record.reason) == (now, "age")
    with closing(world.events.db.connect_reader()) as conn:
        assert tuple(conn.execute("SELECT count(*) FROM pruned").fetchone()) == (1,)


def test_a_missing_database_is_an_error_that_names_it(world: World, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.sqlite3"
    with pytest.raises(RetentionError, match=r"nowhere\.sqlite3"):
        prune(world.evidence, missing, None, DEFAULT, BASE_TIME)


def test_without_cases_events_alone_decide(world: World) -> None:
    event = world.event(BASE_TIME, Severity.info)
    report = prune(world.evidence, world.events.db, None, DEFAULT, BASE_TIME + 8 * DAY)
    assert [f.key for f in report.files] == [event.evidence[0].key]


def test_low_water_must_be_below_high_water() -> None:
    with pytest.raises(ValidationError, match="low_water_pct"):
        RetentionSettings(high_water_pct=80, low_water_pct=80)


def test_the_job_prunes_in_its_thread_and_logs_a_summary(world: World, caplog: pytest.LogCaptureFixture) -> None:
    event = world.event(BASE_TIME, Severity.info)
    job = RetentionJob(world.evidence, world.events.db, world.cases.db, DEFAULT, lambda: BASE_TIME + 30 * DAY, 0.01)
    with caplog.at_level(logging.INFO, logger="intake.retention"):
        job.start()
        deadline = time.monotonic() + 10
        while world.present(event.evidence[0]) and time.monotonic() < deadline:
            time.sleep(0.01)
        job.stop()
    assert not world.present(event.evidence[0])
    assert "evidence retention: removed 1 files" in caplog.text


def test_the_cli_prints_the_report_and_a_dry_run_keeps_everything(
    world: World, tmp_path: Path, store_targets: StoreTargets, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a config folder whose data_dir is the world's, and its database (BASE_TIME is long past: info
    # evidence is old)
    config = tmp_path / "config"
    config.mkdir()
    database = f"intake: {{database_url: '{store_targets.events}'}}\n" if store_targets.dialect == "postgres" else ""
    (config / "settings.yaml").write_text(f"data_dir: {tmp_path}\n{database}")
    event = world.event(BASE_TIME, Severity.info)
    # when / then
    assert main(["evidence", "prune", "--config", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "(dry run): removed 1 files" in out and "by severity: info 1 files" in out
    assert world.present(event.evidence[0])
    assert main(["evidence", "prune", "--config", str(config), "--json"]) == 0
    report = PruneReport.model_validate_json(capsys.readouterr().out)
    assert [f.key for f in report.files] == [event.evidence[0].key]
    assert not world.present(event.evidence[0])
    assert report.at > datetime.now(UTC) - DAY
