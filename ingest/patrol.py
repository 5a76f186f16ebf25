"""The patrol: worker threads that take due cameras from the scheduler and visit them.

Each worker holds one visit at a time, so `max_in_flight` workers keep that many visits in flight. Decoding
(PyAV) and inference (ONNX Runtime) release the GIL, so threads overlap the waits and the compute. A failing
camera is caught at the loop boundary, logged (sanitised) and backed off; the other cameras go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from core.errors import GrabError
from core.redact import redact_text
from ingest.cameras import Camera
from ingest.scheduler import Health, HealthChange, InProcessScheduler
from ingest.visit import VisitCost, VisitPipeline, VisitResult, median_cost

logger = logging.getLogger(__name__)


@dataclass
class PatrolStats:
    visits: int = 0
    failures: int = 0
    events: int = 0
    held_back: int = 0  # times a worker waited for inference to catch up before its next visit
    recent: deque[VisitCost] = field(default_factory=lambda: deque(maxlen=500))

    def as_dict(self) -> dict[str, object]:
        med = median_cost(list(self.recent))
        return {
            "visits": self.visits,
            "failures": self.failures,
            "events": self.events,
            "held_back": self.held_back,
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


class Patrol:
    def __init__(
        self,
        scheduler: InProcessScheduler,
        pipeline: VisitPipeline,
        *,
        workers: int,
        on_result: Callable[[VisitResult], None] | None = None,
        pressure: Callable[[], bool] | None = None,
        on_health: Callable[[Camera, HealthChange], None] | None = None,
    ) -> None:
        """`pressure()` true means inference is behind: workers start no new visit until it clears."""
        self._scheduler = scheduler
        self._pressure = pressure
        self._on_health = on_health
        self._pipeline = pipeline
        self._workers = workers
        self._on_result = on_result
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._seq: dict[str, int] = {}
        self.stats = PatrolStats()

    def start(self) -> None:
        for i in range(self._workers):
            t = threading.Thread(target=self._run, name=f"patrol-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        logger.info("patrol started with %d workers", self._workers)

    def stop(self, timeout: float = 15.0) -> None:
        """Let each worker finish its visit, waiting `timeout` seconds in all (not per worker)."""
        self._stop.set()
        self._scheduler.close()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self._threads if t.is_alive()]
        if stuck:
            logger.warning("patrol workers still in a visit after %.0f s: %s", timeout, ", ".join(stuck))
        self._threads.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._pressure is not None and self._pressure():
                with self._lock:
                    self.stats.held_back += 1
                self._stop.wait(0.01)
                continue
            camera = self._scheduler.acquire(timeout=1.0)
            if camera is None:
                continue
            with self._lock:
                seq = self._seq[camera.id] = self._seq.get(camera.id, 0) + 1
            error: str | None = None
            try:
                result = self._pipeline.visit(camera, seq)
            except GrabError as exc:
                error = str(exc)
                logger.warning("visit failed: %s", error)
            except Exception as exc:  # loop boundary: one camera never stops the patrol
                error = redact_text(f"{type(exc).__name__}: {exc}")
                logger.exception("visit of camera %s crashed", camera.id)
            else:
                self._record(result)
            finally:
                change = self._scheduler.complete(camera.id, error)
            if change is not None and self._on_health is not None:
                try:
                    self._on_health(camera, change)
                except Exception:  # a failing observer never stops the patrol
                    logger.exception("health observer failed for camera %s", camera.id)
            if error is not None:
                with self._lock:
                    self.stats.failures += 1

    def _record(self, result: VisitResult) -> None:
        with self._lock:
            self.stats.visits += 1
            self.stats.events += len(result.events)
            self.stats.recent.append(result.cost)
        if self._on_result is not None:
            try:
                self._on_result(result)
            except Exception:  # a failing observer never stops the patrol
                logger.exception("visit observer failed")

    def health(self) -> dict[str, object]:
        states = self._scheduler.snapshot()
        counts = {h.value: 0 for h in Health}
        for s in states:
            counts[s.health.value] += 1
        with self._lock:
            stats = self.stats.as_dict()
        cameras = [
            {
                "id": s.camera.id,
                "name": s.camera.name,
                "health": s.health.value,
                "failures": s.failures,
                "visits": s.visits,
                "last_error": s.last_error,
            }
            for s in states
        ]
        return {"cameras": counts, "patrol": stats, "camera_states": cameras}
