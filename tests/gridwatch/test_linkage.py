"""Sensor alarm -> linked camera: through a real `gridwatch run` runtime, a water-level sensor fed over HTTP alarms,
the scheduler visits its linked file camera out of turn, and that camera's snapshot, taken after the alarm,
becomes evidence of the sensor's case."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from core.events import EventState
from gridwatch.modelstore import fetch_model
from gridwatch.runtime import Runtime, build_runtime, load_settings
from tests.support.assets import ROOT

pytestmark = pytest.mark.slow

FLOOD = """\
rules:
  - id: underpass-flood
    kind: sensor_threshold
    sensors: [wl-07]
    above: 0.30
    clear_below: 0.20
    category: "0406"
    severity: major
"""


def wait_for(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.fixture
def runtime(tmp_path: Path, yolox_path: Path, footage_path: Path) -> Iterator[Runtime]:
    config = tmp_path / "site"
    (config / "rules").mkdir(parents=True)
    (config / "rules" / "flood.yaml").write_text(FLOOD, encoding="utf-8")
    # one camera, on a round so long that only an out-of-turn visit looks again after the first
    camera = {"id": "underpass-cam", "name": "下穿通道", "url": footage_path.as_uri(), "revisit_s": 3600}
    (config / "cameras.yaml").write_text(yaml.safe_dump({"cameras": [camera]}), encoding="utf-8")
    sensor = {"id": "wl-07", "name": "人民路下穿积水", "kind": "water_level", "unit": "m", "cameras": [camera["id"]]}
    (config / "sensors.yaml").write_text(yaml.safe_dump({"sensors": [sensor]}, allow_unicode=True), encoding="utf-8")
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(ROOT / "models" / "yolox-nano.yaml", models)
    fetch_model(models / "yolox-nano.yaml", models, str(yolox_path.parent))
    settings = {"data_dir": str(tmp_path / "data"), "models_dir": str(models), "patrol": {"max_in_flight": 1}}
    (config / "settings.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    built = build_runtime(config, load_settings(config))
    built.start()
    yield built
    built.stop()


def test_a_sensor_alarm_gets_a_snapshot_of_its_linked_camera_taken_after_the_alarm(runtime: Runtime) -> None:
    api = TestClient(runtime.app)
    # given: the camera's first round visit is over
    wait_for(lambda: runtime.patrol.stats.visits >= 1)
    alarm = datetime.now(UTC)
    # when: the water level crosses its threshold (readings over HTTP)
    now = alarm.isoformat()
    answer = api.post("/api/v1/sensors/wl-07/readings", json=[{"at": now, "value": 0.1}, {"at": now, "value": 0.42}])
    assert answer.status_code == 202, answer.text

    def sensor_case() -> dict[str, object] | None:
        items = api.get("/api/v1/cases", params={"source": "sensor"}).json()["items"]
        return items[0] if items and items[0]["evidence"] else None

    # then: the sensor's case gets evidence from a visit of the linked camera made after the alarm
    wait_for(lambda: sensor_case() is not None)
    case = sensor_case()
    assert case is not None and case["reporter"]["sensor_id"] == "wl-07"
    keys = {e["key"] for e in case["evidence"]}  # type: ignore[union-attr]
    assert runtime.patrol.stats.visits >= 2, "an out-of-turn visit of the linked camera"
    updates = [e for e in runtime.store.list(limit=50) if e.state == EventState.update and e.evidence]
    assert len(updates) == 1
    update = updates[0]
    assert update.sensor_id == "wl-07" and update.camera_id == "" and update.last_seen >= alarm
    assert {e.key for e in update.evidence} <= keys
    assert {e.kind for e in update.evidence} == {"frame", "annotated"}
    assert "linked camera 下穿通道" in update.reason
    assert runtime.health()["sensors"]["linkage"] == {"pending": 0, "answered": 1, "expired": 0}  # type: ignore[index]
