"""One visit with real parts (file camera, YOLOX, the demo fence) when the intake fails or works."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from core.clock import SystemClock
from core.events import Event, EventState
from detectors.detector import Detector
from detectors.manifest import load_manifest
from detectors.session import create_session
from incidents.tracker import IncidentTracker
from ingest.cameras import Camera
from ingest.grabber import Grabber
from ingest.visit import VisitPipeline
from rules.engine import RuleEngine
from rules.loader import load_rule_files
from tests.support.assets import ROOT


class FlakySink:
    """An intake that fails while `down` is set, and records what it accepted."""

    def __init__(self) -> None:
        self.down = True
        self.accepted: list[Event] = []

    def emit(self, event: Event, blobs: Mapping[str, bytes]) -> None:
        if self.down:
            raise OSError(28, "No space left on device")
        assert {e.key for e in event.evidence} == set(blobs)
        self.accepted.append(event)


@pytest.fixture(scope="module")
def detector(yolox_path: Path) -> Detector:
    return Detector(create_session(yolox_path), load_manifest(ROOT / "models" / "yolox-nano.yaml"))


def test_an_intake_failure_is_not_the_cameras_and_the_event_comes_on_the_next_visit(
    detector: Detector, footage_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = RuleEngine(load_rule_files([ROOT / "configs" / "demo" / "rules"]), detector.labels)
    sink = FlakySink()
    grabber = Grabber()
    pipeline = VisitPipeline(grabber, detector, lambda: engine, IncidentTracker(), sink, SystemClock())
    camera = Camera(id="cam-1", url=footage_path.as_uri())
    try:
        # when: the rule fires while the intake is down
        first = pipeline.visit(camera, 1)
        # then: the visit itself succeeds (the camera is healthy), nothing is delivered, and it is logged
        assert first.fired == 1 and first.events == []
        assert "not delivered" in caplog.text and "No space left on device" in caplog.text

        # when: the intake is back, the next visit delivers the incident's open (it was never announced)
        sink.down = False
        second = pipeline.visit(camera, 2)
    finally:
        grabber.close()
    assert [e.id for e in second.events] == [e.id for e in sink.accepted]
    assert len(sink.accepted) == 1 and sink.accepted[0].rule_id == "walkway-intrusion"
    assert sink.accepted[0].state == EventState.open and sink.accepted[0].incident_id
