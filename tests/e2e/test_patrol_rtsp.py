"""End to end over the real RTSP server: patrol -> YOLOX -> fence rule -> SQLite + evidence -> API."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient

from core.settings import Settings
from detectors.session import usable_cores
from gridwatch.modelstore import fetch_model
from gridwatch.runtime import Runtime, build_runtime
from tests.support.assets import ROOT, model_mirror
from tests.support.rtsp import RtspServer

WALKWAY = [[0.0, 0.31], [0.85, 0.31], [1.0, 0.45], [1.0, 0.85], [0.55, 0.61], [0.3, 0.48], [0.0, 0.41]]
GRASS = [[0.02, 0.78], [0.3, 0.78], [0.3, 0.99], [0.02, 0.99]]  # bottom-left lawn: nobody walks there

RULES = f"""\
rules:
  - id: walkway-intrusion
    kind: zone_intrusion
    zone: {{name: walkway, polygon: {WALKWAY}}}
    classes: [person]
    min_confidence: 0.4
    cooldown_s: 3600
    category: "0501"
  - id: lawn-intrusion
    kind: zone_intrusion
    zone: {{name: lawn, polygon: {GRASS}}}
    classes: [person]
    min_confidence: 0.4
    cooldown_s: 0
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def runtime(tmp_path: Path, rtsp_server: RtspServer) -> Iterator[Runtime]:
    config = tmp_path / "config"
    (config / "rules").mkdir(parents=True)
    dead = f"rtsp://admin:n0tlogged@127.0.0.1:{free_port()}/gone"
    (config / "cameras.yaml").write_text(
        "cameras:\n"
        + "".join(f"  - {{id: cam-{i}, url: '{rtsp_server.url(i)}', revisit_s: 1}}\n" for i in range(2))
        + f"  - {{id: cam-dead, url: '{dead}', revisit_s: 1}}\n"
    )
    (config / "rules" / "site.yaml").write_text(RULES)
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(ROOT / "models" / "yolox-nano.yaml", models)
    settings = Settings(
        data_dir=tmp_path / "data",
        models_dir=models,
        model_mirror=str(model_mirror()),
        patrol={"max_in_flight": 3, "open_timeout_s": 2, "read_timeout_s": 2, "backoff_base_s": 1},
    )
    fetch_model(models / "yolox-nano.yaml", models, settings.model_mirror)
    rt = build_runtime(config, settings)
    rt.start()
    yield rt
    rt.stop()


def wait_for(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.25)


def bottom_centre_inside(box: dict[str, float], polygon: list[list[float]], w: int, h: int) -> bool:
    zone = shapely.Polygon(np.array(polygon) * [w, h])
    x, y = (box["x1"] + box["x2"]) / 2, box["y2"]
    return bool(shapely.intersects_xy(zone, x, y))


@pytest.mark.rtsp
@pytest.mark.slow
def test_patrol_finds_people_on_the_walkway_and_keeps_going_past_a_dead_camera(runtime: Runtime) -> None:
    # when: the patrol runs until both live cameras have produced an event
    def both_cameras_fired() -> bool:
        return {e.camera_id for e in runtime.store.list(rule_id="walkway-intrusion")} >= {"cam-0", "cam-1"}

    wait_for(both_cameras_fired, timeout=90)

    # then: events with evidence are in SQLite, one per camera (cooldown), none on the lawn
    events = runtime.store.list(limit=100)
    walkway = [e for e in events if e.rule_id == "walkway-intrusion"]
    assert sorted(e.camera_id for e in walkway) == ["cam-0", "cam-1"]
    assert not [e for e in events if e.rule_id == "lawn-intrusion"]

    client = TestClient(runtime.app)
    for event in walkway:
        annotated = next(ev for ev in event.evidence if ev.kind == "annotated")
        subjects = [b.model_dump() for b in annotated.boxes if b.in_zone]
        assert subjects and all(b["label"] == "person" for b in subjects)
        assert all(bottom_centre_inside(b, WALKWAY, annotated.width, annotated.height) for b in subjects)
        for ev in event.evidence:
            resp = client.get(f"/api/v1/evidence/{ev.key}")
            assert resp.status_code == 200 and resp.headers["content-type"] == "image/jpeg"
            image = cv2.imdecode(np.frombuffer(resp.content, np.uint8), cv2.IMREAD_COLOR)
            assert image.shape == (ev.height, ev.width, 3)

    listed = client.get("/api/v1/events", params={"rule": "walkway-intrusion"}).json()
    assert {e["id"] for e in listed["items"]} == {e.id for e in walkway}
    assert client.get(f"/api/v1/events/{walkway[0].id}").json()["camera_id"] == walkway[0].camera_id

    # and: the dead camera was given up on and reported, without its password anywhere
    health = runtime.health()
    states = {c["id"]: c for c in health["camera_states"]}  # type: ignore[attr-defined]
    assert states["cam-dead"]["health"] in ("degraded", "offline")
    assert "n0tlogged" not in str(health) and "n0tlogged" not in client.get("/healthz").text
    assert states["cam-0"]["visits"] >= 1 and states["cam-1"]["visits"] >= 1

    # and: on CPU, one concurrent inference run per core by default, every live visit's frame inferred
    inference = health["inference"]
    assert inference["workers"] == min(usable_cores(), 3)  # type: ignore[index]  # 3: max_in_flight
    assert inference["frames"] >= states["cam-0"]["visits"] + states["cam-1"]["visits"] - 2  # type: ignore[index]
