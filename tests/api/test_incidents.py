from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from core.events import Event, EventState
from intake.store import IncidentSummary
from tests.api.conftest import Parts
from tests.intake.builders import BASE_TIME, make_event, make_event_with_blobs, ulid_at


def emit_lifecycle(parts: Parts, start: float, camera_id: str, *, closed: bool) -> list[Event]:
    """Through the sink: an incident's open and update, each with its own real snapshot, and a close without one
    if `closed`. Returns its events, oldest first."""
    incident_id = ulid_at(BASE_TIME + timedelta(seconds=start))
    first_seen = BASE_TIME + timedelta(seconds=start - 5)
    events: list[Event] = []
    for step, state in enumerate([EventState.open, EventState.update, EventState.close][: 3 if closed else 2]):
        seconds = start + 60.0 * step
        shot, blobs = make_event_with_blobs(seed=int(start) + step, seconds=seconds, camera_id=camera_id)
        evidence = shot.evidence if state is not EventState.close else []
        event = make_event(
            seconds, incident_id=incident_id, camera_id=camera_id, state=state, evidence=evidence, first_seen=first_seen
        )
        parts.sink.emit(event, blobs if evidence else {})
        events.append(event)
    return events


@pytest.fixture
def stored(parts: Parts) -> dict[str, list[Event]]:
    """Four incidents, started 1000 s apart, oldest first: a1 (cam-a, closed), b1 (cam-b, open), a2 (cam-a, open),
    b2 (cam-b, closed); and one event without an incident, newest of all."""
    made = {
        name: emit_lifecycle(parts, 1000.0 * (i + 1), f"cam-{name[0]}", closed=i % 3 == 0)
        for i, name in enumerate(["a1", "b1", "a2", "b2"])
    }
    plain, blobs = make_event_with_blobs(seed=99, seconds=9000.0)
    parts.sink.emit(plain, blobs)
    made["plain"] = [plain]
    return made


def listed(client: TestClient, **params: str | int) -> tuple[list[IncidentSummary], str | None]:
    response = client.get("/api/v1/incidents", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    return [IncidentSummary.model_validate(item) for item in body["items"]], body["next"]


def test_no_incidents_is_an_empty_last_page(client: TestClient) -> None:
    assert client.get("/api/v1/incidents").json() == {"items": [], "next": None}


def test_an_incident_is_its_latest_event_with_the_latest_evidence_and_the_open_first_seen(
    client: TestClient, stored: dict[str, list[Event]]
) -> None:
    # when
    items, cursor = listed(client, camera="cam-b", state="closed")
    # then
    opened, update, close = stored["b2"]
    assert cursor is None
    assert items == [
        IncidentSummary(
            incident_id=opened.incident_id,
            state=EventState.close,
            first_seen=opened.first_seen,
            last_seen=close.last_seen,
            event_count=3,
            evidence=update.evidence,
            latest=close,
        )
    ]
    # and: the evidence it names is served
    assert client.get(f"/api/v1/evidence/{items[0].evidence[0].key}").status_code == 200


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["b2", "a2", "b1", "a1"]),
        ({"state": "open"}, ["a2", "b1"]),
        ({"state": "closed"}, ["b2", "a1"]),
        ({"camera": "cam-a"}, ["a2", "a1"]),
        ({"camera": "cam-a", "state": "open"}, ["a2"]),
        ({"camera": "cam-z"}, []),
    ],
)
def test_list_filters_newest_activity_first(
    client: TestClient, stored: dict[str, list[Event]], params: dict[str, str], expected: list[str]
) -> None:
    items, _ = listed(client, **params)
    assert [item.incident_id for item in items] == [stored[name][0].incident_id for name in expected]
    assert [item.latest for item in items] == [stored[name][-1] for name in expected]


def test_paging_follows_next_until_null(client: TestClient, stored: dict[str, list[Event]]) -> None:
    first, cursor = listed(client, limit=3)
    assert cursor == first[-1].latest.id
    second, cursor = listed(client, limit=3, before=cursor)
    assert cursor is None
    assert [item.incident_id for item in first + second] == [stored[n][0].incident_id for n in ["b2", "a2", "b1", "a1"]]


def test_get_one_incident(client: TestClient, stored: dict[str, list[Event]]) -> None:
    opened, update = stored["a2"]
    response = client.get(f"/api/v1/incidents/{opened.incident_id}")
    assert response.status_code == 200, response.text
    incident = IncidentSummary.model_validate(response.json())
    assert (incident.state, incident.event_count, incident.latest, incident.evidence) == (
        EventState.update,
        2,
        update,
        update.evidence,
    )


def test_get_unknown_incident_is_404(client: TestClient) -> None:
    response = client.get(f"/api/v1/incidents/{ulid_at(BASE_TIME)}")
    assert response.status_code == 404
    assert "not found" in response.json()["detail"]


@pytest.mark.parametrize(
    "params",
    [
        {"state": "update"},
        {"state": "close"},
        {"limit": 0},
        {"limit": 501},
        {"before": "not-a-ulid"},
        {"camera": "c" * 201},
    ],
)
def test_bad_query_is_422(client: TestClient, params: dict[str, str | int]) -> None:
    assert client.get("/api/v1/incidents", params=params).status_code == 422


@pytest.mark.parametrize("bad_id", ["123", "01hwsjx3c0qvq9b2a71xp216pe", "01HWSJX3C0QVQ9B2A71XP216PU"])
def test_malformed_incident_id_is_422(client: TestClient, bad_id: str) -> None:
    assert client.get(f"/api/v1/incidents/{bad_id}").status_code == 422
