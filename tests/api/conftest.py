from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import ApiDeps, create_app
from api.auth import ROLES, AuthConfig
from core.settings import ApiRole, ApiToken
from intake.bus import EventBus
from intake.case_store import CaseStore
from intake.evidence import EvidenceStore
from intake.sink import IntakeSink
from intake.store import EventStore

VERSION = "9.8.7-test"
SESSION_KEY = b"k" * 32


def secret_of(role: ApiRole) -> str:
    """A token secret per role, long and random-looking like the real ones."""
    return f"gw-{role}-" + hashlib.sha256(role.encode()).hexdigest()[:32]


def make_token(name: str, role: ApiRole, secret: str) -> ApiToken:
    return ApiToken(name=name, role=role, sha256=hashlib.sha256(secret.encode()).hexdigest())


def make_auth(now: float | None = None) -> AuthConfig:
    """One token per role, named after it; a fixed session key, and a fixed clock when `now` is given."""
    tokens = tuple(make_token(f"{role}-1", role, secret_of(role)) for role in ROLES)
    auth = AuthConfig(tokens=tokens, session_key=SESSION_KEY)
    return auth if now is None else dataclasses.replace(auth, now=lambda: now)


def bearer(role: ApiRole) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret_of(role)}"}


@dataclass
class Parts:
    deps: ApiDeps
    sink: IntakeSink


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    bus = EventBus()
    evidence = EvidenceStore(tmp_path / "evidence")
    with EventStore(tmp_path / "events.sqlite3") as store:
        deps = ApiDeps(
            store=store,
            evidence=evidence,
            bus=bus,
            health=lambda: {"cameras": {"online": 3, "offline": 1}, "patrol": "running"},
            version=VERSION,
        )
        yield Parts(deps, IntakeSink(store, evidence, bus))
        bus.close()


@pytest.fixture
def app(parts: Parts) -> FastAPI:
    return create_app(parts.deps)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def secured_parts(parts: Parts) -> Parts:
    """The same parts with one token per role configured: authentication on."""
    return Parts(dataclasses.replace(parts.deps, auth=make_auth()), parts.sink)


@pytest.fixture
def secured(secured_parts: Parts) -> Iterator[TestClient]:
    with TestClient(create_app(secured_parts.deps)) as test_client:
        yield test_client


@pytest.fixture
def cases(tmp_path: Path) -> Iterator[CaseStore]:
    """A real case store in the test's folder."""
    store = CaseStore(tmp_path / "cases.sqlite3")
    yield store
    store.close()


@pytest.fixture
def api(parts: Parts, cases: CaseStore) -> Iterator[TestClient]:
    """The app with one token per role and a case store."""
    deps = dataclasses.replace(parts.deps, auth=make_auth(), cases=cases)
    with TestClient(create_app(deps)) as client:
        yield client
