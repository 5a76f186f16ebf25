"""Check by camera (核查) on the shared footage with the real model: a handled kerb-parking case is checked by the
camera's next visit; the van masked out (inpainted) moves it to checking with an "after" photo, the van still
there sends it back to rework; both audited as done by the camera, and an operator can still overrule."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.events import EventState
from gridwatch.simulate import ClipGrabber, MemoDetector, RecordingSink, SimClock
from incidents.tracker import IncidentTracker
from ingest.camera_check import CameraChecks, CheckRequest, CheckResult
from ingest.cameras import Camera
from ingest.visit import VisitPipeline
from intake.camera_check import camera_checked
from intake.case_model import ActionRequest, CaseState
from intake.case_store import CaseStore
from intake.incident_cases import IncidentCases
from rules.categories import default_categories
from rules.engine import RuleEngine
from rules.loader import load_rule_files
from tests.gridwatch.test_alert_quality import PARKING, START, detector, masked_after  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow
LOOP = ("accept", "file", "dispatch", "start", "handled")


def check_once(tmp_path: Path, det: MemoDetector, footage: Path, *, masked: bool) -> CaseStore:
    (tmp_path / "parking.yaml").write_text(PARKING, encoding="utf-8")
    engine = RuleEngine(load_rule_files([tmp_path]), det.labels, categories=default_categories())
    clock = SimClock(START)
    cases = CaseStore(tmp_path / "cases.sqlite3")
    sink = RecordingSink()
    results: list[CheckResult] = []
    checks = CameraChecks(results.append)
    grabber = ClipGrabber(clock, masked_after(330.0) if masked else None)  # the van gone before the check visit
    pipeline = VisitPipeline(grabber, det, lambda: engine, IncidentTracker(), sink, clock, checks=checks)
    camera = Camera(id="kerb-cam", url=footage.as_uri(), revisit_s=60)
    # given: the van confirmed after a few minutes of patrol, its case taken round the loop to handled
    seq = 0
    for t in range(0, 301, 60):
        clock.seconds, seq = float(t), seq + 1
        pipeline.visit(camera, seq)
    [opened] = [e for e in sink.events if e.state == EventState.open]
    case = IncidentCases(cases).apply(opened, clock.now())
    assert case is not None
    for action in LOOP:
        body = ActionRequest(department="城管中队") if action == "dispatch" else ActionRequest()
        cases.transition(case.id, action, body, actor="op", role="operator", at=datetime.now(UTC))
    # when: the camera is asked to check it, and its next visit (van masked out or not) answers
    checks.add(CheckRequest(case.id, camera.id, opened.rule_id, opened.zone, clock.now()))
    clock.seconds, seq = 360.0, seq + 1
    pipeline.visit(camera, seq)
    [result] = results
    camera_checked(cases, case.id, camera.id, result.still_there, result.snapshot.evidence, result.at)
    grabber.close()
    return cases


def test_the_problem_gone_moves_the_case_to_checking_with_an_after_photo(
    tmp_path: Path,
    detector: MemoDetector,  # noqa: F811
    footage_path: Path,
) -> None:
    cases = check_once(tmp_path, detector, footage_path, masked=True)
    [case] = [c for c in (cases.get(x.id) for x in cases.list()) if c is not None]
    assert case.state == CaseState.checking
    after = [e for e in case.evidence if e.stage == "after"]
    assert {e.kind for e in after} == {"frame", "annotated"}
    assert [a.actor for a in case.audit[-2:]] == ["camera:kerb-cam", "camera:kerb-cam"]
    assert case.audit[-1].action == "check" and "gone" in case.audit[-1].note
    # an operator overrules: back to rework by hand
    cases.transition(case.id, "rework", ActionRequest(), actor="op", role="operator", at=datetime.now(UTC))
    assert (cases.get(case.id) or case).state == CaseState.rework
    cases.close()


def test_the_problem_still_there_sends_the_case_back_to_rework(
    tmp_path: Path,
    detector: MemoDetector,  # noqa: F811
    footage_path: Path,
) -> None:
    cases = check_once(tmp_path, detector, footage_path, masked=False)
    [case] = [c for c in (cases.get(x.id) for x in cases.list()) if c is not None]
    assert case.state == CaseState.rework and case.reworks == 1
    assert not [e for e in case.evidence if e.stage == "after"]
    assert [(a.actor, a.action) for a in case.audit[-2:]] == [
        ("camera:kerb-cam", "check"),
        ("camera:kerb-cam", "rework"),
    ]
    # the operators' loop goes on: the worker starts again
    cases.transition(case.id, "start", ActionRequest(), actor="op", role="operator", at=datetime.now(UTC))
    assert (cases.get(case.id) or case).state == CaseState.handling
    cases.close()
