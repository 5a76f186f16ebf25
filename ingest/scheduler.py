"""The in-process patrol scheduler: earliest deadline first over cameras, with backoff and health.

Workers call `acquire()` to take the camera whose visit is most overdue (blocking until one is due), visit it,
and report with `complete()`. A camera is never handed to two workers at once. Failures push the next visit
out by an exponential backoff with jitter, and consecutive failures move a camera from online to degraded to
offline; a success brings it back online. `request_visit()` moves a camera to the front (sensor alarm, operator).
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from ingest.cameras import Camera

logger = logging.getLogger(__name__)


class Health(StrEnum):
    unknown = "unknown"
    online = "online"
    degraded = "degraded"
    offline = "offline"


@dataclass(slots=True)
class CameraState:
    camera: Camera
    due: float
    health: Health = Health.unknown
    failures: int = 0
    visits: int = 0
    last_error: str = ""
    last_visit_mono: float | None = None
    leased: bool = False


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    base_s: float = 5.0
    max_s: float = 600.0
    offline_after: int = 3
    jitter: float = 0.2

    def delay(self, failures: int, rng: random.Random) -> float:
        raw = min(self.max_s, self.base_s * 2.0 ** max(0, failures - 1))
        return float(raw * rng.uniform(1 - self.jitter, 1 + self.jitter))


@dataclass(frozen=True, slots=True)
class HealthChange:
    camera_id: str
    before: Health
    after: Health
    error: str


@dataclass
class InProcessScheduler:
    cameras: Sequence[Camera]
    monotonic: Callable[[], float]
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        now = self.monotonic()
        self._cond = threading.Condition()
        self._closed = False
        # first visits are spread over a short window so a restart does not open every stream at once
        enabled = [c for c in self.cameras if c.enabled]
        self._states = {c.id: CameraState(c, due=now + i * 0.01) for i, c in enumerate(enabled)}
        self._heap: list[tuple[float, int, str]] = [
            (s.due, 9 - s.camera.priority, s.camera.id) for s in self._states.values()
        ]
        heapq.heapify(self._heap)

    def acquire(self, timeout: float | None = None) -> Camera | None:
        """The next due camera, leased to the caller; None on close or when `timeout` passes."""
        deadline = None if timeout is None else self.monotonic() + timeout
        with self._cond:
            while not self._closed:
                wait = self._pop_due()
                if isinstance(wait, Camera):
                    return wait
                if deadline is not None:
                    wait = min(wait, deadline - self.monotonic())
                    if wait <= 0:
                        return None
                self._cond.wait(timeout=max(0.0, wait))
            return None

    def _pop_due(self) -> Camera | float:
        """Pop the earliest due camera, or return how long to wait for it."""
        while self._heap:
            due, _prio, cam_id = self._heap[0]
            state = self._states.get(cam_id)
            if state is None or state.leased or due != state.due:
                heapq.heappop(self._heap)  # stale entry from a reschedule
                continue
            now = self.monotonic()
            if due > now:
                return due - now
            heapq.heappop(self._heap)
            state.leased = True
            return state.camera
        return 3600.0

    def complete(self, camera_id: str, error: str | None = None) -> HealthChange | None:
        """Release the lease and schedule the next visit; returns the health change, if any."""
        with self._cond:
            state = self._states[camera_id]
            now = self.monotonic()
            before = state.health
            state.leased, state.visits, state.last_visit_mono = False, state.visits + 1, now
            if error is None:
                state.failures, state.last_error, state.health = 0, "", Health.online
                delay = state.camera.revisit_s
            else:
                state.failures += 1
                state.last_error = error
                offline = state.failures >= self.backoff.offline_after
                state.health = Health.offline if offline else Health.degraded
                delay = max(state.camera.revisit_s, self.backoff.delay(state.failures, self.rng))
            self._push(state, now + delay)
        if before != state.health:
            logger.info("camera %s: %s -> %s %s", camera_id, before, state.health, error or "")
            return HealthChange(camera_id, before, state.health, error or "")
        return None

    def request_visit(self, camera_id: str) -> bool:
        """Visit a camera as soon as a worker is free (ignored while it is being visited)."""
        with self._cond:
            state = self._states.get(camera_id)
            if state is None or state.leased:
                return False
            self._push(state, self.monotonic())
            return True

    def _push(self, state: CameraState, due: float) -> None:
        state.due = due
        heapq.heappush(self._heap, (due, 9 - state.camera.priority, state.camera.id))
        self._cond.notify()

    def snapshot(self) -> list[CameraState]:
        with self._cond:
            return [replace(s) for s in self._states.values()]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
