"""`/metrics`: the Prometheus exposition of the patrol's figures, collected at scrape time, behind a viewer token,
with a registry per app."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from api.app import create_app
from tests.api.conftest import Parts, bearer, make_auth
from tests.api.patrol_builders import PASSWORD, PLAIN, USER, PatrolWorld, patrolled_world


@pytest.fixture
def world() -> Iterator[PatrolWorld]:
    with patrolled_world() as w:
        yield w


@pytest.fixture
def api(parts: Parts, world: PatrolWorld) -> Iterator[TestClient]:
    deps = dataclasses.replace(parts.deps, auth=make_auth(), patrol=world.view)
    with TestClient(create_app(deps)) as client:
        yield client


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            assert isinstance(s, Sample)
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


def test_the_patrol_figures_as_metrics(api: TestClient, world: PatrolWorld) -> None:
    response = api.get("/metrics", headers=bearer("viewer"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    got = samples(response.text)
    visits = world.pipeline.visits
    assert got["gridwatch_visits_total", (("result", "ok"),)] == len(visits) - 1
    assert got["gridwatch_visits_total", (("result", "failed"),)] == 1
    assert got["gridwatch_cameras", (("health", "online"),)] == len(PLAIN) + 1
    assert got["gridwatch_cameras", (("health", "degraded"),)] == 1
    assert got["gridwatch_cameras", (("health", "offline"),)] == 0
    assert got["gridwatch_cameras_within_target_ratio", ()] == pytest.approx((len(PLAIN) + 1) / (len(PLAIN) + 2))
    assert got["gridwatch_visits_in_flight", ()] == 0 and got["gridwatch_visits_in_flight_limit", ()] == 3
    assert got["gridwatch_patrol_workers", ()] == 1 and got["gridwatch_scheduler_overload", ()] == 0
    assert got["gridwatch_events_total", (("state", "open"),)] == 1
    assert got["gridwatch_events_total", (("state", "close"),)] == 0
    assert got["gridwatch_revisit_p95_seconds", ()] > 0
    assert got["gridwatch_visits_per_second", ()] > 0
    # each successful visit: 0.04 s connect, 0.9 s to the keyframe, 0.966 s in all
    ok = len(visits) - 1
    total = (("phase", "total"),)
    assert got["gridwatch_visit_seconds_bucket", (("le", "0.5"), ("phase", "total"))] == 0
    assert got["gridwatch_visit_seconds_bucket", (("le", "1.0"), ("phase", "total"))] == ok
    assert got["gridwatch_visit_seconds_bucket", (("le", "+Inf"), ("phase", "total"))] == ok
    assert got["gridwatch_visit_seconds_count", total] == ok
    assert got["gridwatch_visit_seconds_sum", total] == pytest.approx(0.966 * ok)
    assert got["gridwatch_visit_seconds_bucket", (("le", "0.05"), ("phase", "connect"))] == ok
    assert any(name.startswith("process_") for name, _ in got)  # the process collector of this app's registry
    # the parts this test has no intake for are absent, not zero
    assert not any(name.startswith(("gridwatch_outbox", "gridwatch_intake", "gridwatch_case_feed")) for name, _ in got)
    assert PASSWORD not in response.text and USER not in response.text


def test_metrics_need_a_viewer_token(api: TestClient) -> None:
    refused = api.get("/metrics")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert api.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert api.get("/metrics", headers=bearer("viewer")).status_code == 200


def test_openmetrics_when_the_scraper_asks_for_it(api: TestClient) -> None:
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    response = api.get("/metrics", headers={**bearer("viewer"), "Accept": accept})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


def test_each_app_has_a_registry_of_its_own(parts: Parts, world: PatrolWorld) -> None:
    # many apps in one process (as tests and API replicas build them) register nothing globally
    bare = [create_app(parts.deps) for _ in range(3)]
    with TestClient(bare[0]) as client:
        text = client.get("/metrics").text
    assert "gridwatch_visits_total" not in text and "process_cpu_seconds_total" in text
    with TestClient(create_app(dataclasses.replace(parts.deps, patrol=world.view))) as client:
        assert "gridwatch_visits_total" in client.get("/metrics").text
