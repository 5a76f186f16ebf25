"""Sensor incidents become `sensor` cases through the real event store, intake sink and case feed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from core.events import EventState
from gridwatch.cli import main
from ingest.sensor_ingest import SensorIngest
from intake.bus import EventBus
from intake.case_feed import CaseFeed
from intake.case_model import Source
from intake.case_store import CaseStore
from intake.evidence import EvidenceStore
from intake.incident_cases import IncidentCases
from intake.sink import IntakeSink
from intake.store import EventStore
from tests.support.sensors import T0, THRESHOLD_RULES, FixedClock, engine_of, readings, water_level


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[EventStore, CaseStore, IntakeSink]]:
    bus = EventBus()
    with EventStore(tmp_path / "events.sqlite3") as events:
        cases = CaseStore(tmp_path / "cases.sqlite3")
        yield events, cases, IntakeSink(events, EvidenceStore(tmp_path / "evidence"), bus)
        cases.close()
    bus.close()


def test_a_sensor_incident_becomes_one_sensor_case(
    stores: tuple[EventStore, CaseStore, IntakeSink], tmp_path: Path
) -> None:
    events, cases, sink = stores
    engine = engine_of(THRESHOLD_RULES.replace("severity: major", "severity: major\n    cooldown_s: 30"), tmp_path)
    ingest = SensorIngest([water_level()], lambda: engine, sink, FixedClock())
    # given: a level over the threshold for a while (one update after the cooldown), then back under it
    for reading in readings([3.0, 3.61, 3.7, 3.8, 3.9, 3.3, 3.1]):
        ingest.process(reading)
    stored = events.list(limit=10)
    assert sorted(e.state for e in stored) == sorted([EventState.open, EventState.update, EventState.close])
    # when: the feed reads the stored events
    feed = CaseFeed(events, IncidentCases(cases), lambda: T0 + timedelta(minutes=5))
    feed.run_once()
    # then: one case, from the sensor, at the sensor's place, with the readings in its words
    made = cases.list()
    assert len(made) == 1
    case = cases.get(made[0].id)
    assert case is not None
    assert case.source == Source.sensor
    assert (case.grid_code, case.lon, case.lat) == ("310101001001", 121.4737, 31.2304)
    assert case.category == "0406"
    assert case.reporter.sensor_id == "wl-07" and case.reporter.camera_id == ""
    assert "3.61 m above 3.5 m" in case.description
    assert case.address == "人民路下穿积水"
    assert case.evidence == []
    assert not case.incident_open
    notes = [a.note for a in case.audit]
    assert any("3.9 m" in n or "3.8 m" in n for n in notes)  # the update's reading, noted
    assert case.audit[0].actor == "sensor:wl-07"


def test_the_demo_rules_with_sensor_rules_pass_rules_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", "configs/demo/rules", "--config", "configs/demo"]) == 0
    assert capsys.readouterr().out.strip().endswith("ok: configs/demo/rules")
