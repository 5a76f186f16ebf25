"""The API fuzzed from its own OpenAPI document with `schemathesis`: every operation, with valid and invalid
requests generated from the schema, against the real app over real stores with events and cases in them.

With an admin token nothing answers 5xx, and every answer is one the operation declares, in its declared content
type and schema. Without credentials every operation that is not public answers 401 and nothing else.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from standardwebhooks import Webhook

from api.app import create_app
from core.events import EventState
from intake.case_model import CaseCreate, Reporter, Source
from intake.case_store import CaseStore
from intake.workflow import ACTIONS
from tests.api.conftest import Parts, bearer, make_auth
from tests.api.patrol_builders import fleet, idle_world
from tests.intake.builders import BASE_TIME, make_event, make_event_with_blobs, make_image_bytes, ulid_at
from tests.intake.case_builders import TO_CHECKING, TO_HANDLING, act, close_at

pytestmark = pytest.mark.slow  # about 10 s each

ApiCase = Case[Any]  # one generated request
SECRET = "whsec_" + base64.b64encode(b"fuzzing-secret-of-32-bytes-long!").decode()
OPENAPI = "/api/v1/openapi.json"
AT = datetime(2026, 5, 6, 8, 0, tzinfo=UTC)
MAX_EXAMPLES = 50
DELIVERIES = itertools.count()
STREAM = "/api/v1/stream"
PHOTOS = "/api/v1/cases/{case_id}/photos"
WEBHOOK = "/api/v1/intake/webhook"
# the routes open to everyone, and what they answer a caller without credentials: liveness without the facts,
# signing out; the signed intake and signing in refuse one without a signature or a bearer token
PUBLIC = {
    ("GET", "/healthz"): 200,
    ("DELETE", "/api/v1/session"): 204,
    ("POST", "/api/v1/session"): 401,
    ("POST", WEBHOOK): 401,
}
# the protected operations whose body FastAPI reads as JSON before it runs their dependencies
JSON_BODIES = frozenset(
    {
        ("POST", "/api/v1/cases"),
        ("POST", "/api/v1/cases/{case_id}/actions/{action}"),
        ("POST", "/api/v1/sensors/{sensor_id}/readings"),
        ("POST", "/api/v1/session"),
        ("POST", "/api/v1/suppressions"),
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
    # cases all round the loop: reported, accepted, being handled, being checked, and closed
    made = []
    for i, (source, actions) in enumerate(
        [
            (Source.grid_worker, ()),
            (Source.camera, ()),
            (Source.hotline, ("accept",)),
            (Source.citizen, TO_HANDLING),
            (Source.grid_worker, (*TO_HANDLING, *TO_CHECKING)),
            (Source.citizen, ()),
        ]
    ):
        reporter = Reporter(camera_id="cam-1", rule_id="fence-north")
        case = cases.create(
            CaseCreate(sender_id=f"fuzz:{i}", source=source, category="0505", reporter=reporter),
            actor="operator-1",
            role="operator",
            at=AT,
        )[0]
        made.append(act(cases, case, actions, AT))
    made[-1] = close_at(cases, made[-1], AT.replace(day=8))  # closed: it takes no more photos or actions
    known = {
        "case_id": tuple(c.id for c in made),
        "event_id": tuple(e.id for e in events),
        "incident_id": (incident,),
        "key": tuple(ev.key for e in events for ev in e.evidence),
        "camera_id": tuple(c.id for c in fleet()),
    }
    patrol = idle_world()  # cameras, none visited yet, and a scheduler that takes out-of-turn visits
    deps = dataclasses.replace(parts.deps, auth=make_auth(), cases=cases, inbound_secret=SECRET, patrol=patrol.view)
    app = create_app(deps)
    yield World(app, schemathesis.openapi.from_asgi(OPENAPI, app), known)
    patrol.scheduler.close()
    cases.close()


def cases_for(world: World, method: str, path: str) -> st.SearchStrategy[ApiCase]:
    """Valid and invalid requests for one operation; as many again name things that exist (a stored case with an
    action the loop knows, or a real photo, an event, an incident, an evidence key, an event to replay after)."""
    operation = world.schema[path][method]
    parameters = {p["name"] for p in world.schema.raw_schema["paths"][path][method.lower()].get("parameters", [])}
    real: list[dict[str, str]] = [{}]
    for name in sorted(parameters & set(world.known)):
        real = [{**r, name: value} for r in real for value in world.known[name]]
    if "action" in parameters:
        real = [{**r, "action": action} for r in real for action in ACTIONS]
    existing: list[st.SearchStrategy[ApiCase]] = []
    if real != [{}]:
        existing.append(st.sampled_from(real).flatmap(lambda fixed: operation.as_strategy(path_parameters=fixed)))
    if path == PHOTOS:
        photo = {"photo": [make_image_bytes(7)], "stage": "before"}
        existing += [operation.as_strategy(path_parameters=fixed, body=photo) for fixed in real]
    if path == STREAM:
        existing.append(operation.as_strategy(headers={"last-event-id": world.known["event_id"][0]}))
    generated = [operation.as_strategy(mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    # as many requests for what exists as generated ones
    return st.one_of(st.one_of(existing), st.one_of(existing), *generated) if existing else st.one_of(generated)


def fuzz_one(world: World, method: str, path: str, test: Callable[[str, str, ApiCase], None]) -> None:
    @FUZZ
    @given(case=cases_for(world, method, path))
    def run(case: ApiCase) -> None:
        test(method, path, case)

    run()


def fuzz(world: World, subtests: pytest.Subtests, test: Callable[[str, str, ApiCase], None]) -> set[tuple[str, str]]:
    """`test` on every operation, each a subtest; the operations."""
    done = set()
    for method, path in world.operations():
        with subtests.test(operation=f"{method} {path}"):
            fuzz_one(world, method, path, test)
        done.add((method, path))
    assert set(PUBLIC) < done and len(done) >= 18, done
    return done


def timeout(path: str) -> float:
    # the live stream never ends by itself: what it sent in the first moment is checked
    return 0.1 if path == STREAM else 30.0


def without_credentials(case: ApiCase) -> None:
    for name in [n for n in case.headers or {} if n.lower() in ("authorization", "cookie")]:
        del case.headers[name]
    if case.cookies:
        case.cookies.clear()


def signed_text(case: ApiCase) -> str | None:
    """The text of `case`'s body for signing; None for bytes that are not UTF-8 (text is what is signed)."""
    if isinstance(case.body, NotSet):
        return ""
    if isinstance(case.body, bytes):
        try:
            return case.body.decode("utf-8")
        except UnicodeDecodeError:
            return None
    text = json.dumps(case.body, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: sent escaped
        return json.dumps(case.body)
    return text


def signed_delivery(world: World, body: str) -> httpx2.Response:
    """`body` posted to the intake webhook as a producer with the inbound secret would: signed, now."""
    webhook_id = f"msg_fuzz{next(DELIVERIES)}"
    now = datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(SECRET).sign(webhook_id, now, body),
    }
    with TestClient(world.app) as client:
        return client.post(WEBHOOK, content=body.encode(), headers=headers)


def test_fuzzed_as_admin_no_server_errors_and_answers_as_declared(world: World, subtests: pytest.Subtests) -> None:
    def test(method: str, path: str, case: ApiCase) -> None:
        response = case.call_and_validate(headers=bearer("admin"), checks=CHECKS, timeout=timeout(path))
        # the token was sent, whatever credentials were generated: admin may do anything (but a generated name and
        # password, which sign in with them instead of the token, are wrong)
        password_sign_in = (method, path) == ("POST", "/api/v1/session") and bool(case.body)
        if path != WEBHOOK and not password_sign_in:
            assert response.status_code not in (401, 403), (method, path, response.text)
        body = signed_text(case) if path == WEBHOOK else None
        if body is not None:  # and the same body signed, so that what is behind the signature is fuzzed too
            case.validate_response(signed_delivery(world, body), checks=CHECKS)

    fuzz(world, subtests, test)


def unparsable_body(response: Response) -> bool:
    """FastAPI's answer to a JSON body it cannot read, given before any dependency (so before authentication) runs:
    400 for bytes that are not UTF-8, 422 naming only `json_invalid` for text that is not JSON. No route ran."""
    if response.status_code == 400:
        return bool(response.json() == {"detail": "There was an error parsing the body"})
    if response.status_code == 422:
        errors = response.json()["detail"]
        return bool(errors) and all(e["type"] == "json_invalid" and e["loc"][0] == "body" for e in errors)
    return False


def test_fuzzed_without_credentials_everything_but_the_public_routes_is_401(
    world: World, subtests: pytest.Subtests
) -> None:
    def test(method: str, path: str, case: ApiCase) -> None:
        without_credentials(case)
        response = case.call(timeout=timeout(path))
        case.validate_response(response, checks=[not_a_server_error])
        assert "set-cookie" not in response.headers or path == "/api/v1/session"  # no session without credentials
        if (method, path) in PUBLIC:
            if (method, path) in JSON_BODIES and unparsable_body(response):
                return
            if (method, path) == ("POST", "/api/v1/session") and response.status_code in (422, 429):
                return  # a body that is not a name and password, or a name tried too often: told so
            assert response.status_code == PUBLIC[method, path], (method, path, response.text)
            if path == "/healthz":
                assert set(response.json()) == {"status", "version"}  # no camera, patrol or stream figures
            return
        if (method, path) in JSON_BODIES and unparsable_body(response):
            return
        assert response.status_code == 401, (method, path, response.status_code, response.text)
        assert response.json() == {"detail": "authentication required: Authorization: Bearer <token>"}
        assert response.headers.get("www-authenticate") == ["Bearer"]

    fuzz(world, subtests, test)
