from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from intake.store import MIGRATIONS
from tests.api.conftest import VERSION, Parts

EXTERNAL = re.compile(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)
WALL_MODULES = ["main.js", "api.js", "i18n.js", "tiles.js", "actions.js", "filters.js", "sound.js", "map.js"]
PAGE_FILES = ["/", "/static/app.js", "/static/style.css", "/static/wall/cases.css"] + [
    f"/static/wall/{name}" for name in WALL_MODULES
]


def test_healthz_reports_version_stream_and_the_callers_details(client: TestClient, parts: Parts) -> None:
    subscription = parts.deps.bus.subscribe()
    response = client.get("/healthz")
    subscription.close()
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "version": VERSION,
        "schema_version": len(MIGRATIONS["sqlite"]),
        "stream_subscribers": 1,
        "stream_dropped": 0,
        "details": {"cameras": {"online": 3, "offline": 1}, "patrol": "running"},
    }


def test_operation_ids_are_stable(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    operations = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert operations == {
        "list_events",
        "get_event",
        "list_incidents",
        "get_incident",
        "report_case",
        "list_cases",
        "get_case",
        "act_on_case",
        "add_case_photos",
        "intake_webhook",
        "case_stats",
        "false_alarm_rates",
        "get_evidence",
        "stream_events",
        "healthz",
        "create_session",
        "get_session",
        "delete_session",
        "list_cameras",
        "get_camera",
        "request_camera_visit",
        "get_patrol",
        "metrics",
        "post_sensor_readings",
        "wall_config",
        "grid_map",
        "propose_suppression",
        "list_suppressions",
        "confirm_suppression",
        "reject_suppression",
    }


def test_the_alert_wall_is_served_with_a_same_origin_policy(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page = response.text
    for asset in ("static/app.js", "static/style.css", "static/wall/main.js", "static/wall/cases.css"):
        assert f'="{asset}"' in page  # relative: the wall also works under a path prefix
    assert "告警" in page


@pytest.mark.parametrize("path", PAGE_FILES)
def test_the_page_loads_nothing_from_outside(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert EXTERNAL.findall(response.text) == []


def test_the_script_never_parses_event_text_as_html(client: TestClient) -> None:
    script = client.get("/static/app.js").text
    for name in WALL_MODULES:
        module = client.get(f"/static/wall/{name}")
        assert module.status_code == 200 and module.headers["content-type"].startswith("text/javascript")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in module.text, (name, sink)
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script
    assert "textContent" in script
    assert "/api/v1/stream" in script or 'API + "/stream"' in script
