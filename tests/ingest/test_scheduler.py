from __future__ import annotations

import random
import threading

from ingest.cameras import Camera
from ingest.scheduler import BackoffPolicy, Health, InProcessScheduler


class FakeTime:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def cams(n: int, revisit: float = 10.0) -> list[Camera]:
    return [Camera(id=f"c{i}", url=f"rtsp://h/{i}", revisit_s=revisit) for i in range(n)]


def make(n: int = 3, **kw: object) -> tuple[InProcessScheduler, FakeTime]:
    t = FakeTime()
    return InProcessScheduler(cams(n), t, rng=random.Random(1), **kw), t  # type: ignore[arg-type]


def test_round_robin_visits_every_camera_before_any_twice() -> None:
    sched, t = make(3)
    t.t += 1
    first = [sched.acquire(timeout=0) for _ in range(3)]
    assert sorted(c.id for c in first if c) == ["c0", "c1", "c2"]
    assert sched.acquire(timeout=0) is None  # all leased: none handed out twice
    for c in first:
        assert c is not None
        sched.complete(c.id)
    assert sched.acquire(timeout=0) is None  # not due again before revisit_s
    t.t += 10.5
    assert sched.acquire(timeout=0) is not None


def test_failures_back_off_and_go_offline_then_recover() -> None:
    sched, t = make(1, backoff=BackoffPolicy(base_s=20, max_s=100, offline_after=3, jitter=0))
    t.t += 1
    healths, delays = [], []
    for _ in range(4):
        cam = sched.acquire(timeout=0)
        assert cam is not None
        sched.complete(cam.id, "connection refused")
        state = sched.snapshot()[0]
        healths.append(state.health)
        delays.append(state.due - t.t)
        t.t = state.due
    assert healths == [Health.degraded, Health.degraded, Health.offline, Health.offline]
    assert delays == [20, 40, 80, 100]
    cam = sched.acquire(timeout=0)
    assert cam is not None
    change = sched.complete(cam.id)
    assert change is not None and change.after == Health.online
    assert sched.snapshot()[0].failures == 0


def test_request_visit_jumps_the_queue() -> None:
    sched, t = make(3)
    t.t += 1
    for _ in range(3):
        cam = sched.acquire(timeout=0)
        assert cam is not None
        sched.complete(cam.id)
    assert sched.request_visit("c2")
    cam = sched.acquire(timeout=0)
    assert cam is not None and cam.id == "c2"
    assert sched.request_visit("c2")  # leased right now: remembered, served after this visit
    assert sched.acquire(timeout=0) is None
    sched.complete("c2")
    again = sched.acquire(timeout=0)
    assert again is not None and again.id == "c2"
    assert not sched.request_visit("nope")  # not a patrolled camera


def test_disabled_cameras_are_never_visited() -> None:
    t = FakeTime()
    cameras = [Camera(id="on", url="rtsp://h/1"), Camera(id="off", url="rtsp://h/2", enabled=False)]
    sched = InProcessScheduler(cameras, t)
    t.t += 1
    assert [sched.acquire(timeout=0), sched.acquire(timeout=0)][1] is None


def test_close_wakes_blocked_workers() -> None:
    sched, _ = make(0)
    got: list[object] = []
    worker = threading.Thread(target=lambda: got.append(sched.acquire()))
    worker.start()
    sched.close()
    worker.join(5)
    assert not worker.is_alive() and got == [None]
