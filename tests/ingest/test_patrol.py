"""The patrol loop: failures are contained and reported, back-pressure holds visits back."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from core.errors import GrabError
from ingest.cameras import Camera
from ingest.patrol import Patrol
from ingest.scheduler import BackoffPolicy, Health, InProcessScheduler
from ingest.visit import VisitCost, VisitResult


@dataclass
class RecordingPipeline:
    """Stands in for VisitPipeline: records visits; cameras named in `broken` fail to grab, `crash` raise."""

    broken: set[str] = field(default_factory=set)
    crash: set[str] = field(default_factory=set)
    visits: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def visit(self, camera: Camera, seq: int) -> VisitResult:
        with self.lock:
            self.visits.append(camera.id)
        if camera.id in self.broken:
            raise GrabError(f"camera {camera.id} ({camera.safe_url}): connection refused")
        if camera.id in self.crash:
            raise ZeroDivisionError("bug in a rule")
        return VisitResult(camera.id, 0, 0, [], VisitCost(1, 2, 3, 4, 5, 6))


def run_patrol(pipeline: RecordingPipeline, cameras: list[Camera], seconds: float, **kw: object) -> Patrol:
    scheduler = InProcessScheduler(cameras, time.monotonic, BackoffPolicy(base_s=60))
    patrol = Patrol(scheduler, pipeline, workers=2, **kw)  # type: ignore[arg-type]
    patrol.start()
    time.sleep(seconds)
    patrol.stop()
    return patrol


def cams(*ids: str) -> list[Camera]:
    return [Camera(id=i, url=f"rtsp://admin:pw@h/{i}", revisit_s=0.05) for i in ids]


def test_a_failing_and_a_crashing_camera_do_not_stop_the_others() -> None:
    pipeline = RecordingPipeline(broken={"dead"}, crash={"buggy"})
    patrol = run_patrol(pipeline, cams("ok", "dead", "buggy"), 0.6)

    assert pipeline.visits.count("ok") >= 5
    assert pipeline.visits.count("dead") == 1  # backed off for 60 s after its failure
    assert pipeline.visits.count("buggy") == 1
    states = {c["id"]: c for c in patrol.health()["camera_states"]}  # type: ignore[attr-defined]
    assert states["ok"]["health"] == Health.online
    assert states["dead"]["health"] == Health.degraded
    assert "pw" not in states["dead"]["last_error"] and "***@h/dead" in states["dead"]["last_error"]
    assert "ZeroDivisionError" in states["buggy"]["last_error"]
    assert patrol.stats.failures == 2


def test_back_pressure_holds_visits_until_inference_catches_up() -> None:
    behind = threading.Event()
    behind.set()
    pipeline = RecordingPipeline()
    scheduler = InProcessScheduler(cams("a", "b"), time.monotonic)
    patrol = Patrol(scheduler, pipeline, workers=2, pressure=behind.is_set)  # type: ignore[arg-type]
    patrol.start()
    try:
        time.sleep(0.3)
        assert pipeline.visits == []
        assert patrol.stats.held_back > 0
        behind.clear()
        deadline = time.monotonic() + 5
        while len(pipeline.visits) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(pipeline.visits) >= 2
    finally:
        patrol.stop()
