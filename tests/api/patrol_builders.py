"""A real patrol to read through the API: an `InProcessScheduler` and a `Patrol` over cameras whose addresses
carry credentials, visited by a small pipeline (the camera is not the point here), seen through the
composition root's `RuntimePatrolView`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from core.clock import SystemClock
from core.errors import GrabError
from core.events import EventState
from gridwatch.patrol_view import RuntimePatrolView
from ingest.cameras import Camera
from ingest.patrol import Patrol
from ingest.scheduler import BackoffPolicy, InProcessScheduler
from ingest.visit import VisitCost, VisitResult
from tests.intake.builders import make_event

PASSWORD = "S3cret-Pw_42"
USER = "patroladmin"
COST = VisitCost(connect=40.0, first_keyframe=900.0, decode=5.0, inference=20.0, rules=1.0, evidence=0.0)
PLAIN = [f"cam-{i:03d}" for i in range(12)]  # reachable, target 1 hour: visited once
DEAD, OFF, FAST, EVENTFUL = "dead", "off", "fast", "cam-000"


def url(camera_id: str) -> str:
    return f"rtsp://{USER}:{PASSWORD}@10.1.2.3:554/Streaming/{camera_id}?token={PASSWORD}"


def fleet() -> list[Camera]:
    cams = [
        Camera(
            id=cid,
            name=f"东门 Gate {i}",
            url=url(cid),
            grid_code="310101001001" if i % 2 == 0 else "310102002001",
            revisit_s=3600,
            priority=i % 10,
        )
        for i, cid in enumerate(PLAIN)
    ]
    cams.append(Camera(id=DEAD, name="Dead camera", url=url(DEAD), revisit_s=3600))
    cams.append(Camera(id=OFF, name="Switched off", url=url(OFF), enabled=False))
    cams.append(Camera(id=FAST, name="Fast lane", url=url(FAST), revisit_s=0.05, mode="burst"))
    return cams


@dataclass
class SmallPipeline:
    """Stands in for the visit pipeline: a fixed cost; `dead` fails as the grabber does (address sanitised, the
    password quoted raw as well, to prove the API redacts it again); the eventful camera emits an open event."""

    visits: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def visit(self, camera: Camera, seq: int) -> VisitResult:
        with self.lock:
            self.visits.append(camera.id)
        if camera.id == DEAD:
            raise GrabError(f"camera {camera.id} ({camera.url}): connection refused")
        events = [make_event(camera_id=camera.id, state=EventState.open)] if camera.id == EVENTFUL and seq == 1 else []
        return VisitResult(camera.id, 1, len(events), events, COST)


@dataclass
class PatrolWorld:
    view: RuntimePatrolView
    scheduler: InProcessScheduler
    patrol: Patrol
    pipeline: SmallPipeline


def idle_world() -> PatrolWorld:
    """Nothing visited yet, the scheduler open (out-of-turn visits can be asked for)."""
    clock = SystemClock()
    cameras = fleet()
    scheduler = InProcessScheduler(cameras, clock.monotonic, BackoffPolicy(base_s=3600))
    pipeline = SmallPipeline()
    patrol = Patrol(scheduler, pipeline, workers=3, monotonic=clock.monotonic)
    return PatrolWorld(RuntimePatrolView(patrol, scheduler, cameras, clock), scheduler, patrol, pipeline)


@contextmanager
def patrolled_world() -> Iterator[PatrolWorld]:
    """Every enabled camera visited at least once, then the patrol stopped, so the figures hold still."""
    world = idle_world()
    world.patrol.start()
    try:
        deadline = time.monotonic() + 10
        while any(c.visits == 0 for c in world.scheduler.snapshot()):
            assert time.monotonic() < deadline, "the patrol did not visit every camera"
            time.sleep(0.01)
    finally:
        world.patrol.stop()
    time.sleep(0.06)  # past the fast camera's target: it is overdue now
    yield world
