"""The patrol's coverage of healthy cameras holds among bad ones: a real RTSP server on many cameras (several per
path), with addresses that refuse connections, that accept and then never answer, and that answer garbage."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import Settings
from gridwatch.modelstore import fetch_model
from gridwatch.runtime import Runtime, build_runtime
from tests.support.assets import ROOT, model_mirror
from tests.support.rtsp import RtspServer

pytestmark = [pytest.mark.rtsp, pytest.mark.slow]

HEALTHY_PER_PATH = 3
REVISIT_S = 4
RUN_S = 30


class FaultyListener:
    """A TCP listener on a free loopback port that either holds every connection silently (`stall`) or answers
    each with random bytes and hangs up (`garbage`)."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.held: list[socket.socket] = []
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.behaviour == "stall":
                self.held.append(conn)  # never read, never answered
            else:
                try:
                    conn.recv(4096)
                    conn.sendall(b"\x16\x03\x01garbage " + os.urandom(512))
                except OSError:
                    pass
                conn.close()

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def faulty() -> Iterator[list[FaultyListener]]:
    listeners = [FaultyListener("stall"), FaultyListener("stall"), FaultyListener("garbage"), FaultyListener("garbage")]
    yield listeners
    for listener in listeners:
        listener.close()


@pytest.fixture
def runtime(tmp_path: Path, rtsp_server: RtspServer, faulty: list[FaultyListener]) -> Iterator[Runtime]:
    config = tmp_path / "config"
    (config / "rules").mkdir(parents=True)
    rows = [
        f"  - {{id: ok-{p}-{k}, url: '{rtsp_server.url(p)}', revisit_s: {REVISIT_S}}}\n"
        for p in range(rtsp_server.paths)
        for k in range(HEALTHY_PER_PATH)
    ]
    rows += [f"  - {{id: refused-{i}, url: 'rtsp://127.0.0.1:{closed_port()}/x', revisit_s: 1}}\n" for i in range(2)]
    rows += [
        f"  - {{id: {f.behaviour}-{i}, url: 'rtsp://127.0.0.1:{f.port}/x', revisit_s: 1}}\n"
        for i, f in enumerate(faulty)
    ]
    (config / "cameras.yaml").write_text("cameras:\n" + "".join(rows))
    (config / "rules" / "site.yaml").write_text("rules: []\n")
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(ROOT / "models" / "yolox-nano.yaml", models)
    settings = Settings(
        data_dir=tmp_path / "data",
        models_dir=models,
        model_mirror=str(model_mirror()),
        patrol={"max_in_flight": 8, "open_timeout_s": 2, "read_timeout_s": 2, "backoff_base_s": 2},
    )
    fetch_model(models / "yolox-nano.yaml", models, settings.model_mirror)
    built = build_runtime(config, settings)
    built.start()
    yield built
    built.stop()


def test_healthy_cameras_keep_their_coverage_among_refusing_stalling_and_garbage_ones(
    runtime: Runtime, faulty: list[FaultyListener]
) -> None:
    # when: the patrol runs for a while
    time.sleep(RUN_S)
    report = runtime.patrol.report()
    cameras = {c.camera_id: c for c in report.schedule.cameras}
    # then: every healthy camera is online and was visited round after round, the bad ones failed and were backed
    # off (visited far less than their 1 s target would ask), and the stalling listeners were really connected to
    healthy = [c for name, c in cameras.items() if name.startswith("ok-")]
    bad = [c for name, c in cameras.items() if not name.startswith("ok-")]
    assert len(healthy) == HEALTHY_PER_PATH * 4 and len(bad) == 6
    least = min(c.visits for c in healthy)
    assert least >= RUN_S // REVISIT_S - 3, {c.camera_id: c.visits for c in healthy}  # 7-8 rounds here, when idle
    assert all(c.health == "online" and c.failures == 0 for c in healthy)
    assert all(c.health in ("degraded", "offline") and c.failures >= 1 for c in bad)
    assert all(c.visits <= RUN_S // 2 for c in bad), {c.camera_id: c.visits for c in bad}
    assert all(f.accepted >= 1 for f in faulty)
