"""The in-process patrol scheduler: deadline first while the patrol keeps up, priority first when it cannot.

Workers call `acquire()` for the next camera (blocking until one is due), visit it and report with `complete()`,
passing the visit's cost. A camera is never leased to two workers at once.

Policy. Each camera has a revisit target `revisit_s` and a priority 0-9. A visit is planned to *start* at
`due = last_visit + revisit_s - lead`, where `lead` is the longest of the camera's last 16 visits plus 25 % (from
the costs `complete()` is given, kept in a small ring per camera) plus 1 % of the target for the wait for a free
worker, so that it *finishes* within its target even when this visit is slower than the recent ones.
- While the patrol keeps up, due cameras are taken earliest deadline first (EDF). On one resource with
  preemption EDF meets every deadline whenever any order can (Liu & Layland 1973); visits are short against their
  targets, so this is close to that case, and it needs no tuning per camera.
- EDF degrades badly under overload: every camera becomes late, and lateness dominoes from one camera to the next,
  so nobody is served on time. The scheduler watches the lateness of the revisits it hands out (a decayed mean of
  `(start - due) / revisit_s`; first visits after a start do not count); above `overload_enter` it switches to
  priority, then deadline, so the highest priorities keep their targets and the lower ones share what is left;
  below `overload_exit` it goes back to EDF.
- Failures push the next visit out by an exponential backoff with jitter, doubling from twice the camera's own
  target, so unreachable cameras are visited less and less. Their visits (which likely end in a timeout) wait in
  a heap of their own and hold at most `failing_share` of the workers (the most leased at once so far), so their
  timeouts cannot crowd out the reachable cameras, and they are still retried under overload. Consecutive
  failures move a camera from online to degraded to offline; a success brings it back online.
- `request_visit()` (sensor alarm, open event, operator) puts a camera ahead of the round. Requests spend credit
  that regular visits earn (`request_share` of all visits, `request_burst` at most at once), so a flood of
  requests cannot starve the patrol. A request for a camera being visited is served after that visit.

Cost: a heap of planned starts and heaps of due cameras (ordered by the mode's key); each visit moves its camera
through two of them once, O(log n): about 15 µs per acquire + complete at 100,000 cameras (docs/patrol.md).
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ingest.cameras import Camera
from ingest.schedule_policy import (
    REVISIT_WINDOW,
    BackoffPolicy,
    LatencyRing,
    PlanPolicy,
    observe_lateness,
    p50,
    p95,
    plan_after_visit,
)
from ingest.scheduling import (
    CameraReport,
    Health,
    HealthChange,
    Latency,
    Mode,
    RevisitFigures,
    ScheduleReport,
    VisitCostLike,
)

__all__ = ["BackoffPolicy", "Health", "HealthChange", "InProcessScheduler", "PlanPolicy"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _State:
    camera: Camera
    due: float
    ticket: int = 0  # heap entries with another ticket are stale
    health: Health = Health.unknown
    failures: int = 0
    visits: int = 0
    last_error: str = ""
    last_visit: float | None = None
    leased: bool = False
    requested: bool = False
    lead_s: float = 0.0
    early: float = 0.0  # how much earlier than its lead the visit was planned, for the wait (not lateness)
    ring: LatencyRing = field(default_factory=LatencyRing)

    def latency(self) -> Latency:
        return self.ring.latency()


@dataclass
class InProcessScheduler:
    cameras: Sequence[Camera]
    monotonic: Callable[[], float]
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    rng: random.Random = field(default_factory=random.Random)
    policy: PlanPolicy = field(default_factory=PlanPolicy)

    def __post_init__(self) -> None:
        now = self.monotonic()
        self._cond = threading.Condition()
        self._closed = False
        self._tickets = 0
        self._mode = Mode.deadline
        self._lateness = 0.0
        self._credit = self.policy.request_burst
        self._requests: deque[str] = deque()
        self._served = 0
        self._leased = 0
        self._peak_leased = 1  # the most leased at once so far: how many workers there are, roughly
        self._failing_leased = 0
        self._revisits = array("d", bytes(8 * REVISIT_WINDOW))
        self._revisit_late = bytearray(REVISIT_WINDOW)
        self._revisit_n = 0
        self._timer: list[tuple[float, int, str]] = []  # (due, ticket, id): planned, not yet due
        self._ready: list[tuple[float, float, int, str]] = []  # (mode's key, ticket, id): due, waiting
        self._retry: list[tuple[float, int, str]] = []  # (due, ticket, id): due, waiting, failing
        # first visits are spread (at most over the revisit target) so a restart does not open every stream at once
        enabled = [c for c in self.cameras if c.enabled]
        self._states: dict[str, _State] = {}
        for i, c in enumerate(enabled):
            self._states[c.id] = state = _State(c, 0.0)
            self._plan(state, now + i * min(0.01, c.revisit_s / len(enabled)), now)

    # -- the workers' side

    def acquire(self, timeout: float | None = None) -> Camera | None:
        """The next camera to visit, leased to the caller; None on close or when `timeout` passes (0: no wait)."""
        deadline = None if timeout is None else self.monotonic() + timeout
        with self._cond:
            while not self._closed:
                now = self.monotonic()
                state = self._take(now)
                if state is not None:
                    state.leased = True
                    self._leased += 1
                    self._peak_leased = max(self._peak_leased, self._leased)
                    self._failing_leased += state.failures > 0
                    return state.camera
                wait = self._wait(now)
                if deadline is not None:
                    wait = min(wait, deadline - now)
                    if wait <= 0:
                        return None
                self._cond.wait(timeout=wait)
            return None

    def complete(
        self, camera_id: str, error: str | None = None, cost: VisitCostLike | None = None
    ) -> HealthChange | None:
        """Release the lease, learn the visit's latency, plan the next visit; returns the health change, if any."""
        with self._cond:
            state = self._states[camera_id]
            now = self.monotonic()
            before = state.health
            if state.leased:
                state.leased = False
                self._leased -= 1
                self._failing_leased -= state.failures > 0
            if state.last_visit is not None:
                self._record_revisit(now - state.last_visit, state.camera.revisit_s)
            state.visits, state.last_visit = state.visits + 1, now
            p = self.policy
            plan = plan_after_visit(
                now,
                state.camera.revisit_s,
                state.failures,
                state.lead_s,
                state.ring,
                error,
                cost,
                p,
                self.backoff,
                self.rng,
            )
            state.failures, state.health, state.lead_s, state.early = (
                plan.failures,
                plan.health,
                plan.lead_s,
                plan.early,
            )
            state.last_error = error or ""
            due = plan.due
            self._plan(state, due, now)
            if state.requested:  # asked for while being visited: served after this visit
                self._requests.append(camera_id)
            self._cond.notify()
        if before != state.health:
            logger.info("camera %s: %s -> %s %s", camera_id, before, state.health, error or "")
            return HealthChange(camera_id, before, state.health, error or "")
        return None

    def request_visit(self, camera_id: str) -> bool:
        """Visit a camera ahead of the round, within the requests' share; a camera being visited is visited again
        after this visit. False for a camera that is not patrolled (unknown or disabled)."""
        with self._cond:
            state = self._states.get(camera_id)
            if state is None or self._closed:
                return False
            if not state.requested:
                state.requested = True
                if not state.leased:
                    self._requests.append(camera_id)
                self._cond.notify()
            return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def next_due(self) -> float | None:
        """When `acquire` would next hand out a camera, on the scheduler's clock (None: nothing planned)."""
        with self._cond:
            now = self.monotonic()
            if (self._requests and self._credit >= 1) or self._ready or (self._retry and self._may_retry()):
                return now
            self._prune_timer()
            return self._timer[0][0] if self._timer else None

    # -- planning

    def _plan(self, state: _State, due: float, now: float) -> None:
        self._tickets += 1
        state.due, state.ticket = due, self._tickets
        if due <= now:
            self._make_ready(state)
        else:
            heapq.heappush(self._timer, (due, state.ticket, state.camera.id))

    def _make_ready(self, state: _State) -> None:
        if state.failures:
            heapq.heappush(self._retry, (state.due, state.ticket, state.camera.id))
        else:
            heapq.heappush(self._ready, (*self._key(state), state.ticket, state.camera.id))

    def _may_retry(self) -> bool:
        """Failing cameras (likely to hold a worker until a timeout) get at most a share of the workers."""
        return self._failing_leased < self.policy.failing_cap(self._peak_leased)

    def _key(self, state: _State) -> tuple[float, float]:
        rank = float(9 - state.camera.priority)
        return (state.due, rank) if self._mode is Mode.deadline else (rank, state.due)

    def _take(self, now: float) -> _State | None:
        """The camera to lease now: a request while there is credit, else the first due camera in the mode's order."""
        timer, ready, states = self._timer, self._ready, self._states
        while timer and timer[0][0] <= now:
            _due, ticket, cam_id = heapq.heappop(timer)
            state = states[cam_id]
            if ticket == state.ticket:
                self._make_ready(state)
        while self._retry and self._may_retry():
            _due, ticket, cam_id = heapq.heappop(self._retry)
            state = states[cam_id]
            if ticket == state.ticket:
                state.requested = False
                state.ticket = -1
                return state
        while self._requests and self._credit >= 1:
            state = states[self._requests.popleft()]
            if not state.requested or state.leased:  # served by a regular visit already, or queued again at complete
                continue
            state.requested = False
            state.ticket = -1  # its planned entry is stale: the next complete plans it anew
            self._credit -= 1
            self._served += 1
            return state
        while ready:
            *_key, ticket, cam_id = heapq.heappop(ready)
            state = states[cam_id]
            if ticket != state.ticket:
                continue
            state.requested = False  # this visit serves a waiting request too
            state.ticket = -1
            self._credit = min(self.policy.request_burst, self._credit + self.policy.earned)
            if state.last_visit is not None:  # a first visit is not a revisit: a cold start is no overload
                self._observe_lateness((now - state.due - state.early) / state.camera.revisit_s)
            return state
        return None

    def _observe_lateness(self, late: float) -> None:
        self._lateness, mode = observe_lateness(self._lateness, self._mode, late, self.policy)
        if mode is not self._mode:
            self._switch(mode)

    def _switch(self, mode: Mode) -> None:
        logger.warning(
            "patrol scheduler: %s -> %s (mean lateness %.2f of the target)", self._mode, mode, self._lateness
        )
        self._mode = mode
        states = self._states
        live = [(t, c) for *_k, t, c in self._ready if states[c].ticket == t]
        self._ready = [(*self._key(states[c]), t, c) for t, c in live]
        heapq.heapify(self._ready)

    def _prune_timer(self) -> None:
        while self._timer and self._timer[0][1] != self._states[self._timer[0][2]].ticket:
            heapq.heappop(self._timer)

    def _wait(self, now: float) -> float:
        """Until the next planned start (requests waiting for credit earn it from regular visits)."""
        self._prune_timer()
        return max(0.0, self._timer[0][0] - now) if self._timer else 3600.0

    def _record_revisit(self, interval: float, target: float) -> None:
        i = self._revisit_n % REVISIT_WINDOW
        self._revisits[i], self._revisit_late[i] = interval, interval > target
        self._revisit_n += 1

    # -- reports

    def snapshot(self) -> list[CameraReport]:
        with self._cond:
            return [self._camera_report(s) for s in self._states.values()]

    def report(self) -> ScheduleReport:
        with self._cond:
            now = self.monotonic()
            cameras = tuple(self._camera_report(s) for s in self._states.values())
            n = min(self._revisit_n, REVISIT_WINDOW)
            intervals = sorted(self._revisits[:n])
            revisit = RevisitFigures(
                n,
                p50(intervals) if n else None,
                p95(intervals) if n else None,
                intervals[-1] if n else None,
                sum(self._revisit_late[:n]) / n if n else None,
            )
            fresh = sum(1 for c in cameras if c.last_visit is not None and now - c.last_visit <= c.revisit_s)
            return ScheduleReport(
                at=now,
                mode=self._mode,
                lateness=self._lateness,
                enabled=len(cameras),
                within_target=fresh / len(cameras) if cameras else 1.0,
                in_flight=self._leased,
                offline=sum(1 for c in cameras if c.health is Health.offline),
                requests_pending=sum(1 for c in cameras if c.requested),
                requests_served=self._served,
                revisit=revisit,
                cameras=cameras,
            )

    @staticmethod
    def _camera_report(s: _State) -> CameraReport:
        c = s.camera
        return CameraReport(
            c.id,
            c.name,
            c.priority,
            c.revisit_s,
            s.health,
            s.failures,
            s.visits,
            s.last_error,
            s.last_visit,
            s.due,
            s.leased,
            s.requested,
            s.latency(),
        )
