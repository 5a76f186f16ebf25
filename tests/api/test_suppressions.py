"""`/api/v1/suppressions`: an operator proposes from a false alarm's box, a rule author lists and decides; every
other role is refused, and a refusal says why."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from ulid import ULID

from core.events import Event, EventState
from core.types import Detections, Overlay
from incidents.evidence import make_snapshot
from intake.case_store import CaseStore
from intake.incident_cases import IncidentCases
from tests.api.conftest import bearer
from tests.support.postgres import StoreTargets

AT = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)


@pytest.fixture
def cases(store_targets: StoreTargets) -> Iterator[CaseStore]:
    """The case store (suppressions are one of its tables) on each backend, SQLite and PostgreSQL."""
    store = CaseStore(store_targets.cases)
    yield store
    store.close()


def camera_case(cases: CaseStore, camera: str = "cam-a") -> str:
    frame = np.full((360, 640, 3), 90, np.uint8)
    dets = Detections(
        xyxy=np.array([[10, 10, 60, 60], [200, 100, 320, 300]], np.float32),
        confidence=np.array([0.5, 0.9], np.float32),
        class_id=np.array([0, 0], np.int64),
    )
    snap = make_snapshot(frame, dets, ["person"], np.array([1]), Overlay(), "lane")
    event = Event(
        id=str(ULID()), incident_id=str(ULID()), rule_id="walkway", rule_kind="zone_intrusion", camera_id=camera,
        camera_name=camera, zone="walkway", category="0505", state=EventState.open, first_seen=AT, last_seen=AT,
        count=1, reason="1 person", evidence=snap.evidence,
    )  # fmt: skip
    case = IncidentCases(cases).apply(event, datetime.now(UTC))
    assert case is not None
    return case.id


def test_an_operator_proposes_and_a_rule_author_confirms(api: TestClient, cases: CaseStore) -> None:
    case_id = camera_case(cases)
    # given: not yet a false alarm, so nothing to propose
    refused = api.post("/api/v1/suppressions", json={"case_id": case_id}, headers=bearer("operator"))
    assert refused.status_code == 409 and "false alarm" in refused.json()["detail"]
    assert api.post(f"/api/v1/cases/{case_id}/actions/false_alarm", json={}, headers=bearer("operator")).is_success
    # when: proposed from the false alarm (the box in the zone by default)
    made = api.post("/api/v1/suppressions", json={"case_id": case_id}, headers=bearer("operator"))
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["rule_id"], body["camera_id"], body["state"]) == ("walkway", "cam-a", "proposed")
    assert body["box"]["in_zone"] and body["box"]["x1"] == 200
    xs, ys = [p[0] for p in body["mask"]], [p[1] for p in body["mask"]]
    assert min(xs) < 200 / 640 < 320 / 640 < max(xs) and min(ys) < 100 / 360 < 300 / 360 < max(ys)
    # then: an operator may neither list nor confirm; a rule author may both
    assert api.get("/api/v1/suppressions", headers=bearer("operator")).status_code == 403
    sid = body["id"]
    assert api.post(f"/api/v1/suppressions/{sid}/confirm", headers=bearer("operator")).status_code == 403
    listed = api.get("/api/v1/suppressions", params={"state": "proposed"}, headers=bearer("rule_author")).json()
    assert [s["id"] for s in listed["items"]] == [sid]
    done = api.post(f"/api/v1/suppressions/{sid}/confirm", headers=bearer("rule_author"))
    assert done.status_code == 200 and done.json()["state"] == "confirmed"
    again = api.post(f"/api/v1/suppressions/{sid}/reject", headers=bearer("rule_author"))
    assert again.status_code == 409 and "already confirmed" in again.json()["detail"]


def test_refusals_name_what_is_wrong(api: TestClient, cases: CaseStore, tmp_path: Path) -> None:
    case_id = camera_case(cases)
    api.post(f"/api/v1/cases/{case_id}/actions/false_alarm", json={}, headers=bearer("operator"))
    assert api.post("/api/v1/suppressions", json={"case_id": case_id}, headers=bearer("viewer")).status_code == 403
    unknown = api.post("/api/v1/suppressions", json={"case_id": str(ULID())}, headers=bearer("operator"))
    assert unknown.status_code == 404
    far = api.post("/api/v1/suppressions", json={"case_id": case_id, "box": 7}, headers=bearer("operator"))
    assert far.status_code == 409 and "has 2 boxes" in far.json()["detail"]
    missing = api.post(f"/api/v1/suppressions/{ULID()}/confirm", headers=bearer("rule_author"))
    assert missing.status_code == 404
