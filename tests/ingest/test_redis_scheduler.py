"""The Redis patrol scheduler against a real Redis: atomic claims, dead workers' leases, restarts, shared patrols."""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import redis

from ingest.cameras import Camera
from ingest.patrol import Patrol
from ingest.redis_keys import RedisKeys
from ingest.redis_scheduler import LeaseSettings, RedisScheduler, due_now
from ingest.scheduling import Health
from ingest.visit import VisitCost, VisitResult
from tests.support.redis import RedisServer
from tests.support.redis_claimer import cameras


class SimClock:
    """Simulated wall time, shared by threads."""

    def __init__(self, t: float = 1_000_000.0) -> None:
        self._t = t
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._t

    def advance(self, dt: float) -> None:
        with self._lock:
            self._t += dt


@pytest.fixture
def keys(redis_server: RedisServer) -> RedisKeys:
    return RedisKeys(redis_server.namespace())


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    with redis_server.client() as c:
        yield c


def make(
    cams: list[Camera], client: redis.Redis, keys: RedisKeys, clock: SimClock, worker: str, lease_s: float = 30.0
) -> RedisScheduler:
    return RedisScheduler(
        cams,
        client,
        clock=clock,
        keys=keys,
        leases=LeaseSettings(lease_s=lease_s, heartbeat_s=lease_s / 6),
        heartbeat=False,
        worker_id=worker,
    )


COST = VisitCost(100.0, 200.0, 50.0, 30.0, 10.0, 10.0)


def test_claims_are_atomic_across_workers_and_threads(
    redis_server: RedisServer, client: redis.Redis, keys: RedisKeys
) -> None:
    # given two workers (scheduler instances, each with its own connection pool) of 8 threads over 200 cameras
    clock = SimClock()
    cams = cameras(200, revisit_s=1.0)
    workers = [
        make(cams, client, keys, clock, "w0"),
        make(cams, redis_server.client(), keys, clock, "w1"),
    ]
    held: set[str] = set()
    lock = threading.Lock()
    doubles: list[str] = []
    claims = [0, 0]

    def run(w: int) -> None:
        sched = workers[w]
        while sum(claims) < 4000:
            camera = sched.acquire(timeout=0)
            if camera is None:
                clock.advance(0.02)
                continue
            with lock:
                if camera.id in held:
                    doubles.append(camera.id)
                held.add(camera.id)
                claims[w] += 1
            time.sleep(0)  # let the other threads claim while this one holds the camera
            with lock:
                held.discard(camera.id)
            sched.complete(camera.id, None, COST)

    # when they all claim and complete thousands of times
    threads = [threading.Thread(target=run, args=(i % 2,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # then no camera was ever held twice at once, both workers had their share, and nothing is left leased
    assert doubles == []
    assert min(claims) > 500
    assert client.zcard(keys.leases) == 0
    report = workers[0].report()
    assert report.in_flight == 0 and sum(c.visits for c in report.cameras) == sum(claims)


def test_a_killed_workers_cameras_come_back_after_the_lease(
    redis_server: RedisServer, client: redis.Redis, keys: RedisKeys
) -> None:
    # given a worker process that claimed 20 of 50 cameras and was killed (SIGKILL) mid-visit
    clock = SimClock()
    cams = cameras(50)
    survivor = make(cams, client, keys, clock, "survivor")
    clock.advance(5.0)  # every first visit is due
    args = [sys.executable, "-m", "tests.support.redis_claimer", redis_server.url, keys.namespace, "50", "20"]
    with subprocess.Popen([*args, repr(clock())], stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(21)]
        proc.kill()
    assert lines[-1] == "ready"
    doomed = set(lines[:-1])
    killed_at = clock()

    # when the survivor patrols on (simulated time, visits taking no time)
    seen: dict[str, float] = {}
    while clock() < killed_at + 30.0 + 60.0:
        camera = survivor.acquire(timeout=0)
        if camera is None:
            clock.advance(0.1)
            continue
        if camera.id in doomed:
            assert clock() >= killed_at + 30.0, "a leased camera was handed out before its lease expired"
            seen.setdefault(camera.id, clock())
        survivor.complete(camera.id, None, COST)

    # then each of the dead worker's cameras was visited again within lease + target
    assert set(seen) == doomed
    assert max(seen.values()) <= killed_at + 30.0 + 60.0


def test_a_restarted_worker_keeps_the_due_times(client: redis.Redis, keys: RedisKeys) -> None:
    # given a worker that patrolled 200 cameras (60 s target) for 5 minutes
    clock = SimClock()
    cams = cameras(200)
    first = make(cams, client, keys, clock, "w")
    start = clock()
    while clock() < start + 300.0:
        camera = first.acquire(timeout=0)
        if camera is None:
            clock.advance(0.05)
            continue
        first.complete(camera.id, None, COST)
    planned = {c.camera_id: c.due for c in first.snapshot()}
    first.close()

    # when it restarts (a new instance registering the same cameras)
    clock.advance(1.0)
    again = make(cams, client, keys, clock, "w2")

    # then no due time moved and only the cameras due in that second are due now: no herd
    assert {c.camera_id: c.due for c in again.snapshot()} == planned
    assert due_now(client, keys, clock()) <= 8  # 200 cameras over 60 s: about 3.3 a second
    assert all(c.health is Health.online for c in again.snapshot())


def test_stale_leases_come_back_spread(client: redis.Redis, keys: RedisKeys) -> None:
    # given a worker that died holding 100 cameras
    clock = SimClock()
    cams = cameras(100)
    dead = make(cams, client, keys, clock, "dead")
    clock.advance(5.0)
    held = [dead.acquire(timeout=0) for _ in range(100)]
    assert all(h is not None for h in held)

    # when another worker starts after the lease expired
    clock.advance(31.0)
    other = make(cams, client, keys, clock, "other")
    first = other.acquire(timeout=0)

    # then they are re-queued spread out, not all due at once
    assert first is not None
    assert due_now(client, keys, clock()) <= 1
    assert due_now(client, keys, clock() + 1.0) <= 21


def test_requests_go_ahead_and_unknown_cameras_are_refused(client: redis.Redis, keys: RedisKeys) -> None:
    clock = SimClock()
    sched = make(cameras(10), client, keys, clock, "w")
    clock.advance(1.0)
    for _ in range(10):
        c = sched.acquire(timeout=0)
        assert c is not None
        sched.complete(c.id, None, COST)
    assert sched.acquire(timeout=0) is None
    assert sched.request_visit("cam007")
    assert not sched.request_visit("nope")
    got = sched.acquire(timeout=0)
    assert got is not None and got.id == "cam007"
    assert sched.report().requests_served == 1


def test_failures_back_off_and_report_health(client: redis.Redis, keys: RedisKeys) -> None:
    clock = SimClock()
    sched = make(cameras(1), client, keys, clock, "w")
    clock.advance(1.0)
    changes = []
    for _ in range(3):
        c = None
        while c is None:
            c = sched.acquire(timeout=0)
            if c is None:
                clock.advance(10.0)
        changes.append(sched.complete(c.id, "timeout", None))
    assert [ch.after for ch in changes if ch is not None] == [Health.degraded, Health.offline]
    assert sched.report().offline == 1


@dataclass
class Recorder:
    """A pipeline that records who visited which camera when, and checks nobody else is visiting it."""

    worker: str
    shared: dict[str, str]
    lock: threading.Lock
    visits: list[tuple[str, str, float]] = field(default_factory=list)
    doubles: list[str] = field(default_factory=list)

    def visit(self, camera: Camera, seq: int) -> VisitResult:
        with self.lock:
            if camera.id in self.shared:
                self.doubles.append(camera.id)
            self.shared[camera.id] = self.worker
        time.sleep(0.02)
        with self.lock:
            del self.shared[camera.id]
            self.visits.append((self.worker, camera.id, time.time()))
        return VisitResult(camera.id, 0, 0, [], COST)


def test_two_worker_processes_share_one_patrol(redis_server: RedisServer, keys: RedisKeys) -> None:
    # given two workers (own scheduler and connection each, 3 visits in flight each) over 12 cameras at 1.5 s
    cams = cameras(12, revisit_s=1.5)
    shared: dict[str, str] = {}
    lock = threading.Lock()
    patrols, recorders = [], []
    for w in ("a", "b"):
        sched = RedisScheduler(
            cams,
            redis_server.client(),
            keys=keys,
            leases=LeaseSettings(lease_s=10.0, heartbeat_s=1.0),
            worker_id=w,
        )
        rec = Recorder(w, shared, lock)
        recorders.append(rec)
        patrols.append(Patrol(sched, rec, workers=3))

    # when they patrol for about 5 s
    for p in patrols:
        p.start()
    time.sleep(5.0)
    for p in patrols:
        p.stop()

    # then every camera was visited by both workers over time, never by both at once, and each revisit kept
    # close to its target (the patrol has ample capacity: 12 cameras x 20 ms per 1.5 s)
    visits = sorted((t, cam, w) for r in recorders for w, cam, t in r.visits)
    assert all(not r.doubles for r in recorders)
    by_camera: dict[str, list[float]] = {}
    for t, cam, _w in visits:
        by_camera.setdefault(cam, []).append(t)
    assert set(by_camera) == {c.id for c in cams}
    assert {w for _t, _c, w in visits} == {"a", "b"}
    gaps = [b - a for times in by_camera.values() for a, b in itertools.pairwise(times)]
    assert gaps and max(gaps) <= 1.5 + 1.0


def test_a_flushed_redis_is_planned_again(client: redis.Redis, keys: RedisKeys) -> None:
    clock = SimClock()
    sched = make(cameras(5), client, keys, clock, "w")
    client.delete(*client.keys(f"{keys.namespace}*"))  # Redis restarted empty
    clock.advance(1.0)
    assert sched.acquire(timeout=0) is None  # finds the plan empty and registers again
    assert sched.acquire(timeout=0) is not None
