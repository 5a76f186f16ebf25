"""`/api/v1/cameras`: every camera of the registry with its patrol standing, paged, filtered, never with its
credentials; an operator's out-of-turn visit reaches the scheduler."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.api.conftest import Parts, bearer, make_auth
from tests.api.patrol_builders import (
    DEAD,
    FAST,
    OFF,
    PASSWORD,
    PLAIN,
    USER,
    PatrolWorld,
    idle_world,
    patrolled_world,
)

ALL = sorted([*PLAIN, DEAD, OFF, FAST])


@pytest.fixture
def world() -> Iterator[PatrolWorld]:
    with patrolled_world() as w:
        yield w


@pytest.fixture
def api(parts: Parts, world: PatrolWorld) -> Iterator[TestClient]:
    deps = dataclasses.replace(parts.deps, auth=make_auth(), patrol=world.view)
    with TestClient(create_app(deps), headers=bearer("viewer")) as client:
        yield client


def ids(client: TestClient, **params: str | int | bool) -> list[str]:
    response = client.get("/api/v1/cameras", params=params)
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["items"]]


def test_paging_visits_every_camera_once_in_id_order(api: TestClient) -> None:
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 4}
    while True:
        page = api.get("/api/v1/cameras", params=params).json()
        assert len(page["items"]) <= 4
        seen += [c["id"] for c in page["items"]]
        if page["next"] is None:
            break
        params["after"] = page["next"]
    assert seen == ALL


def test_a_row_holds_the_patrol_standing_and_the_address_without_credentials(api: TestClient) -> None:
    row = api.get("/api/v1/cameras/cam-001").json()
    assert row["url"] == "rtsp://***@10.1.2.3:554/Streaming/cam-001?token=***"
    assert row["name"] == "东门 Gate 1" and row["grid_code"] == "310102002001" and row["priority"] == 1
    assert row["mode"] == "keyframe" and row["revisit_s"] == 3600 and row["enabled"] is True
    assert row["health"] == "online" and row["visits"] == 1 and row["failures"] == 0 and row["last_error"] == ""
    assert row["last_visit_at"] is not None and row["next_due_at"] > row["last_visit_at"]
    assert row["last_visit_at"].endswith("Z") or row["last_visit_at"].endswith("+00:00")
    assert row["overdue"] is False and row["visiting"] is False and row["requested"] is False
    lat = row["latency_ms"]
    assert lat["connect_p50"] == lat["connect_p95"] == 40.0
    assert lat["first_keyframe_p50"] == 900.0 and lat["total_p50"] == lat["total_p95"] == 966.0
    assert row["attributes"]["burst_frames"] == 8  # the other settings of cameras.yaml, as they are


def test_no_answer_carries_a_camera_password(api: TestClient) -> None:
    texts = [api.get("/api/v1/cameras", params={"limit": 500}).text, api.get("/api/v1/patrol").text]
    texts += [api.get(f"/api/v1/cameras/{cid}").text for cid in ALL]
    texts += [api.get("/metrics").text]
    dead = api.get(f"/api/v1/cameras/{DEAD}").json()
    assert "connection refused" in dead["last_error"]  # the raw address was in the error: redacted here
    for text in texts:
        assert PASSWORD not in text and USER not in text


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"health": "degraded"}, [DEAD]),
        ({"health": "unknown"}, [OFF]),
        ({"health": "offline"}, []),
        ({"grid": "310102"}, [c for i, c in enumerate(PLAIN) if i % 2]),
        ({"grid": "3101010"}, [c for i, c in enumerate(PLAIN) if not i % 2]),
        ({"overdue": True}, [FAST]),
        ({"q": "GATE 1"}, ["cam-001", "cam-010", "cam-011"]),  # the name, case-insensitive
        ({"q": "dea"}, [DEAD]),  # the id
        ({"tag": "school"}, []),  # no camera of this registry has tags
        ({"health": "online", "grid": "310102", "limit": 2}, ["cam-001", "cam-003"]),
    ],
)
def test_filters(api: TestClient, params: dict[str, str | int | bool], expected: list[str]) -> None:
    assert ids(api, **params) == expected


def test_a_disabled_camera_is_listed_but_not_patrolled(api: TestClient) -> None:
    row = api.get(f"/api/v1/cameras/{OFF}").json()
    assert row["enabled"] is False and row["health"] == "unknown" and row["visits"] == 0
    assert row["next_due_at"] is None and row["overdue"] is False


def test_an_unknown_camera_is_404_and_a_malformed_id_422(api: TestClient) -> None:
    assert api.get("/api/v1/cameras/nope").status_code == 404
    assert api.get("/api/v1/cameras/bad%20id").status_code == 422
    assert api.get("/api/v1/cameras", params={"limit": 501}).status_code == 422


def test_an_operator_visit_request_is_the_next_camera_the_scheduler_hands_out(parts: Parts) -> None:
    world = idle_world()
    deps = dataclasses.replace(parts.deps, auth=make_auth(), patrol=world.view)
    with TestClient(create_app(deps)) as client:
        # given: a camera planned last in the round
        assert client.post("/api/v1/cameras/cam-011/visit", headers=bearer("viewer")).status_code == 403
        # when: an operator asks for it
        answer = client.post("/api/v1/cameras/cam-011/visit", headers=bearer("operator"))
        # then: it goes first
        assert answer.status_code == 202
        assert answer.json() == {
            "camera_id": "cam-011",
            "queued": True,
            "requests_pending": 1,
            "detail": "queued ahead of the round",
        }
        first = world.scheduler.acquire(timeout=0)
        assert first is not None and first.id == "cam-011"
        assert client.post("/api/v1/cameras/nope/visit", headers=bearer("operator")).status_code == 404
        off = client.post(f"/api/v1/cameras/{OFF}/visit", headers=bearer("operator")).json()
        assert off["queued"] is False and "disabled" in off["detail"]
        assert client.post("/api/v1/cameras/cam-001/visit").status_code == 401
    world.scheduler.close()


def test_without_a_patrol_the_routes_say_so(parts: Parts) -> None:
    with TestClient(create_app(parts.deps)) as client:
        for path in ("/api/v1/cameras", "/api/v1/cameras/cam-001", "/api/v1/patrol"):
            response = client.get(path)
            assert response.status_code == 503 and response.json() == {"detail": "this server runs no patrol"}
