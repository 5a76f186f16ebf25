"""The closed loop through the API: report, accept, file, dispatch, handle, check, rework, extend, close; role
checks on every route; refused actions list what is allowed; every step audited."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.settings import ApiRole
from intake.case_store import CaseStore
from tests.api.conftest import bearer
from tests.support.postgres import StoreTargets

REPORT = {
    "sender_id": "app-7f3a:0001",
    "source": "grid_worker",
    "category": "0505",
    "description": "白色面包车长期占用人行道 van parked on the pavement",
    "address": "中山东一路 12 号",
    "lon": 121.4737,
    "lat": 31.2304,
    "reporter": {"name": "张网格", "id": "GW-0117"},
}


@pytest.fixture
def cases(store_targets: StoreTargets) -> Iterator[CaseStore]:
    """The case store on each backend: the loop runs on SQLite and on PostgreSQL."""
    store = CaseStore(store_targets.cases)
    yield store
    store.close()


def act(api: TestClient, case_id: str, action: str, role: ApiRole = "operator", **body: Any) -> Any:
    return api.post(f"/api/v1/cases/{case_id}/actions/{action}", json=body or None, headers=bearer(role))


def test_the_whole_loop_with_rework_and_extension(api: TestClient) -> None:
    # given: a grid worker's report
    posted = api.post("/api/v1/cases", json=REPORT, headers=bearer("operator"))
    assert posted.status_code == 201, posted.text
    case = posted.json()["case"]
    assert case["state"] == "reported" and case["number"].endswith("-000001")
    assert posted.json()["allowed"] == ["accept", "reject", "false_alarm", "duplicate", "note"]
    # when: it goes round the loop, with a failed check and an extension on the way
    steps = [
        ("accept", {}),
        ("file", {}),
        ("dispatch", {"department": "城管执法中队 enforcement squad"}),
        ("start", {}),
        ("extend", {"workdays": 2, "note": "车主联系中 owner being traced"}),
        ("handled", {"note": "已拖离 towed"}),
        ("check", {}),
        ("rework", {"note": "车辆又回来了 back again"}),
        ("start", {}),
        ("handled", {}),
        ("check", {}),
        ("close", {"note": "核查通过 checked"}),
    ]
    for action, body in steps:
        answer = act(api, case["id"], action, **body)
        assert answer.status_code == 200, (action, answer.text)
    # then: closed, with every step audited by its operator and the counters the statistics need
    final = api.get(f"/api/v1/cases/{case['id']}", headers=bearer("viewer")).json()["case"]
    assert final["state"] == "closed"
    assert (final["reworks"], final["extensions"], final["department"]) == (1, 1, "城管执法中队 enforcement squad")
    audit = final["audit"]
    assert [a["action"] for a in audit] == ["report"] + [a for a, _ in steps]
    assert all(a["actor"] == "operator-1" for a in audit)
    assert audit[6]["note"] == "已拖离 towed" and audit[8]["from_state"] == "checking"
    assert set(final["nodes"]) >= {"reported", "accepted", "filed", "dispatched", "handling", "handled", "closed"}


def test_an_illegal_action_is_refused_with_the_allowed_ones(api: TestClient) -> None:
    case = api.post("/api/v1/cases", json=REPORT, headers=bearer("operator")).json()["case"]
    refused = act(api, case["id"], "close")
    assert refused.status_code == 409
    assert refused.json() == {
        "detail": f"case {case['number']} is reported: close is not allowed",
        "allowed": ["accept", "reject", "false_alarm", "duplicate", "note"],
    }
    assert act(api, case["id"], "dispatch").status_code == 409  # not filed yet
    act(api, case["id"], "accept")
    act(api, case["id"], "file")
    missing = act(api, case["id"], "dispatch")
    assert missing.status_code == 409 and missing.json()["detail"] == "dispatch needs a department"
    assert act(api, case["id"], "fly").json()["detail"] == "unknown action 'fly'"


@pytest.mark.parametrize(
    ("method", "path", "role", "code"),
    [
        ("get", "/api/v1/cases", None, 401),
        ("get", "/api/v1/cases", "viewer", 200),
        ("post", "/api/v1/cases", None, 401),
        ("post", "/api/v1/cases", "viewer", 403),
        ("post", "/api/v1/cases", "operator", 201),
    ],
)
def test_roles_on_every_route(api: TestClient, method: str, path: str, role: ApiRole | None, code: int) -> None:
    headers = bearer(role) if role else {}
    answer = api.request(method, path, json=REPORT if method == "post" else None, headers=headers)
    assert answer.status_code == code, answer.text


def test_a_viewer_cannot_act_and_suspending_needs_an_admin(api: TestClient) -> None:
    case = api.post("/api/v1/cases", json=REPORT, headers=bearer("operator")).json()["case"]
    assert act(api, case["id"], "accept", role="viewer").status_code == 403
    assert api.get(f"/api/v1/cases/{case['id']}", headers=bearer("viewer")).json()["allowed"] == []
    act(api, case["id"], "accept")
    refused = act(api, case["id"], "suspend")
    assert refused.status_code == 403 and refused.json()["detail"] == "suspend needs the admin role; you have operator"
    assert act(api, case["id"], "suspend", role="admin").status_code == 200
    resumed = act(api, case["id"], "resume", role="admin").json()["case"]
    assert resumed["state"] == "accepted"  # back where it was


def test_fifty_concurrent_posts_of_one_report_make_one_case(api: TestClient) -> None:
    codes: list[int] = []
    ids: list[str] = []

    def post() -> None:
        answer = api.post("/api/v1/cases", json=REPORT, headers=bearer("operator"))
        codes.append(answer.status_code)
        ids.append(answer.json()["case"]["id"])

    threads = [threading.Thread(target=post) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200] * 49 + [201]
    assert len(set(ids)) == 1
    assert len(api.get("/api/v1/cases", headers=bearer("viewer")).json()["items"]) == 1


def test_reports_are_validated_at_the_boundary(api: TestClient) -> None:
    bad = {**REPORT, "category": "05a5", "lat": 95, "colour": "red"}
    answer = api.post("/api/v1/cases", json=bad, headers=bearer("operator"))
    assert answer.status_code == 422
    assert sorted(e["loc"][-1] for e in answer.json()["detail"]) == ["category", "colour", "lat"]
    camera = api.post("/api/v1/cases", json={**REPORT, "source": "camera"}, headers=bearer("operator"))
    assert camera.status_code == 422


def test_a_note_is_audited_without_moving_the_case(api: TestClient) -> None:
    case = api.post("/api/v1/cases", json=REPORT, headers=bearer("operator")).json()["case"]
    assert act(api, case["id"], "note").json()["detail"] == "note needs a note"
    noted = act(api, case["id"], "note", note="车主已电话联系 owner called")
    assert noted.status_code == 200, noted.text
    after = noted.json()["case"]
    assert after["state"] == "reported"
    assert after["audit"][-1] | {"at": None} == {
        "at": None,
        "actor": "operator-1",
        "role": "operator",
        "action": "note",
        "from_state": "reported",
        "to_state": "reported",
        "note": "车主已电话联系 owner called",
    }
