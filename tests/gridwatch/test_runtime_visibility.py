"""The patrol's visibility through a real `gridwatch run` runtime: file cameras of the shared footage plus one
unreachable RTSP camera with a password in its address; `/api/v1/cameras`, `/api/v1/patrol` and `/metrics`."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from gridwatch.modelstore import fetch_model
from gridwatch.runtime import Runtime, build_runtime, load_settings
from tests.support.assets import ROOT

pytestmark = pytest.mark.slow

PASSWORD = "Runtime-Pw_9"


@pytest.fixture
def runtime(tmp_path: Path, yolox_path: Path, footage_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    config = tmp_path / "site"
    shutil.copytree(ROOT / "configs" / "demo", config)
    cameras = yaml.safe_load((config / "cameras.yaml").read_text(encoding="utf-8"))
    # nothing listens on port 1: refused at once, and the error quotes the address
    cameras["cameras"].append({"id": "gate-rtsp", "url": f"rtsp://admin:{PASSWORD}@127.0.0.1:1/ch1", "revisit_s": 5})
    (config / "cameras.yaml").write_text(yaml.safe_dump(cameras, allow_unicode=True), encoding="utf-8")
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(ROOT / "models" / "yolox-nano.yaml", models)
    fetch_model(models / "yolox-nano.yaml", models, str(yolox_path.parent))
    monkeypatch.setenv("GRIDWATCH_DEMO_MEDIA", str(footage_path.parent))
    settings = {"data_dir": str(tmp_path / "data"), "models_dir": str(models), "patrol": {"max_in_flight": 2}}
    (config / "settings.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    built = build_runtime(config, load_settings(config))
    built.start()
    yield built
    built.stop()


def test_cameras_patrol_and_metrics_of_a_running_patrol(runtime: Runtime) -> None:
    api = TestClient(runtime.app)
    deadline = time.monotonic() + 60
    while not all(c["visits"] for c in api.get("/api/v1/cameras").json()["items"]):
        assert time.monotonic() < deadline, "not every camera was visited"
        time.sleep(0.2)
    cameras = {c["id"]: c for c in api.get("/api/v1/cameras").json()["items"]}
    assert sorted(cameras) == ["cam-01", "cam-02", "cam-03", "cam-04", "gate-rtsp"]
    assert cameras["cam-01"]["health"] == "online" and cameras["cam-01"]["latency_ms"]["total_p50"] > 0
    gate = cameras["gate-rtsp"]
    assert gate["health"] in ("degraded", "offline") and gate["url"] == "rtsp://***@127.0.0.1:1/ch1"
    assert gate["last_error"] and "admin" not in gate["last_error"]
    patrol = api.get("/api/v1/patrol").json()
    assert patrol["enabled"] == 5 and patrol["visits"] >= 4 and patrol["failures"] >= 1
    assert len(patrol["workers"]) == 1 and patrol["median_cost_ms"]["inference"] > 0
    metrics = api.get("/metrics")
    assert metrics.status_code == 200
    assert 'gridwatch_cameras{health="online"} 4.0' in metrics.text
    assert "gridwatch_inference_queue_depth" in metrics.text and "gridwatch_intake_handoff_depth" in metrics.text
    assert 'gridwatch_visit_seconds_bucket{le="+Inf",phase="inference"}' in metrics.text
    for text in (metrics.text, api.get("/api/v1/cameras").text, api.get("/api/v1/patrol").text):
        assert PASSWORD not in text
