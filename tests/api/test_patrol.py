"""`/api/v1/patrol`: the patrol's coverage, revisit intervals, load and visit cost, from the real scheduler."""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.api.conftest import Parts, bearer, make_auth
from tests.api.patrol_builders import PLAIN, PatrolWorld, patrolled_world


@pytest.fixture
def world() -> Iterator[PatrolWorld]:
    with patrolled_world() as w:
        yield w


def test_the_patrol_figures(parts: Parts, world: PatrolWorld) -> None:
    deps = dataclasses.replace(parts.deps, auth=make_auth(), patrol=world.view)
    with TestClient(create_app(deps)) as client:
        assert client.get("/api/v1/patrol").status_code == 401
        body = client.get("/api/v1/patrol", headers=bearer("viewer")).json()
    visits = world.pipeline.visits
    assert body["mode"] == "deadline" and body["cameras"] == len(PLAIN) + 3 and body["enabled"] == len(PLAIN) + 2
    # every camera visited within its target but the fast one (50 ms target, stopped); a failed visit counts
    assert body["within_target"] == pytest.approx((len(PLAIN) + 1) / (len(PLAIN) + 2))
    assert body["health"] == {"unknown": 0, "online": len(PLAIN) + 1, "degraded": 1, "offline": 0}
    assert body["degraded"] == 1 and body["offline"] == 0
    assert body["visits"] == len(visits) - 1 and body["failures"] == 1  # the dead camera's one failed visit
    assert body["events"] == 1 and body["events_by_state"] == {"open": 1, "update": 0, "close": 0}
    assert body["visits_per_s"] > 0
    assert body["in_flight"] == 0 and body["in_flight_limit"] == 3
    assert body["workers"] == [{"name": f"{socket.gethostname()}:{os.getpid()}", "threads": 3, "in_flight": 0}]
    revisit = body["revisit_s"]
    # only the fast camera came back: its intervals are its revisits
    assert revisit["samples"] == visits.count("fast") - 1 and revisit["p50"] <= revisit["p95"] <= revisit["max"]
    assert body["median_cost_ms"] == {
        "connect": 40.0,
        "first_keyframe": 900.0,
        "decode": 5.0,
        "inference": 20.0,
        "rules": 1.0,
        "evidence": 0.0,
        "total": 966.0,
    }
    assert body["requests_pending"] == 0 and body["requests_served"] == 0
