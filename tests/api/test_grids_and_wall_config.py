"""The grid map as GeoJSON for the wall's base map, and what the wall is told about the server."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from intake.bus import CaseBus
from intake.case_store import CaseStore
from intake.grids import GridMap
from tests.api.conftest import Parts, bearer, make_auth

GRIDS = Path(__file__).resolve().parents[2] / "configs" / "demo" / "grids.geojson"


@pytest.fixture
def with_grids(parts: Parts, tmp_path: Path) -> Iterator[TestClient]:
    cases = CaseStore(tmp_path / "grid-cases.sqlite3", grids=GridMap.from_geojson(GRIDS))
    deps = dataclasses.replace(parts.deps, auth=make_auth(), cases=cases, case_bus=CaseBus())
    with TestClient(create_app(deps)) as client:
        yield client
    cases.close()


def test_the_grid_map_is_served_as_geojson_multipolygons(with_grids: TestClient) -> None:
    assert with_grids.get("/api/v1/grids").status_code == 401
    answer = with_grids.get("/api/v1/grids", headers=bearer("viewer"))
    assert answer.status_code == 200
    collection = answer.json()
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 5
    first = collection["features"][0]
    assert first["properties"]["code"] == "310101001001" and first["properties"]["name"] == "教学楼网格"
    assert first["geometry"]["type"] == "MultiPolygon"
    ring = first["geometry"]["coordinates"][0][0]
    assert ring[0] == ring[-1] and ring[0] == [121.4722, 31.2302]
    assert with_grids.get("/api/v1/wall", headers=bearer("viewer")).json() == {
        "cases": True,
        "live_cases": True,
        "patrol": False,
    }


def test_without_cases_the_map_is_empty_and_the_wall_shows_incidents(secured: TestClient) -> None:
    assert secured.get("/api/v1/grids", headers=bearer("viewer")).json() == {
        "type": "FeatureCollection",
        "features": [],
    }
    assert secured.get("/api/v1/wall", headers=bearer("viewer")).json() == {
        "cases": False,
        "live_cases": False,
        "patrol": False,
    }
