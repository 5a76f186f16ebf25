"""The whole path in one `gridwatch run` runtime, with real parts: file cameras of the shared footage, YOLOX, the
demo's rules and grid map, incidents, the case store, the operators' loop through the API, and the signed
deliveries arriving at a real HTTP receiver, each once, in order per case."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from gridwatch.modelstore import fetch_model
from gridwatch.runtime import Runtime, build_runtime, load_settings
from intake.store import EventStore
from tests.intake.outbox_builders import make_secret
from tests.intake.receiver import Receiver, running
from tests.support.assets import ROOT
from tests.support.postgres import StoreTargets

pytestmark = pytest.mark.slow


def wait_for(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.fixture
def config(tmp_path: Path, yolox_path: Path, footage_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo config with its four cameras, a data folder of its own and the fetched model."""
    folder = tmp_path / "site"
    shutil.copytree(ROOT / "configs" / "demo", folder)
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(ROOT / "models" / "yolox-nano.yaml", models)
    fetch_model(models / "yolox-nano.yaml", models, str(yolox_path.parent))
    monkeypatch.setenv("GRIDWATCH_DEMO_MEDIA", str(footage_path.parent))
    return folder


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running(Receiver(secrets={"/city": make_secret()})) as r:
        yield r


@pytest.fixture
def runtime(config: Path, tmp_path: Path, receiver: Receiver, store_targets: StoreTargets) -> Iterator[Runtime]:
    """`gridwatch run` on the demo config, its stores on SQLite files in data_dir or on PostgreSQL."""
    database = {"database_url": store_targets.cases} if store_targets.dialect == "postgres" else {}
    settings = {
        "data_dir": str(tmp_path / "data"),
        "models_dir": str(tmp_path / "models"),
        "patrol": {"max_in_flight": 2},
        "intake": {
            "targets": {"city": {"url": receiver.url("/city"), "secret": receiver.secrets["/city"], "timeout_s": 2.0}},
            "sweep_s": 1,
            "check_by_camera": False,  # the operators take it round the loop themselves here
            **database,
        },
    }
    (config / "settings.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    built = build_runtime(config, load_settings(config))
    built.start()
    yield built
    if not built.stop_event.is_set():  # the test may have stopped it itself
        built.stop()


def test_a_camera_incident_goes_round_the_loop_and_reaches_the_city_platform(
    runtime: Runtime, receiver: Receiver, store_targets: StoreTargets
) -> None:
    api = TestClient(runtime.app)
    # given: the patrol finds people on the walkway; each camera's incident becomes a camera case
    wait_for(lambda: len(api.get("/api/v1/cases", params={"source": "camera"}).json()["items"]) >= 1)
    case = api.get("/api/v1/cases", params={"source": "camera"}).json()["items"][0]
    assert case["category"] == "9901" and case["category_label"] == "99 视频智能分析 / 9901 区域入侵"
    assert case["grid_path"][:3] == ["黄浦区", "南京东路街道", "示范社区"] and case["evidence"]
    assert case["due_by"] is not None and case["reporter"]["rule_id"] == "walkway-intrusion"
    # when: operators take it round the loop
    for action, body in [
        ("accept", {}),
        ("file", {}),
        ("dispatch", {"department": "校园保卫处"}),
        ("start", {}),
        ("handled", {}),
        ("check", {}),
        ("close", {"note": "已劝离"}),
    ]:
        answer = api.post(f"/api/v1/cases/{case['id']}/actions/{action}", json=body or None)
        assert answer.status_code == 200, (action, answer.text)
    # then: the city platform received every change of the case, signed, once each, in order
    wanted = [
        "case.reported",
        "case.accept",
        "case.file",
        "case.dispatch",
        "case.start",
        "case.handled",
        "case.check",
        "case.close",
    ]

    def delivered() -> list[str]:
        return [a.type for a in receiver.arrivals if a.data.get("id") == case["id"]]

    wait_for(lambda: delivered()[: len(wanted)] == wanted, timeout=30)
    assert receiver.rejected == 0
    assert len(receiver.ids()) == len(set(receiver.ids()))
    closed = [a for a in receiver.arrivals if a.data.get("id") == case["id"] and a.type == "case.close"]
    assert closed[0].data["state"] == "closed" and closed[0].data["department"] == "校园保卫处"
    # and at stop, every incident still open is closed in the store ("gridwatch stopped"), none left hanging
    runtime.stop()
    postgres = store_targets.dialect == "postgres"
    with EventStore(store_targets.events if postgres else runtime.settings.data_dir / "events.sqlite3") as store:
        assert store.list_incidents(state="open") == []
        assert store.list_incidents(state="closed")
