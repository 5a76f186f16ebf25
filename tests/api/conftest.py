from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import ApiDeps, create_app
from intake.bus import EventBus
from intake.evidence import EvidenceStore
from intake.sink import IntakeSink
from intake.store import EventStore

VERSION = "9.8.7-test"


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
