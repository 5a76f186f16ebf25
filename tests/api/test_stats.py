"""`GET /api/v1/stats` and `GET /api/v1/rules/false-alarms` over cases made and moved through the API: the figures,
who may read which, the default range and the validation of the range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.settings import ApiRole
from intake.case_model import Source
from intake.case_store import CaseStore
from tests.api.conftest import bearer
from tests.intake.case_builders import report

LOOP: list[tuple[str, dict[str, Any]]] = [
    ("accept", {}),
    ("file", {}),
    ("dispatch", {"department": "城管执法中队"}),
    ("start", {}),
]
LOOP += [("extend", {"workdays": 2}), ("handled", {}), ("check", {}), ("rework", {}), ("start", {})]
LOOP += [("handled", {}), ("check", {}), ("close", {})]


def post_report(api: TestClient, sender: str, source: str = "grid_worker") -> Any:
    body = {"sender_id": sender, "source": source, "category": "0505", "description": "占道经营 street stall"}
    answer = api.post("/api/v1/cases", json=body, headers=bearer("operator"))
    assert answer.status_code == 201, answer.text
    return answer.json()["case"]


def act(api: TestClient, case_id: str, action: str, **body: Any) -> None:
    answer = api.post(f"/api/v1/cases/{case_id}/actions/{action}", json=body or None, headers=bearer("operator"))
    assert answer.status_code == 200, (action, answer.text)


def get(api: TestClient, path: str, params: dict[str, str] | None = None, role: ApiRole | None = "viewer") -> Any:
    return api.get(path, params=params, headers=bearer(role) if role else {})


def test_a_viewer_reads_the_figures_of_the_last_30_days(api: TestClient) -> None:
    closed = post_report(api, "app:0001")
    for action, body in LOOP:
        act(api, closed["id"], action, **body)
    post_report(api, "app:0002")
    rejected = post_report(api, "hotline:0003", source="hotline")
    act(api, rejected["id"], "reject")
    answer = get(api, "/api/v1/stats", {"by": "source"})
    assert answer.status_code == 200, answer.text
    stats = answer.json()
    assert stats["by"] == "source"
    since, until = (datetime.fromisoformat(stats[k]) for k in ("since", "until"))
    assert until - since == timedelta(days=30)
    assert abs(until - datetime.now(UTC)) < timedelta(minutes=1)
    worker, hotline = stats["rows"]
    assert worker == {
        "key": "grid_worker",
        "parent": None,
        "total": 2,
        "closed": 1,
        "closed_on_time": 0,
        "closed_late": 0,
        "closed_no_deadline": 1,  # no deadline rules configured on this server
        "reworked": 1,
        "extended": 1,
        "rejected": 0,
        "closure_rate": 0.5,
        "on_time_rate": None,
        "rework_rate": 0.5,
        "extension_rate": 0.5,
    }
    assert (hotline["key"], hotline["total"], hotline["rejected"], hotline["closure_rate"]) == ("hotline", 1, 1, 0.0)
    assert stats["overall"]["total"] == 3


def test_dates_are_read_as_the_citys_midnights(api: TestClient) -> None:
    stats = get(
        api, "/api/v1/stats", {"since": "2026-05-01", "until": "2026-06-01", "by": "category", "level": "minor"}
    ).json()
    assert (stats["since"], stats["until"]) == ("2026-05-01T00:00:00+08:00", "2026-06-01T00:00:00+08:00")
    assert (stats["level"], stats["rows"], stats["overall"]["closure_rate"]) == ("minor", [], None)
    zoned = get(api, "/api/v1/stats", {"since": "2026-05-01T00:00:00Z", "until": "2026-05-02T12:30+08:00"}).json()
    assert (zoned["since"], zoned["until"], zoned["by"]) == (
        "2026-05-01T00:00:00Z",
        "2026-05-02T12:30:00+08:00",
        "district",
    )


def test_rule_authors_see_each_rules_false_alarm_rate(api: TestClient, cases: CaseStore) -> None:
    now = datetime.now(UTC)
    for n, camera in enumerate(("cam-7", "cam-7", "cam-8")):
        case = report(cases, f"incident:{n}", now, source=Source.camera, category="0505", camera=camera, rule="stall")
        if n == 0:
            act(api, case.id, "false_alarm", note="遮阳伞 a parasol, not a stall")
    answer = get(api, "/api/v1/rules/false-alarms", role="rule_author")
    assert answer.status_code == 200, answer.text
    rates = answer.json()
    assert [(r["camera_id"], r["cases"], r["false_alarms"], r["rate"]) for r in rates["rows"]] == [
        ("cam-7", 2, 1, 0.5),
        ("cam-8", 1, 0, 0.0),
    ]
    assert rates["rules"] == [{"rule_id": "stall", "camera_id": "", "cases": 3, "false_alarms": 1, "rate": 1 / 3}]


@pytest.mark.parametrize(
    ("path", "role", "code"),
    [
        ("/api/v1/stats", None, 401),
        ("/api/v1/stats", "viewer", 200),
        ("/api/v1/stats", "admin", 200),
        ("/api/v1/rules/false-alarms", None, 401),
        ("/api/v1/rules/false-alarms", "viewer", 403),
        ("/api/v1/rules/false-alarms", "operator", 403),
        ("/api/v1/rules/false-alarms", "rule_author", 200),
        ("/api/v1/rules/false-alarms", "admin", 200),
    ],
)
def test_roles(api: TestClient, path: str, role: ApiRole | None, code: int) -> None:
    answer = get(api, path, role=role)
    assert answer.status_code == code, answer.text


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"since": "2026-06-01", "until": "2026-05-01"}, "until must be after since"),
        ({"since": "2026-05-01", "until": "2026-05-01"}, "until must be after since"),
        ({"since": "2025-01-01", "until": "2026-05-01"}, "the range may span at most 366 days"),
        ({"since": "2025-01-01"}, "the range may span at most 366 days"),  # until: now
        ({"since": "2026-05-01T00:00:00"}, "bad date: '2026-05-01T00:00:00' has no zone: add Z or +08:00"),
        ({"since": "2026-02-30"}, "bad date: day is out of range for month"),
    ],
)
def test_a_bad_range_is_refused_saying_why(api: TestClient, params: dict[str, str], detail: str) -> None:
    routes: tuple[tuple[str, ApiRole], ...] = (
        ("/api/v1/stats", "viewer"),
        ("/api/v1/rules/false-alarms", "rule_author"),
    )
    for path, role in routes:
        answer = get(api, path, params, role=role)
        assert answer.status_code == 422, answer.text
        assert answer.json() == {"detail": detail}


@pytest.mark.parametrize(
    "params",
    [{"since": "May 1st"}, {"until": "2026-05-01T08:00:00+0800"}, {"by": "grid"}, {"level": "third"}],
)
def test_malformed_parameters_are_refused(api: TestClient, params: dict[str, str]) -> None:
    answer = get(api, "/api/v1/stats", params)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["query", next(iter(params))]
