"""The patrol: worker threads that take due cameras from the scheduler and visit them.

Each worker holds one visit at a time, so `workers` threads keep at most that many visits in flight. Decoding
(PyAV) and inference (ONNX Runtime) release the GIL, so threads overlap the waits and the compute. A failing
camera is caught at the loop boundary, logged (sanitised) and backed off; the other cameras go on.

The bound actually used adapts to inference back-pressure (`pressure()`, the batcher's high-water mark): while
inference is behind no visit starts, and each time it falls behind the bound is halved; every visit made without
pressure raises it by 1/bound, back up to `workers` (additive increase, multiplicative decrease, as TCP does), so
the patrol settles at the number of visits in flight that inference can absorb instead of filling its queue again
at every release.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from core.errors import GrabError
from core.events import EventState
from core.redact import redact_text
from core.types import Frame
from ingest.cameras import Camera
from ingest.continuous import ContinuousWatch, Observer
from ingest.grabber import GrabTimeouts, VisitTiming
from ingest.scheduling import CameraReport, EventCounts, HealthChange, PatrolReport, Scheduler, WorkerReport
from ingest.telemetry import PhaseHistogram, RateWindow, VisitHistograms
from ingest.visit import GrabTimingLike, VisitCost, VisitResult, median_cost

logger = logging.getLogger(__name__)


@dataclass
class PatrolStats:
    visits: int = 0
    failures: int = 0
    events: int = 0
    held_back: int = 0  # times a worker waited for inference to catch up before its next visit
    gated: int = 0  # visits whose inference change gating skipped (the last detections carried)
    recent: deque[VisitCost] = field(default_factory=lambda: deque(maxlen=500))
    by_state: dict[EventState, int] = field(default_factory=lambda: dict.fromkeys(EventState, 0))
    histograms: VisitHistograms = field(default_factory=VisitHistograms)

    def as_dict(self) -> dict[str, object]:
        med = median_cost(list(self.recent))
        return {
            "visits": self.visits,
            "failures": self.failures,
            "events": self.events,
            "held_back": self.held_back,
            "gated": self.gated,
            "median_ms": {
                "connect": round(med.connect, 2),
                "first_keyframe": round(med.first_keyframe, 2),
                "decode": round(med.decode, 2),
                "inference": round(med.inference, 2),
                "rules": round(med.rules, 2),
                "evidence": round(med.evidence, 2),
                "total": round(med.total, 2),
            },
        }


class Pipeline(Protocol):
    def visit(self, camera: Camera, seq: int) -> VisitResult: ...

    def observe_frames(self, camera: Camera, frames: Sequence[Frame], grab: GrabTimingLike) -> VisitResult: ...


class Patrol:
    def __init__(
        self,
        scheduler: Scheduler,
        pipeline: Pipeline,
        *,
        workers: int,
        on_result: Callable[[VisitResult], None] | None = None,
        pressure: Callable[[], bool] | None = None,
        on_health: Callable[[Camera, HealthChange], None] | None = None,
        continuous: Sequence[Camera] = (),
        timeouts: GrabTimeouts | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        name: str | None = None,
    ) -> None:
        """`pressure()` true means inference is behind: workers start no new visit until it clears.
        `continuous`: the cameras held open beside the round (`ingest.continuous`), each taking one of the
        `workers` slots; the scheduler must not hold them. `name` names this worker process in the reports
        (default: host name and process id)."""
        self._scheduler = scheduler
        self._pressure = pressure
        self._on_health = on_health
        self._pipeline = pipeline
        self._workers = workers
        self._on_result = on_result
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._slots = threading.Condition(self._lock)
        self._limit = float(workers)  # the adaptive bound on visits in flight, 1..workers
        self._reserved = 0  # workers past the bound: acquiring or visiting
        self._visiting = 0
        self._pressed = False
        self._seq: dict[str, int] = {}
        self._monotonic = monotonic
        self._rate = RateWindow(monotonic())
        self.name = name if name is not None else f"{socket.gethostname()}:{os.getpid()}"
        self.stats = PatrolStats()
        observer = Observer(self._observe_window, on_health)
        self.watches = [ContinuousWatch(c, observer, timeouts or GrabTimeouts()) for c in continuous]
        if self.watches and workers <= len(self.watches):
            logger.warning(
                "%d continuous cameras take %d of %d patrol slots: one worker is left for the round",
                len(self.watches),
                min(workers, len(self.watches)),
                workers,
            )
        self._workers = max(1, workers - len(self.watches))
        self._limit = float(self._workers)

    def start(self) -> None:
        for watch in self.watches:
            watch.start()
        for i in range(self._workers):
            t = threading.Thread(target=self._run, name=f"patrol-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        logger.info("patrol started with %d workers", self._workers)

    def stop(self, timeout: float = 15.0) -> None:
        """Let each worker finish its visit, waiting `timeout` seconds in all (not per worker)."""
        self._stop.set()
        self._scheduler.close()
        for watch in self.watches:
            watch.stop()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self._threads if t.is_alive()]
        stuck += [
            f"continuous-{w.camera.id}" for w in self.watches if not w.join(max(0.0, deadline - time.monotonic()))
        ]
        if stuck:
            logger.warning("patrol workers still in a visit after %.0f s: %s", timeout, ", ".join(stuck))
        self._threads.clear()

    def _observe_window(self, camera: Camera, frames: list[Frame], timing: VisitTiming) -> None:
        self._record(self._pipeline.observe_frames(camera, frames, timing))

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._pressure is not None and self._pressure():
                self._back_off()
                self._stop.wait(0.01)
                continue
            if not self._reserve():
                continue
            try:
                self._visit_next()
            finally:
                with self._slots:
                    self._reserved -= 1
                    self._slots.notify()

    def _back_off(self) -> None:
        with self._lock:
            self.stats.held_back += 1
            if not self._pressed:  # once per time inference falls behind
                self._pressed = True
                self._limit = max(1.0, self._limit / 2)

    def _reserve(self) -> bool:
        """A place under the in-flight bound; False after a short wait for one."""
        with self._slots:
            self._pressed = False
            if self._reserved >= int(self._limit):
                self._slots.wait(0.05)
                return False
            self._reserved += 1
            return True

    def _visit_next(self) -> None:
        camera = self._scheduler.acquire(timeout=1.0)
        if camera is None:
            return
        with self._lock:
            seq = self._seq[camera.id] = self._seq.get(camera.id, 0) + 1
            self._visiting += 1
        error: str | None = None
        cost: VisitCost | None = None
        try:
            result = self._pipeline.visit(camera, seq)
        except GrabError as exc:
            error = str(exc)
            logger.warning("visit failed: %s", error)
        except Exception as exc:  # loop boundary: one camera never stops the patrol
            error = redact_text(f"{type(exc).__name__}: {exc}")
            logger.exception("visit of camera %s crashed", camera.id)
        else:
            cost = result.cost
            self._record(result)
        finally:
            change = self._scheduler.complete(camera.id, error, cost)
            with self._lock:
                self._visiting -= 1
                if error is None and not self._pressed:
                    self._limit = min(float(self._workers), self._limit + 1 / self._limit)
        if change is not None and self._on_health is not None:
            try:
                self._on_health(camera, change)
            except Exception:  # a failing observer never stops the patrol
                logger.exception("health observer failed for camera %s", camera.id)
        with self._lock:
            self._rate.add(self._monotonic())
            if error is not None:
                self.stats.failures += 1

    def _record(self, result: VisitResult) -> None:
        with self._lock:
            self.stats.visits += 1
            self.stats.gated += int(result.gated)
            self.stats.events += len(result.events)
            self.stats.recent.append(result.cost)
            self.stats.histograms.observe(result.cost)
            for event in result.events:
                self.stats.by_state[event.state] += 1
        if self._on_result is not None:
            try:
                self._on_result(result)
            except Exception:  # a failing observer never stops the patrol
                logger.exception("visit observer failed")

    def report(self) -> PatrolReport:
        schedule = self._scheduler.report()
        with self._lock:
            st = self.stats
            own = WorkerReport(self.name, self._workers, self._visiting)
            return PatrolReport(
                schedule,
                self._workers,
                self._visiting,
                int(self._limit),
                st.visits,
                st.failures,
                st.events,
                st.held_back,
                alive=schedule.workers or (own,),
                visits_per_s=self._rate.rate(self._monotonic()),
                median_cost=median_cost(list(st.recent)) if st.recent else None,
                events_by_state=EventCounts(**{s.value: st.by_state[s] for s in EventState}),
                histograms=st.histograms.snapshot(),
                gated=st.gated,
            )

    def histograms(self) -> tuple[PhaseHistogram, ...]:
        """The visit-phase histograms alone (what `report()` holds too), without a scheduler report."""
        with self._lock:
            return self.stats.histograms.snapshot()

    def health(self) -> dict[str, object]:
        """The `/healthz` details: camera counts, patrol figures, per-camera states (JSON values), from `report()`."""
        report = self.report()
        sched = report.schedule
        with self._lock:
            stats = self.stats.as_dict()
        stats |= {"in_flight": report.in_flight, "in_flight_limit": report.in_flight_limit, "workers": report.workers}
        rv = sched.revisit
        schedule = {
            "mode": sched.mode.value,
            "lateness": round(sched.lateness, 4),
            "enabled": sched.enabled,
            "within_target": round(sched.within_target, 4),
            "offline": sched.offline,
            "requests_pending": sched.requests_pending,
            "requests_served": sched.requests_served,
            "revisit_s": {"samples": rv.samples, "p50": _r(rv.p50), "p95": _r(rv.p95), "max": _r(rv.max)},
        }
        return {
            "cameras": {h.value: n for h, n in sched.counts().items()},
            "patrol": stats,
            "schedule": schedule,
            "camera_states": [_camera_json(c, sched.at) for c in sched.cameras],
        }


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _camera_json(c: CameraReport, now: float) -> dict[str, object]:
    lat = c.latency
    return {
        "id": c.camera_id,
        "name": c.name,
        "health": c.health.value,
        "failures": c.failures,
        "visits": c.visits,
        "last_error": c.last_error,
        "last_visit_s_ago": None if c.last_visit is None else round(now - c.last_visit, 2),
        "next_due_in_s": round(c.due - now, 2),
        "latency_ms": {
            "connect_p50": _r(lat.connect_p50),
            "connect_p95": _r(lat.connect_p95),
            "first_keyframe_p50": _r(lat.first_keyframe_p50),
            "first_keyframe_p95": _r(lat.first_keyframe_p95),
        },
    }
