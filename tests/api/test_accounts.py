"""Operators' accounts: name and password (scrypt) for a session cookie, held back after failed tries per address
and per name, the session's name as the actor in the audit trail, and the CSRF value a change with the cookie
needs."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.app import create_app
from api.auth import SESSION_COOKIE, Account, AuthConfig, FailureLimiter
from core.passwords import hash_password, parse_hash, verify_password
from core.settings import ApiSettings
from intake.case_store import CaseStore
from tests.api.conftest import Parts, bearer, make_auth

PASSWORD = "东门-correct-horse-7"
CHEAP = {"n": 2**10, "r": 8, "p": 1}  # test hashes: the parameters travel with the hash


def accounts_auth(max_failures: int = 10) -> AuthConfig:
    """The tokens of `make_auth` plus two accounts: 王值班 (operator) and wall-viewer (viewer)."""
    accounts = (
        Account("王值班", "operator", hash_password(PASSWORD, **CHEAP)),
        Account("wall-viewer", "viewer", hash_password(PASSWORD + "v", **CHEAP)),
    )
    return dataclasses.replace(
        make_auth(),
        accounts=accounts,
        signin_limiter=FailureLimiter(max_failures=max_failures, window_s=600),
    )


@pytest.fixture
def accounts_api(parts: Parts, cases: CaseStore) -> Iterator[TestClient]:
    deps = dataclasses.replace(parts.deps, auth=accounts_auth(), cases=cases)
    with TestClient(create_app(deps)) as client:
        yield client


def sign_in(client: TestClient, name: str = "王值班", password: str = PASSWORD) -> dict[str, object]:
    response = client.post("/api/v1/session", json={"name": name, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_a_hash_verifies_its_password_only_and_carries_its_parameters() -> None:
    stored = hash_password(PASSWORD, **CHEAP)
    assert verify_password(PASSWORD, stored)
    assert not verify_password(PASSWORD + "x", stored)
    assert not verify_password("", stored)
    assert hash_password(PASSWORD, **CHEAP) != stored  # a fresh salt each time
    assert (parse_hash(stored).n, parse_hash(stored).p) == (2**10, 1)
    assert parse_hash(hash_password(PASSWORD)).n == 2**14  # the default cost
    with pytest.raises(ValueError, match="at least 10"):
        hash_password("short")


def test_settings_take_accounts_with_a_hash_and_refuse_a_password_or_a_clash() -> None:
    good = hash_password(PASSWORD, **CHEAP)
    api = ApiSettings(host="0.0.0.0", accounts={"王值班": {"role": "operator", "password_hash": good}})
    assert AuthConfig.from_settings(api).enabled
    assert good not in repr(api)
    with pytest.raises(ValidationError, match="gridwatch accounts hash"):
        ApiSettings(accounts={"x": {"role": "operator", "password_hash": PASSWORD}})
    token = {"name": "x", "role": "viewer", "sha256": "a" * 64}
    with pytest.raises(ValidationError, match="also token names"):
        ApiSettings(tokens=[token], accounts={"x": {"role": "operator", "password_hash": good}})
    with pytest.raises(ValidationError, match="name '<b>'"):
        ApiSettings(accounts={"<b>": {"role": "operator", "password_hash": good}})


def test_an_operator_signs_in_acts_as_themself_and_signs_out(accounts_api: TestClient) -> None:
    # given: a case reported by a machine
    report = {"sender_id": "app:1", "category": "0505", "description": "van on the pavement"}
    case = accounts_api.post("/api/v1/cases", json=report, headers=bearer("operator")).json()["case"]
    # when: the operator signs in with name and password
    who = sign_in(accounts_api)
    # then: a strict HttpOnly cookie, and who they are
    assert (who["name"], who["role"], who["via"]) == ("王值班", "operator", "session")
    assert isinstance(who["csrf"], str) and len(who["csrf"]) >= 20
    assert accounts_api.get("/api/v1/session").json()["csrf"] == who["csrf"]
    # when: they accept the case with the cookie and the CSRF value
    url = f"/api/v1/cases/{case['id']}/actions/accept"
    assert accounts_api.post(url, json={"note": "seen"}).status_code == 403  # no CSRF value: refused
    accepted = accounts_api.post(url, json={"note": "seen"}, headers={"X-CSRF-Token": str(who["csrf"])})
    # then: the audit trail names them
    assert accepted.status_code == 200, accepted.text
    last = accepted.json()["case"]["audit"][-1]
    assert (last["actor"], last["role"], last["action"]) == ("王值班", "operator", "accept")
    # when: they sign out, the cookie is gone and the API refuses them
    assert accounts_api.delete("/api/v1/session").status_code == 204
    assert SESSION_COOKIE not in accounts_api.cookies
    assert accounts_api.get("/api/v1/session").status_code == 401


def test_a_viewer_account_is_refused_an_action(accounts_api: TestClient) -> None:
    report = {"sender_id": "app:2", "category": "0505"}
    case = accounts_api.post("/api/v1/cases", json=report, headers=bearer("operator")).json()["case"]
    who = sign_in(accounts_api, "wall-viewer", PASSWORD + "v")
    answer = accounts_api.get(f"/api/v1/cases/{case['id']}")
    assert answer.json()["allowed"] == []
    refused = accounts_api.post(
        f"/api/v1/cases/{case['id']}/actions/accept", headers={"X-CSRF-Token": str(who["csrf"])}
    )
    assert refused.status_code == 403
    assert "needs operator" in refused.json()["detail"]


def test_wrong_passwords_and_unknown_names_get_the_same_answer(accounts_api: TestClient) -> None:
    wrong = accounts_api.post("/api/v1/session", json={"name": "王值班", "password": "not-it-at-all"})
    unknown = accounts_api.post("/api/v1/session", json={"name": "nobody", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "wrong name or password"}
    assert SESSION_COOKIE not in accounts_api.cookies
    # no body and no bearer: told how to sign in
    assert accounts_api.post("/api/v1/session").status_code == 401


def test_failed_sign_ins_are_held_back_per_name_across_addresses(parts: Parts, cases: CaseStore) -> None:
    auth = accounts_auth(max_failures=3)
    deps = dataclasses.replace(parts.deps, auth=auth, cases=cases)
    app = create_app(deps)
    # given: three wrong passwords for one name, each from another address
    for i in range(3):
        with TestClient(app, client=(f"10.0.0.{i}", 5000)) as client:
            assert client.post("/api/v1/session", json={"name": "王值班", "password": "wrong-wrong"}).status_code == 401
    # then: that name is held back even with the right password from a fresh address, with Retry-After
    with TestClient(app, client=("10.0.0.9", 5000)) as client:
        held = client.post("/api/v1/session", json={"name": "王值班", "password": PASSWORD})
        assert held.status_code == 429 and int(held.headers["retry-after"]) > 0
        # and: the other account is not
        assert client.post("/api/v1/session", json={"name": "wall-viewer", "password": PASSWORD + "v"}).is_success


def test_failed_sign_ins_are_held_back_per_address_across_names(parts: Parts, cases: CaseStore) -> None:
    deps = dataclasses.replace(parts.deps, auth=accounts_auth(max_failures=3), cases=cases)
    with TestClient(create_app(deps), client=("10.0.0.7", 5000)) as client:
        for name in ("a1", "a2", "a3"):
            assert client.post("/api/v1/session", json={"name": name, "password": "guess-guess"}).status_code == 401
        assert client.post("/api/v1/session", json={"name": "王值班", "password": PASSWORD}).status_code == 429


def test_changing_the_password_ends_the_session(parts: Parts, cases: CaseStore) -> None:
    auth = accounts_auth()
    with TestClient(create_app(dataclasses.replace(parts.deps, auth=auth, cases=cases))) as client:
        sign_in(client)
        cookie = client.cookies[SESSION_COOKIE]
    changed = (Account("王值班", "operator", hash_password(PASSWORD + "2", **CHEAP)), *auth.accounts[1:])
    later = dataclasses.replace(auth, accounts=changed)
    assert auth.check_session(cookie) is not None
    assert later.check_session(cookie) is None


def test_the_cli_prints_a_hash_of_the_password_on_stdin(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from gridwatch.cli import main; raise SystemExit(main(['accounts', 'hash']))"],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    stored = done.stdout.strip()
    assert stored.startswith("scrypt$n=16384,r=8,p=5$") and PASSWORD not in done.stdout + done.stderr
    assert verify_password(PASSWORD, stored)


def test_wrong_passwords_do_not_hold_back_the_tokens_behind_the_same_address(parts: Parts, cases: CaseStore) -> None:
    deps = dataclasses.replace(parts.deps, auth=accounts_auth(max_failures=2), cases=cases)
    with TestClient(create_app(deps)) as client:
        for _ in range(3):
            client.post("/api/v1/session", json={"name": "王值班", "password": "wrong-wrong"})
        assert client.post("/api/v1/session", json={"name": "王值班", "password": PASSWORD}).status_code == 429
        assert client.get("/api/v1/cases", headers=bearer("viewer")).status_code == 200
