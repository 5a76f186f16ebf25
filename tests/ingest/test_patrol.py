"""The patrol loop: failures are contained and reported, back-pressure holds visits back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
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


@dataclass
class SlowPipeline(RecordingPipeline):
    """Each visit takes `seconds`; records the most visits in flight at once."""

    seconds: float = 0.02
    now: int = 0
    most: int = 0

    def visit(self, camera: Camera, seq: int) -> VisitResult:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(self.seconds)
        with self.lock:
            self.now -= 1
        return super().visit(camera, seq)


def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.01)
    return check()


def test_the_in_flight_bound_halves_when_inference_falls_behind_and_climbs_back() -> None:
    # given: 8 workers, 32 cameras always due
    behind = threading.Event()
    pipeline = SlowPipeline()
    scheduler = InProcessScheduler(cams(*(f"c{i}" for i in range(32))), time.monotonic)
    patrol = Patrol(scheduler, pipeline, workers=8, pressure=behind.is_set)
    patrol.start()
    try:
        assert wait_for(lambda: pipeline.most == 8)
        # when: inference falls behind, then catches up
        behind.set()
        assert wait_for(lambda: patrol.stats.held_back > 0)
        behind.clear()
        # then: the bound was halved once, visits go on under it, and it climbs back to the workers
        assert patrol.report().in_flight_limit == 4
        assert wait_for(lambda: patrol.report().in_flight_limit == 8)
        assert pipeline.most <= 8
    finally:
        patrol.stop()


def test_the_patrol_feeds_visit_costs_to_the_scheduler_and_reports_them() -> None:
    patrol = run_patrol(RecordingPipeline(), cams("a", "b"), 0.3)

    report = patrol.report()
    latency = {c.camera_id: c.latency for c in report.schedule.cameras}
    assert latency["a"].connect_p50 == 1 and latency["a"].first_keyframe_p95 == 2
    assert report.visits >= 4 and report.schedule.revisit.samples >= 2
    health = patrol.health()
    assert set(health) == {"cameras", "patrol", "schedule", "camera_states"}
    assert health["cameras"] == {"unknown": 0, "online": 2, "degraded": 0, "offline": 0}
    states = health["camera_states"]
    assert isinstance(states, list)
    assert {"id", "name", "health", "failures", "visits", "last_error"} <= set(states[0])
    assert states[0]["latency_ms"]["connect_p50"] == 1.0
