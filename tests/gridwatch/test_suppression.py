"""A confirmed suppression suppresses: YOLOX finds the bus on bus.jpg and a zone rule fires on two cameras; a false
alarm's case on one of them proposes a mask over the bus's box, a rule author confirms it, and at the runtime's next
rules poll (no restart) the same picture no longer fires on that camera, while the other camera still fires."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from ulid import ULID

from core.events import Event, EventState
from core.types import Detections, Observation, ObservedFrame, Overlay
from detectors.detector import Detector
from detectors.manifest import load_manifest
from detectors.session import create_session
from gridwatch.runtime import RulesHolder
from incidents.evidence import make_snapshot
from intake.case_model import ActionRequest
from intake.case_store import CaseStore
from intake.incident_cases import IncidentCases
from intake.suppressions import SuppressionError, SuppressionStore
from tests.detectors.conftest import read_bgr
from tests.support.assets import ROOT

RULES = """\
rules:
  - id: bus-lane
    kind: zone_intrusion
    cameras: [cam-a, cam-b]
    category: "0505"
    zone: {name: lane, polygon: [[0, 0], [1, 0], [1, 1], [0, 1]]}
    classes: [bus]
"""
AT = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@pytest.fixture(scope="module")
def detector(yolox_path: Path) -> Detector:
    return Detector(create_session(yolox_path), load_manifest(ROOT / "models" / "yolox-nano.yaml"))


def look(detector: Detector, holder: RulesHolder, camera: str, image: np.ndarray) -> tuple[list[str], Detections]:
    found = detector.detect(image)
    obs = Observation(camera, "keyframe", (ObservedFrame(AT, 0.0, found, image),))
    fired = [v.rule_id for outcome in holder.engine().observe(obs) for v in outcome.fired]
    return fired, found


def false_alarm_case(cases: CaseStore, detector: Detector, image: np.ndarray, found: Detections) -> str:
    """The case a camera's incident becomes (snapshot boxes from the real detections), marked as a false alarm."""
    subjects = np.flatnonzero(np.array([detector.labels[c] == "bus" for c in found.class_id]))
    snap = make_snapshot(image, found, detector.labels, subjects, Overlay(), "cam-a lane")
    event = Event(
        id=str(ULID()),
        incident_id=str(ULID()),
        rule_id="bus-lane",
        rule_kind="zone_intrusion",
        camera_id="cam-a",
        camera_name="东门 A",
        zone="lane",
        category="0505",
        state=EventState.open,
        first_seen=AT,
        last_seen=AT,
        count=1,
        reason="1 bus in zone lane",
        evidence=snap.evidence,
    )
    case = IncidentCases(cases).apply(event, datetime.now(UTC))
    assert case is not None
    request = ActionRequest(note="a parked bus, not in the lane")
    cases.transition(case.id, "false_alarm", request, actor="王值班", role="operator", at=datetime.now(UTC))
    return case.id


def test_a_confirmed_suppression_stops_the_rule_on_that_camera_only(
    tmp_path: Path, detector: Detector, bus_jpg: Path
) -> None:
    # given: a zone rule over two cameras, and the runtime reading confirmed masks from the case store
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "site.yaml").write_text(RULES, encoding="utf-8")
    cases = CaseStore(tmp_path / "cases.sqlite3")
    store = SuppressionStore(cases)
    holder = RulesHolder(rules_dir, detector.labels, exclusions=store.exclusions)
    image = read_bgr(bus_jpg)
    fired, found = look(detector, holder, "cam-a", image)
    assert fired == ["bus-lane"]
    assert look(detector, holder, "cam-b", image)[0] == ["bus-lane"]
    # when: an operator proposes a suppression from the false alarm (the box in the zone by default)
    case_id = false_alarm_case(cases, detector, image, found)
    proposal = store.propose(case_id, None, "王值班", datetime.now(UTC))
    assert (proposal.rule_id, proposal.camera_id, proposal.state) == ("bus-lane", "cam-a", "proposed")
    assert proposal.box.label == "bus" and proposal.box.in_zone
    assert store.propose(case_id, None, "王值班", datetime.now(UTC)).id == proposal.id  # the same one again
    holder.poll()
    assert look(detector, holder, "cam-a", image)[0] == ["bus-lane"]  # proposed is not confirmed
    # when: a rule author confirms it, and the runtime polls
    confirmed = store.decide(proposal.id, "confirm", "规则员", datetime.now(UTC))
    assert confirmed.state == "confirmed" and confirmed.decided_by == "规则员"
    holder.poll()
    # then: the same picture no longer fires on cam-a; cam-b is unaffected
    assert look(detector, holder, "cam-a", image)[0] == []
    assert look(detector, holder, "cam-b", image)[0] == ["bus-lane"]
    with pytest.raises(SuppressionError, match="already confirmed"):
        store.decide(proposal.id, "reject", "规则员", datetime.now(UTC))
    cases.close()


def test_a_case_not_marked_false_alarm_proposes_nothing(tmp_path: Path, detector: Detector, bus_jpg: Path) -> None:
    cases = CaseStore(tmp_path / "cases.sqlite3")
    image = read_bgr(bus_jpg)
    found = detector.detect(image)
    subjects = np.flatnonzero(found.class_id == detector.labels.index("bus"))
    snap = make_snapshot(image, found, detector.labels, subjects, Overlay(), "cam-a lane")
    event = Event(
        id=str(ULID()), incident_id=str(ULID()), rule_id="bus-lane", rule_kind="zone_intrusion", camera_id="cam-a",
        camera_name="A", zone="lane", category="0505", state=EventState.open, first_seen=AT, last_seen=AT, count=1,
        reason="1 bus", evidence=snap.evidence,
    )  # fmt: skip
    case = IncidentCases(cases).apply(event, datetime.now(UTC))
    assert case is not None
    with pytest.raises(SuppressionError, match="not marked as a false alarm"):
        SuppressionStore(cases).propose(case.id, None, "王值班", datetime.now(UTC))
    cases.close()
