"""The API fuzzed from its own OpenAPI document with `schemathesis`: every operation, with valid and invalid
requests generated from the schema, against the real app over real stores with events and cases in them.

With an admin token nothing answers 5xx, and every answer is one the operation declares, in its declared content
type and schema. Without credentials every operation that is not public answers 401 and nothing else.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from core.events import EventState
from intake.case_model import CaseCreate, Reporter, Source
from intake.case_store import CaseStore
from intake.workflow import ACTIONS
from tests.api.conftest import Parts, bearer, make_auth
from tests.intake.builders import BASE_TIME, make_event, make_event_with_blobs, ulid_at
from tests.intake.case_builders import close_at

SECRET = "whsec_" + base64.b64encode(b"fuzzing-secret-of-32-bytes-long!").decode()
OPENAPI = "/api/v1/openapi.json"
AT = datetime(2026, 5, 6, 8, 0, tzinfo=UTC)
MAX_EXAMPLES = 30
STREAM = "/api/v1/stream"
# open to everyone: liveness (facts only for good credentials), signing in and out, and the signed intake
PUBLIC = frozenset(
    {
        ("GET", "/healthz"),
        ("POST", "/api/v1/session"),
        ("DELETE", "/api/v1/session"),
        ("POST", "/api/v1/intake/webhook"),
    }
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same requests on every run, so CI is stable
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


@dataclass(frozen=True)
class World:
    """The app over stores with a few events and cases in them, its schema, and ids that exist."""

    app: FastAPI
    schema: schemathesis.BaseSchema
    known: Mapping[str, tuple[str, ...]]  # path parameter -> values that name something stored

    def operations(self) -> Iterator[tuple[str, str]]:
        for path, items in self.schema.raw_schema["paths"].items():
            for method in items:
                yield method.upper(), path


@pytest.fixture
def world(parts: Parts, tmp_path: Path) -> Iterator[World]:
    cases = CaseStore(tmp_path / "cases.sqlite3")
    incident = ulid_at(BASE_TIME)
    events = []
    for step, state in enumerate((EventState.open, EventState.update, EventState.close)):
        shot, blobs = make_event_with_blobs(seed=step, seconds=60.0 * step)
        event = make_event(60.0 * step, incident_id=incident, state=state, evidence=shot.evidence)
        parts.sink.emit(event, blobs)
        events.append(event)
    plain, blobs = make_event_with_blobs(seed=9, seconds=600.0)
    parts.sink.emit(plain, blobs)
    events.append(plain)
    made = []
    for i, source in enumerate((Source.grid_worker, Source.hotline, Source.camera)):
        report = CaseCreate(
            sender_id=f"fuzz:{i}",
            source=source,
            category="0505",
            reporter=Reporter(camera_id="cam-1", rule_id="fence-north"),
        )
        made.append(cases.create(report, actor="operator-1", role="operator", at=AT)[0])
    closed = close_at(cases, made[0], AT.replace(day=8))  # a closed case takes no more photos or actions
    known = {
        "case_id": tuple(c.id for c in made),
        "event_id": tuple(e.id for e in events),
        "incident_id": (incident,),
        "key": tuple(ev.key for e in events for ev in e.evidence),
    }
    assert closed.state.value == "closed"
    deps = dataclasses.replace(parts.deps, auth=make_auth(), cases=cases, inbound_secret=SECRET)
    app = create_app(deps)
    yield World(app, schemathesis.openapi.from_asgi(OPENAPI, app), known)
    cases.close()


def cases_for(world: World, method: str, path: str) -> st.SearchStrategy[Case]:
    """Valid and invalid requests for one operation; half of them name things that exist (a stored case, an
    action the loop knows, an event to replay the stream after)."""
    operation = world.schema[path][method]
    parameters = {p["name"] for p in world.schema.raw_schema["paths"][path][method.lower()].get("parameters", [])}
    real: list[dict[str, str]] = [{}]
    for name in sorted(parameters & set(world.known)):
        real = [{**r, name: value} for r in real for value in world.known[name]]
    if "action" in parameters:
        real = [{**r, "action": action} for r in real for action in ACTIONS]
    generated = [operation.as_strategy(mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    if real != [{}]:
        generated.append(st.sampled_from(real).flatmap(lambda fixed: operation.as_strategy(path_parameters=fixed)))
    if path == STREAM:
        last = world.known["event_id"][0]
        generated.append(operation.as_strategy(headers={"last-event-id": last}))
    return st.one_of(generated)


def fuzz_one(world: World, method: str, path: str, test: Callable[[str, str, Case], None]) -> None:
    @FUZZ
    @given(case=cases_for(world, method, path))
    def run(case: Case) -> None:
        test(method, path, case)

    run()


def fuzz(world: World, subtests: pytest.Subtests, test: Callable[[str, str, Case], None]) -> int:
    """`test` on every operation, each a subtest; the number of operations."""
    count = 0
    for method, path in world.operations():
        count += 1
        with subtests.test(operation=f"{method} {path}"):
            fuzz_one(world, method, path, test)
    return count


def timeout(path: str) -> float:
    # the live stream never ends by itself: what it sent in the first moment is checked
    return 0.3 if path == STREAM else 30.0


def without_credentials(case: Case) -> None:
    for name in [n for n in case.headers or {} if n.lower() in ("authorization", "cookie")]:
        del case.headers[name]
    if case.cookies:
        case.cookies.clear()


def test_fuzzed_as_admin_no_server_errors_and_answers_as_declared(world: World, subtests: pytest.Subtests) -> None:
    def test(method: str, path: str, case: Case) -> None:
        case.call_and_validate(headers=bearer("admin"), checks=CHECKS, timeout=timeout(path))

    assert fuzz(world, subtests, test) == 18


def test_fuzzed_without_credentials_everything_but_the_public_routes_is_401(
    world: World, subtests: pytest.Subtests
) -> None:
    def test(method: str, path: str, case: Case) -> None:
        without_credentials(case)
        response = case.call(timeout=timeout(path))
        case.validate_response(response, checks=[not_a_server_error])
        if (method, path) not in PUBLIC:
            assert response.status_code == 401, (method, path, response.status_code, response.text)
            assert response.json() == {"detail": "authentication required: Authorization: Bearer <token>"}
            assert response.headers["www-authenticate"] == "Bearer"
        print(method, path, response.status_code)

    assert fuzz(world, subtests, test) == 18
