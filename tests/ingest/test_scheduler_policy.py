"""The scheduler's policy on simulated time: revisit targets, overload, unreachable cameras, requests, latency."""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ingest.cameras import Camera
from ingest.scheduler import InProcessScheduler, PlanPolicy
from ingest.scheduling import Health, Mode
from ingest.visit import VisitCost


class SimTime:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Sim:
    """`slots` visits at once; each visit of a camera lasts `duration(camera)` seconds, `None` meaning it times out."""

    scheduler: InProcessScheduler
    clock: SimTime
    slots: int
    duration: Callable[[Camera], float | None]
    timeout_s: float = 5.0
    done: dict[str, list[float]] = field(default_factory=dict)  # successful visits' completion times
    started: list[str] = field(default_factory=list)
    running: list[tuple[float, int, str, float | None]] = field(default_factory=list)

    def run(self, until: float, on_tick: Callable[[float], None] | None = None) -> None:
        running = self.running
        free, n = self.slots - len(running), len(self.started)
        while self.clock.t < until:
            while free and (cam := self.scheduler.acquire(timeout=0)) is not None:
                lasts = self.duration(cam)
                n += 1
                self.started.append(cam.id)
                heapq.heappush(running, (self.clock.t + (self.timeout_s if lasts is None else lasts), n, cam.id, lasts))
                free -= 1
            due = self.scheduler.next_due() if free else None
            upcoming = [until, *([running[0][0]] if running else []), *([] if due is None else [due])]
            self.clock.t = max(self.clock.t, min(upcoming))
            if on_tick is not None:
                on_tick(self.clock.t)
            while running and running[0][0] <= self.clock.t:
                _end, _n, cam_id, lasts = heapq.heappop(running)
                if lasts is None:
                    self.scheduler.complete(cam_id, "timed out")
                else:
                    ms = lasts * 1000
                    self.scheduler.complete(cam_id, None, VisitCost(ms * 0.2, ms * 0.8, 0, 0, 0, 0))
                    self.done.setdefault(cam_id, []).append(self.clock.t)
                free += 1

    def worst_gap(self, cam_id: str, since: float) -> float:
        times = [t for t in self.done.get(cam_id, []) if t >= since]
        if not times:
            return float("inf")
        ends = [*times, self.clock.t]
        return max(b - a for a, b in itertools.pairwise(ends)) if len(ends) > 1 else 0.0


def fleet(n: int, revisit: float = 60.0, priority: Callable[[int], int] = lambda i: 0) -> list[Camera]:
    return [Camera(id=f"c{i}", url=f"rtsp://h/{i}", revisit_s=revisit, priority=priority(i)) for i in range(n)]


def simulate(cameras: Sequence[Camera], slots: int, duration: Callable[[Camera], float | None], **kw: object) -> Sim:
    clock = SimTime()
    sched = InProcessScheduler(cameras, clock, rng=random.Random(1), **kw)  # type: ignore[arg-type]
    return Sim(sched, clock, slots, duration)


def jittered(seed: int = 2, base: float = 0.5) -> Callable[[Camera], float]:
    rng = random.Random(seed)
    return lambda cam: base * rng.uniform(0.75, 1.25)


def test_every_camera_meets_its_target_when_capacity_allows() -> None:
    # given: 600 cameras at 60 s, visits of 0.5 s +-25 %: 5 visits in flight are needed, 6 slots
    sim = simulate(fleet(600), 6, jittered())
    # when
    sim.run(600)
    # then: after the cold start every camera is revisited within its target (the lead covers the visit)
    gaps = [sim.worst_gap(f"c{i}", 240) for i in range(600)]
    assert max(gaps) <= 60.0
    assert sim.scheduler.report().mode is Mode.deadline


def test_under_overload_the_highest_priorities_keep_their_target() -> None:
    # given: 300 cameras, 30 of them priority 9; capacity for 70 % of the need
    cameras = fleet(300, priority=lambda i: 9 if i < 30 else 0)
    sim = simulate(cameras, 1, lambda cam: 60 / 300 / 0.7)
    # when
    sim.run(900)
    # then
    assert sim.scheduler.report().mode is Mode.overload
    high = [sim.worst_gap(f"c{i}", 300) for i in range(30)]
    low = [sim.worst_gap(f"c{i}", 300) for i in range(30, 300)]
    assert max(high) <= 61.0
    assert min(low) > 60.0  # the rest share what is left
    assert all(g < float("inf") for g in low)  # but are still visited


def test_unreachable_cameras_with_long_timeouts_do_not_reduce_coverage_of_the_rest() -> None:
    # given: 400 cameras, 5 % unreachable with 5 s timeouts, the same slots as for the reachable ones alone
    dead = {f"c{i}" for i in range(0, 400, 20)}
    visit = jittered()
    sim = simulate(fleet(400), 5, lambda cam: None if cam.id in dead else visit(cam))
    # when
    sim.run(1200)
    # then: after the first rounds every reachable camera keeps its target; the dead ones are tried less and less
    reachable = [f"c{i}" for i in range(400) if f"c{i}" not in dead]
    assert max(sim.worst_gap(c, 300) for c in reachable) <= 60.0
    tries = sim.started.count("c0")
    assert 3 <= tries <= 6  # at 0 s, then after about 2, 4, 8 minutes of backoff
    assert all(s.health is Health.offline for s in sim.scheduler.snapshot() if s.camera_id in dead)


def test_requests_go_ahead_of_the_round_but_cannot_starve_it() -> None:
    # given: 100 cameras at 60 s, 1 slot busy 0.5 s per visit (so 83 % of it is needed by the patrol)
    cameras = fleet(100)
    policy = PlanPolicy(request_share=0.2, request_burst=5)
    sim = simulate(cameras, 1, lambda cam: 0.5, policy=policy)
    sim.run(120)
    before = len(sim.started)
    # when: every camera asks for a visit at every step, a flood
    sim.run(300, on_tick=lambda t: [sim.scheduler.request_visit(f"c{i}") for i in range(0, 100, 7)])
    # then: requests were served, at most their share (plus the burst) of the visits
    report = sim.scheduler.report()
    visits = len(sim.started) - before
    assert report.requests_served > 0
    assert report.requests_served <= 0.2 * visits + 5 + 1
    # and the round still reaches the cameras nobody asks for
    unasked = [f"c{i}" for i in range(100) if i % 7]
    assert max(sim.worst_gap(c, 120) for c in unasked) <= 90.0


def test_a_request_is_served_at_once_and_a_leased_camera_is_visited_again_after_its_visit() -> None:
    clock = SimTime()
    sched = InProcessScheduler(fleet(3, revisit=10), clock)
    clock.t = 1
    leased = [sched.acquire(timeout=0) for _ in range(3)]
    assert all(c is not None for c in leased)
    for c in leased[1:]:
        assert c is not None
        sched.complete(c.id)
    # when: an alarm for c0 while it is being visited, and for c2 which is idle
    assert sched.request_visit("c0") and sched.request_visit("c2")
    # then: c2 at once, c0 right after its visit ends, though neither is due for 10 s
    nxt = sched.acquire(timeout=0)
    assert nxt is not None and nxt.id == "c2"
    assert sched.acquire(timeout=0) is None
    sched.complete("c0")
    again = sched.acquire(timeout=0)
    assert again is not None and again.id == "c0"
    assert sched.report().requests_served == 2


def test_latency_is_kept_per_camera_and_plans_the_next_visit_earlier() -> None:
    clock = SimTime()
    sched = InProcessScheduler(fleet(1, revisit=60), clock)
    for connect, keyframe in [(100, 900), (120, 1500), (80, 700)]:
        cam = sched.acquire(timeout=0)
        assert cam is not None
        clock.t += (connect + keyframe) / 1000
        sched.complete(cam.id, None, VisitCost(connect, keyframe, 0, 0, 0, 0))
        state = sched.snapshot()[0]
        clock.t = state.due
    state = sched.snapshot()[0]
    lat = state.latency
    assert (lat.connect_p50, lat.connect_p95) == (100, 120)
    assert (lat.first_keyframe_p50, lat.first_keyframe_p95) == (900, 1500)
    assert state.last_visit is not None
    # the next visit starts early by the longest recent visit (1.62 s) plus 25 %, and 1 % of the target
    assert abs((state.last_visit + 60 - state.due) - (1.62 * 1.25 + 0.6)) < 1e-9


def test_the_report_has_revisit_figures_and_coverage() -> None:
    sim = simulate(fleet(50, revisit=10), 2, lambda cam: 0.1)
    sim.run(100)
    report = sim.scheduler.report()
    assert report.enabled == 50 and report.offline == 0
    assert report.within_target == 1.0
    rv = report.revisit
    assert rv.samples > 300 and rv.p50 is not None and rv.p95 is not None and rv.max is not None
    assert 9.0 < rv.p50 <= rv.p95 <= rv.max <= 10.0
    assert rv.late_share == 0.0
