"""`POST /api/v1/sensors/{id}/readings`: batches into the sensor ingest, all or none, with errors naming the item."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.events import EventState
from ingest.sensor_ingest import SensorIngest
from tests.api.conftest import Parts, bearer, make_auth
from tests.support.sensors import T0, THRESHOLD_RULES, RecordingSink, engine_of, ingest_of

URL = "/api/v1/sensors/wl-07/readings"


@pytest.fixture
def sensors(tmp_path: Path) -> tuple[SensorIngest, RecordingSink]:
    sink = RecordingSink()
    return ingest_of(engine_of(THRESHOLD_RULES, tmp_path / "rules"), sink, max_queue=2_000), sink


@pytest.fixture
def http(parts: Parts, sensors: tuple[SensorIngest, RecordingSink]) -> Iterator[TestClient]:
    deps = dataclasses.replace(parts.deps, auth=make_auth(), readings=sensors[0])
    with TestClient(create_app(deps)) as client:
        yield client


def batch(values: list[float]) -> list[dict[str, object]]:
    return [{"at": T0.replace(second=i).isoformat(), "value": v} for i, v in enumerate(values)]


def test_a_batch_is_taken_and_evaluated(http: TestClient, sensors: tuple[SensorIngest, RecordingSink]) -> None:
    ingest, sink = sensors
    answer = http.post(URL, json=batch([3.0, 3.6, 3.4, 3.1]), headers=bearer("operator"))
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"taken": 4}
    ingest.start()
    try:
        assert ingest.drain()
    finally:
        ingest.stop()
    assert ingest.stats.evaluated == 4
    assert sink.states() == [EventState.open, EventState.close]


def test_a_bad_item_is_named_and_nothing_is_taken(
    http: TestClient, sensors: tuple[SensorIngest, RecordingSink]
) -> None:
    ingest = sensors[0]
    items = batch([1.0, 2.0, 3.0])
    items[1] = {"value": "2.0"}
    answer = http.post(URL, json=items, headers=bearer("operator"))
    assert answer.status_code == 422
    assert [e["loc"] for e in answer.json()["detail"]] == [["body", 1, "value"]]
    answer = http.post(URL, json=batch([1.0, 2.0, 42.0, -1.0]), headers=bearer("operator"))
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert [(e["loc"], e["type"]) for e in detail] == [
        (["body", 2, "value"], "out_of_range"),
        (["body", 3, "value"], "out_of_range"),
    ]
    assert ingest.stats.taken == 0
    assert ingest.refused("wl-07", "out_of_range") == 2


def test_limits_roles_and_unknown_sensors(http: TestClient, sensors: tuple[SensorIngest, RecordingSink]) -> None:
    assert http.post(URL, json=batch([1.0]), headers=bearer("viewer")).status_code == 403
    assert http.post(URL, json=batch([1.0])).status_code == 401
    assert http.post("/api/v1/sensors/nope/readings", json=batch([1.0]), headers=bearer("operator")).status_code == 404
    assert http.post(URL, json=[], headers=bearer("operator")).status_code == 422
    too_many = [{"value": 1.0}] * 1001
    assert http.post(URL, json=too_many, headers=bearer("operator")).status_code == 422
    # a full queue refuses the whole batch, and says when to come back
    assert http.post(URL, json=[{"value": 1.0}] * 1000, headers=bearer("operator")).status_code == 202
    assert http.post(URL, json=[{"value": 1.0}] * 1000, headers=bearer("operator")).status_code == 202
    full = http.post(URL, json=[{"value": 1.0}], headers=bearer("operator"))
    assert full.status_code == 503
    assert full.headers["retry-after"] == "1"
    assert sensors[0].report()["overflow"] == 1
