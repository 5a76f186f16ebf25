from __future__ import annotations

import base64
import dataclasses
import json
import logging
from collections.abc import Callable

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from ulid import ULID

from api.app import create_app
from api.auth import ROLES, SESSION_COOKIE, FailureLimiter, SessionClaims, decode_session, encode_session
from api.deps import AdminDep, OperatorDep
from api.models import SessionPublic
from core.settings import ApiRole
from tests.api.conftest import SESSION_KEY, VERSION, Parts, bearer, make_auth, make_token, secret_of
from tests.intake.builders import make_event, make_event_with_blobs

DATA_ROUTES = ["events", "event", "evidence", "incidents", "incident", "stream", "session"]


@pytest.fixture
def urls(secured_parts: Parts) -> dict[str, str]:
    """A URL per data route that answers 200 to a good caller: an event and its evidence are stored."""
    event, blobs = make_event_with_blobs(seed=3)
    secured_parts.sink.emit(event, blobs)
    incident_id = str(ULID())
    secured_parts.sink.emit(make_event(60.0, incident_id=incident_id), {})
    return {
        "events": "/api/v1/events",
        "event": f"/api/v1/events/{event.id}",
        "incidents": "/api/v1/incidents",
        "incident": f"/api/v1/incidents/{incident_id}",
        "evidence": f"/api/v1/evidence/{event.evidence[0].key}",
        "stream": "/api/v1/stream",
        "session": "/api/v1/session",
    }


def sign_in(client: TestClient, role: ApiRole = "viewer") -> httpx2.Response:
    response = client.post("/api/v1/session", headers=bearer(role))
    assert response.status_code == 200, response.text
    return response


@pytest.mark.parametrize("route", DATA_ROUTES)
def test_each_data_route_refuses_a_caller_without_credentials(
    secured: TestClient, urls: dict[str, str], route: str
) -> None:
    response = secured.get(urls[route])
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer not-a-configured-token",
        f"Bearer {secret_of('viewer')}x",
        f"Basic {secret_of('viewer')}",
        "Bearer " + "a" * 5000,
        "Bearer",
    ],
)
@pytest.mark.parametrize("route", ["events", "evidence"])
def test_a_wrong_token_is_401(secured: TestClient, urls: dict[str, str], route: str, authorization: str) -> None:
    response = secured.get(urls[route], headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", ["events", "event", "incidents", "incident", "evidence", "session"])
def test_every_role_may_read(secured: TestClient, urls: dict[str, str], route: str, role: ApiRole) -> None:
    response = secured.get(urls[route], headers=bearer(role))
    assert response.status_code == 200, response.text


def test_a_bad_token_is_refused_even_with_a_good_session(secured: TestClient) -> None:
    sign_in(secured)
    assert secured.get("/api/v1/events").status_code == 200
    assert secured.get("/api/v1/events", headers={"Authorization": "Bearer nope"}).status_code == 401


def role_app(parts: Parts) -> FastAPI:
    """The real app with two routes that need higher roles, as the rule and admin routes will."""
    app = create_app(parts.deps)

    def operate(caller: OperatorDep) -> dict[str, str]:
        return {"name": caller.name}

    def administer(caller: AdminDep) -> dict[str, str]:
        return {"name": caller.name}

    app.add_api_route("/test/operate", operate, methods=["POST"])
    app.add_api_route("/test/administer", administer, methods=["GET"])
    return app


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/test/operate", {"operator", "rule_author", "admin"}),
        ("GET", "/test/administer", {"admin"}),
    ],
)
def test_roles_are_ordered_and_a_role_too_low_is_403(
    secured_parts: Parts, method: str, path: str, allowed: set[str]
) -> None:
    with TestClient(role_app(secured_parts)) as client:
        assert client.request(method, path).status_code == 401
        for role in ROLES:
            response = client.request(method, path, headers=bearer(role))
            assert response.status_code == (200 if role in allowed else 403), role
            if role in allowed:
                assert response.json() == {"name": f"{role}-1"}


def test_the_session_cookie_alone_authorizes_reading_only(secured_parts: Parts) -> None:
    # given: an operator signed in with the cookie alone
    with TestClient(role_app(secured_parts)) as client:
        csrf = sign_in(client, "operator").json()["csrf"]
        # then: GET works with the cookie; a state-changing method needs the session's CSRF value or the bearer
        assert client.get("/api/v1/events").status_code == 200
        assert client.post("/test/operate").status_code == 403
        assert client.post("/test/operate", headers={"X-CSRF-Token": "x" + csrf[1:]}).status_code == 403
        assert client.post("/test/operate", headers={"X-CSRF-Token": csrf}).json() == {"name": "operator-1"}
        assert client.post("/test/operate", headers=bearer("operator")).status_code == 200


def test_sign_in_sets_a_strict_http_only_session_cookie(secured: TestClient) -> None:
    # when
    response = sign_in(secured, "operator")
    # then
    cookie = response.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert cookie.startswith(SESSION_COOKIE + "=")
    assert {"httponly", "samesite", "path", "max-age"} <= attributes
    assert "samesite=strict" in cookie.lower()
    assert "max-age=43200" in cookie.lower()
    assert "secure" not in attributes  # plain http in this test; https gets Secure
    body = SessionPublic.model_validate(response.json())
    assert (body.name, body.role, body.via) == ("operator-1", "operator", "session")
    assert body.expires_at is not None
    assert response.headers["cache-control"] == "no-store"
    # and: the cookie alone now reads events and says who is signed in
    assert secured.get("/api/v1/events").status_code == 200
    assert secured.get("/api/v1/session").json()["via"] == "session"


def test_sign_in_needs_the_bearer_header_not_the_cookie(secured: TestClient) -> None:
    sign_in(secured)
    response = secured.post("/api/v1/session")
    assert response.status_code == 401


def test_sign_out_clears_the_cookie(secured: TestClient) -> None:
    sign_in(secured)
    response = secured.delete("/api/v1/session")
    assert response.status_code == 204
    assert SESSION_COOKIE not in secured.cookies
    assert secured.get("/api/v1/events").status_code == 401
    assert secured.delete("/api/v1/session").status_code == 204  # idempotent, no credentials needed


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def tampered_role(cookie: str) -> str:
    version, payload, signature = cookie.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    return f"{version}.{b64(json.dumps(claims).encode())}.{signature}"


def fingerprint(role: ApiRole, secret: str | None = None) -> str:
    """The session fingerprint of the token `<role>-1` with `secret` (by default its configured one)."""
    return make_auth().fingerprint(make_token(f"{role}-1", role, secret or secret_of(role)))


def claims(
    sub: str = "viewer-1", role: ApiRole = "viewer", exp: int = 4_000_000_000, fp: str | None = None
) -> SessionClaims:
    """Claims that pass every check (the viewer's own fingerprint) unless a field is changed."""
    return SessionClaims(sub=sub, role=role, exp=exp, fp=fingerprint("viewer") if fp is None else fp)


BAD_COOKIES: dict[str, Callable[[str], str]] = {
    "expired": lambda _: encode_session(SESSION_KEY, claims(exp=1_000)),
    "tampered claims": tampered_role,
    "tampered signature": lambda good: good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
    "another key": lambda _: encode_session(b"x" * 32, claims()),
    "a removed token": lambda _: encode_session(SESSION_KEY, claims(sub="gone-1")),
    "a changed role": lambda _: encode_session(SESSION_KEY, claims(role="admin")),
    "a rotated secret": lambda _: encode_session(SESSION_KEY, claims(fp=fingerprint("viewer", "old-secret"))),
    "no fingerprint": lambda _: encode_session(
        SESSION_KEY, SessionClaims(sub="viewer-1", role="viewer", exp=4 * 10**9)
    ),
    "another version": lambda good: "v2" + good[2:],
    "garbage": lambda _: "v1.%%%.###",
    "huge": lambda good: good + "A" * 5000,
}


@pytest.mark.parametrize("case", list(BAD_COOKIES))
@pytest.mark.parametrize("route", ["events", "evidence", "stream"])
def test_a_bad_session_cookie_is_401(secured: TestClient, urls: dict[str, str], case: str, route: str) -> None:
    # given: a good cookie to start from, and the route works with it
    url = urls[route]
    good = sign_in(secured).cookies[SESSION_COOKIE]
    assert secured.get(urls["events"]).status_code == 200
    # when
    secured.cookies.clear()
    secured.cookies.set(SESSION_COOKIE, BAD_COOKIES[case](good))
    response = secured.get(url)
    # then
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("value", ["v1.é.é", "v1.e30.é", "v1..", "", "v1", "v1.e30"])
def test_malformed_session_values_decode_to_nothing(value: str) -> None:
    assert decode_session(SESSION_KEY, value) is None


def test_a_session_ends_when_it_expires(secured_parts: Parts) -> None:
    # given: a session issued at t=1000 lasting 12 h, checked by a server whose clock says 12 h later
    issued = make_auth(now=1_000.0)
    cookie, _ = issued.issue_session(issued.check_token(secret_of("viewer")))  # type: ignore[arg-type]
    later = make_auth(now=1_000.0 + issued.session_ttl_s)
    just_before = make_auth(now=999.0 + issued.session_ttl_s)
    # then
    assert just_before.check_session(cookie) is not None
    assert later.check_session(cookie) is None


def test_a_session_ends_when_its_token_secret_is_rotated() -> None:
    # given: a viewer signed in, and the same name and role configured again with a new secret
    before = make_auth()
    cookie, _ = before.issue_session(before.check_token(secret_of("viewer")))  # type: ignore[arg-type]
    rotated = tuple(
        make_token(t.name, t.role, "a-new-viewer-secret") if t.role == "viewer" else t for t in before.tokens
    )
    after = dataclasses.replace(before, tokens=rotated)
    # then
    assert before.check_session(cookie) is not None
    assert after.check_session(cookie) is None
    assert after.check_token("a-new-viewer-secret") is not None


def test_the_unchanged_claims_of_the_bad_cookie_cases_are_good(secured: TestClient) -> None:
    secured.cookies.set(SESSION_COOKIE, encode_session(SESSION_KEY, claims()))
    assert secured.get("/api/v1/events").status_code == 200


@pytest.mark.parametrize(("new_secret", "expected"), [(None, 200), ("a-new-viewer-secret", 401)])
def test_a_restart_with_a_rotated_secret_ends_the_session(
    secured_parts: Parts, new_secret: str | None, expected: int
) -> None:
    # given: a cookie from the server before the restart, which configures the viewer with `new_secret`
    with TestClient(create_app(secured_parts.deps)) as old_server:
        cookie = sign_in(old_server).cookies[SESSION_COOKIE]
    auth = secured_parts.deps.auth
    tokens = tuple(
        make_token(t.name, t.role, new_secret) if new_secret and t.role == "viewer" else t for t in auth.tokens
    )
    deps = dataclasses.replace(secured_parts.deps, auth=dataclasses.replace(auth, tokens=tokens))
    # when
    with TestClient(create_app(deps)) as new_server:
        new_server.cookies.set(SESSION_COOKIE, cookie)
        response = new_server.get("/api/v1/events")
    # then
    assert response.status_code == expected


def test_healthz_gives_details_only_to_a_signed_in_caller(secured: TestClient) -> None:
    assert secured.get("/healthz").json() == {"status": "ok", "version": VERSION}
    bad = secured.get("/healthz", headers={"Authorization": "Bearer nope"})
    assert bad.json() == {"status": "ok", "version": VERSION}
    full = secured.get("/healthz", headers=bearer("viewer")).json()
    assert full["details"] == {"cameras": {"online": 3, "offline": 1}, "patrol": "running"}
    sign_in(secured)
    assert "details" in secured.get("/healthz").json()


def test_without_tokens_auth_is_off_and_the_caller_is_anonymous(client: TestClient) -> None:
    assert client.get("/api/v1/session").json() == {
        "name": "anonymous",
        "role": "admin",
        "via": "anonymous",
        "expires_at": None,
        "csrf": None,
    }
    response = client.post("/api/v1/session")
    assert response.status_code == 200
    assert "set-cookie" not in response.headers


def test_the_wall_page_and_its_files_need_no_credentials(secured: TestClient) -> None:
    for path in ("/", "/static/app.js", "/static/style.css", "/static/favicon.svg"):
        assert secured.get(path).status_code == 200, path


def test_openapi_declares_bearer_and_cookie_security(secured: TestClient) -> None:
    spec = secured.get("/api/v1/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http", "apiKey"}
    assert spec["paths"]["/api/v1/events"]["get"]["security"]


def test_secrets_never_reach_logs_or_answers(
    secured: TestClient, urls: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    # given: every secret in play, a good one per role and a wrong one
    wrong = "gw-wrong-" + "b" * 40
    secrets = [secret_of(role) for role in ROLES] + [wrong]
    caplog.set_level(logging.DEBUG)
    responses = []
    # when: every kind of call is made with them
    for role in ROLES:
        responses.append(secured.post("/api/v1/session", headers=bearer(role)))
        for route in DATA_ROUTES[:3]:
            responses.append(secured.get(urls[route], headers=bearer(role)))
        responses.append(secured.get("/healthz", headers=bearer(role)))
    responses.append(secured.post("/api/v1/session", headers={"Authorization": f"Bearer {wrong}"}))
    responses.append(secured.get("/api/v1/events", headers={"Authorization": f"Bearer {wrong}"}))
    responses.append(secured.delete("/api/v1/session"))
    # then: the log said what happened, and no secret is in it or in any answer
    assert "signed in" in caplog.text
    assert "invalid bearer token" in caplog.text
    for secret in secrets:
        assert secret not in caplog.text
        for response in responses:
            assert secret not in response.text
            assert secret not in str(response.headers)


def test_repeated_wrong_tokens_are_held_back_then_let_through_again(parts: Parts) -> None:
    clock = [1000.0]
    limiter = FailureLimiter(max_failures=3, window_s=60, now=lambda: clock[0])
    auth = dataclasses.replace(make_auth(), limiter=limiter)
    client = TestClient(create_app(dataclasses.replace(parts.deps, auth=auth)))
    wrong = {"Authorization": "Bearer not-a-configured-token"}

    codes = [client.get("/api/v1/events", headers=wrong).status_code for _ in range(3)]
    held = client.get("/api/v1/events", headers=bearer("viewer"))  # even the right token waits its turn

    assert codes == [401, 401, 401]
    assert held.status_code == 429 and 1 <= int(held.headers["retry-after"]) <= 60
    assert client.get("/api/v1/events").status_code == 401  # no credentials: a plain 401, nothing counted
    clock[0] += 61
    assert client.get("/api/v1/events", headers=bearer("viewer")).status_code == 200


def test_bad_session_cookies_do_not_lock_their_owner_out(secured: TestClient) -> None:
    secured.cookies.set(SESSION_COOKIE, "v1.bad.cookie")
    assert all(secured.get("/api/v1/events").status_code == 401 for _ in range(20))

    assert secured.post("/api/v1/session", headers=bearer("viewer")).status_code == 200


def test_the_limiter_forgets_the_oldest_clients_first() -> None:
    limiter = FailureLimiter(max_failures=1, window_s=60, max_clients=2)
    for client in ("a", "b", "c"):
        limiter.failed(client)

    assert limiter.retry_after("a") == 0.0  # forgotten: the memory per address is bounded
    assert limiter.retry_after("b") > 0 and limiter.retry_after("c") > 0
