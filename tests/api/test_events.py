from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from core.events import Event, EventState
from tests.api.conftest import Parts
from tests.intake.builders import BASE_TIME, make_event, make_event_with_blobs, ulid_at


@pytest.fixture
def stored(parts: Parts) -> list[Event]:
    """Five events a minute apart, oldest first; cam-a for even minutes, cam-b for odd ones."""
    events = []
    for i in range(5):
        event, blobs = make_event_with_blobs(seed=i, seconds=i * 60.0, camera_id="cam-a" if i % 2 == 0 else "cam-b")
        parts.sink.emit(event, blobs)
        events.append(event)
    return events


def page_ids(client: TestClient, **params: str | int) -> tuple[list[str], str | None]:
    response = client.get("/api/v1/events", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    return [item["id"] for item in body["items"]], body["next"]


def test_empty_store_gives_an_empty_last_page(client: TestClient) -> None:
    assert client.get("/api/v1/events").json() == {"items": [], "next": None}


def test_list_gives_full_events_newest_first(client: TestClient, stored: list[Event]) -> None:
    body = client.get("/api/v1/events").json()
    assert [Event.model_validate(item) for item in body["items"]] == stored[::-1]
    assert body["next"] is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"camera": "cam-a"}, [4, 2, 0]),
        ({"camera": "cam-b", "rule": "fence-north"}, [3, 1]),
        ({"rule": "other"}, []),
        ({"since": (BASE_TIME + timedelta(minutes=3)).isoformat()}, [4, 3]),
        ({"since": "2024-05-01T10:03:00+02:00"}, [4, 3]),
        ({"camera": "cam-a", "since": "2024-05-01T08:01:00Z"}, [4, 2]),
    ],
)
def test_list_filters(client: TestClient, stored: list[Event], params: dict[str, str], expected: list[int]) -> None:
    assert page_ids(client, **params) == ([stored[i].id for i in expected], None)


def test_paging_follows_next_until_null(client: TestClient, stored: list[Event]) -> None:
    # when
    first, cursor = page_ids(client, limit=2)
    assert cursor is not None
    second, cursor = page_ids(client, limit=2, before=cursor)
    assert cursor is not None
    third, cursor = page_ids(client, limit=2, before=cursor)
    # then
    assert cursor is None
    assert first + second + third == [e.id for e in reversed(stored)]


def test_a_page_that_ends_exactly_at_the_last_event_has_no_next(client: TestClient, stored: list[Event]) -> None:
    assert page_ids(client, limit=5) == ([e.id for e in reversed(stored)], None)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 501},
        {"limit": "many"},
        {"before": "not-a-ulid"},
        {"before": "01hwsjx3c0qvq9b2a71xp216pe"},  # lower case
        {"since": "yesterday"},
    ],
)
def test_bad_query_is_422(client: TestClient, params: dict[str, str | int]) -> None:
    assert client.get("/api/v1/events", params=params).status_code == 422


def test_get_one_event(client: TestClient, stored: list[Event]) -> None:
    response = client.get(f"/api/v1/events/{stored[2].id}")
    assert response.status_code == 200
    assert Event.model_validate(response.json()) == stored[2]


def test_get_unknown_event_is_404(client: TestClient) -> None:
    response = client.get(f"/api/v1/events/{make_event().id}")
    assert response.status_code == 404
    assert "not found" in response.json()["detail"]


@pytest.mark.parametrize(
    "bad_id",
    ["123", "01HWSJX3C0QVQ9B2A71XP216PEX", "01HWSJX3C0QVQ9B2A71XP216PU", "01hwsjx3c0qvq9b2a71xp216pe"],
)
def test_malformed_event_id_is_422(client: TestClient, bad_id: str) -> None:
    assert client.get(f"/api/v1/events/{bad_id}").status_code == 422


@pytest.fixture
def incident(parts: Parts, stored: list[Event]) -> list[Event]:
    """An open, an update and a close sharing one incident id, after the five incident-less `stored` events."""
    incident_id = ulid_at(BASE_TIME + timedelta(minutes=10))
    events = [
        make_event(600.0 + 60.0 * i, incident_id=incident_id, state=state)
        for i, state in enumerate([EventState.open, EventState.update, EventState.close])
    ]
    for event in events:
        parts.sink.emit(event, {})
    return events


def test_list_filters_by_incident(client: TestClient, stored: list[Event], incident: list[Event]) -> None:
    incident_id = incident[0].incident_id
    assert page_ids(client, incident_id=incident_id) == ([e.id for e in reversed(incident)], None)
    assert page_ids(client, incident_id=incident_id, limit=2)[1] == incident[1].id
    assert page_ids(client, incident_id=incident_id, camera="cam-a") == ([], None)
    assert page_ids(client, incident_id=ulid_at(BASE_TIME)) == ([], None)
    # empty: the events without an incident
    assert page_ids(client, incident_id="") == ([e.id for e in reversed(stored)], None)
    body = client.get("/api/v1/events", params={"incident_id": incident_id}).json()
    assert [Event.model_validate(item) for item in body["items"]] == incident[::-1]


@pytest.mark.parametrize("bad_id", ["not-a-ulid", "01hwsjx3c0qvq9b2a71xp216pe", "01HWSJX3C0QVQ9B2A71XP216PU"])
def test_malformed_incident_filter_is_422(client: TestClient, bad_id: str) -> None:
    assert client.get("/api/v1/events", params={"incident_id": bad_id}).status_code == 422
