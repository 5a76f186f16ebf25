"""The composition root of `gridwatch worker`: a patrol worker of a patrol shared through Redis, and nothing else.

It builds the detector, the rules (their state and incidents in Redis), the visit pipeline and the patrol on the
Redis scheduler, and hands its events to the Redis stream, from which the process running the intake
(`gridwatch run` with `patrol.backend: redis`) stores them. No API, no intake, no local database. Several workers
run on one host or many; each stops on SIGINT / SIGTERM after its visits in flight (their cameras are released as
they complete; a worker killed outright has its cameras taken back after `patrol.lease_s`).
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from core.clock import SystemClock
from core.errors import ConfigError
from core.settings import Settings
from detectors.batcher import MicroBatcher
from gridwatch.redis_setup import RedisParts
from gridwatch.runtime import RulesHolder, build_detector, deliver_close, inference_workers, visit_parts
from incidents.tracker import IncidentTracker
from ingest.cameras import Camera, load_cameras
from ingest.health import CameraHealthIncidents
from ingest.patrol import Patrol
from ingest.scheduler import HealthChange
from intake.handoff import QueuedSink
from rules.categories import load_categories

logger = logging.getLogger(__name__)

STATUS_EVERY_S = 60.0


@dataclass
class Worker:
    settings: Settings
    shared: RedisParts
    patrol: Patrol
    batcher: MicroBatcher
    rules: RulesHolder
    handoff: QueuedSink
    health: CameraHealthIncidents
    stop_event: threading.Event

    def start(self) -> None:
        self.patrol.start()
        threading.Thread(target=self._poll_rules, name="rules-reload", daemon=True).start()

    def _poll_rules(self) -> None:
        while not self.stop_event.wait(self.settings.patrol.rules_poll_s):
            try:
                self.rules.poll()
            except Exception:  # loop boundary: hot reload must outlive any one bad file
                logger.exception("rules reload failed; the last good rules keep running")

    def stop(self) -> None:
        """Finish the visits in flight, hand their events to the stream; incidents stay open for the others."""
        self.stop_event.set()
        self.patrol.stop()
        self.handoff.stop()
        self.batcher.close()
        self.shared.close()

    def status(self) -> str:
        r = self.patrol.report()
        s = r.schedule
        return (
            f"worker {self.shared.name}: {r.visits} visits, {r.failures} failures, {r.events} events; patrol "
            f"{s.enabled} cameras, {s.within_target:.0%} within target, {s.in_flight} in flight, mode {s.mode}"
        )


def build_worker(config_dir: Path, settings: Settings) -> Worker:
    shared = RedisParts.connect(settings)
    if shared is None:
        raise ConfigError(["a worker needs a shared patrol: `--redis URL` or patrol.backend redis"])
    # continuous cameras are held open by `gridwatch run` alone: a worker each would open them all once more
    cameras = [c for c in load_cameras(config_dir / "cameras.yaml") if c.mode != "continuous"]
    by_id = {c.id: c for c in cameras}
    detector = build_detector(settings)
    det = settings.detector
    batcher = MicroBatcher(
        detector,
        max_batch=det.max_batch,
        max_wait_ms=det.max_wait_ms,
        max_queue=det.max_queue,
        workers=inference_workers(settings, detector.providers),
    )
    clock = SystemClock()
    sink = QueuedSink(shared.event_sink(), maxsize=settings.intake.handoff_queue)
    rules = RulesHolder(
        config_dir / "rules",
        detector.labels,
        cameras,
        categories=load_categories(config_dir),
        deliver=lambda change, facts: deliver_close(sink, change, facts, by_id),
        state=shared.rule_state(),
        incidents=IncidentTracker(shared.incidents()),
    )
    health = CameraHealthIncidents(IncidentTracker(shared.incidents()))

    def on_health(camera: Camera, change: HealthChange) -> None:
        health.report(camera, change, clock.now(), sink)

    p = settings.patrol
    pipeline, backoff = visit_parts(settings, batcher, rules, sink, clock)
    scheduler = shared.scheduler(cameras, lambda: clock.now().timestamp(), backoff)
    patrol = Patrol(
        scheduler, pipeline, workers=p.max_in_flight, pressure=lambda: batcher.saturated, on_health=on_health
    )
    logger.info("%d cameras, %d rules, model %s", len(cameras), len(rules.engine().ruleset.rules), detector.name)
    return Worker(settings, shared, patrol, batcher, rules, sink, health, threading.Event())


def run_worker(config_dir: Path, settings: Settings) -> None:
    """Patrol until SIGINT / SIGTERM."""
    worker = build_worker(config_dir, settings)
    done = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("worker stopping (signal %d)", signum)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker.start()
    try:
        while not done.wait(STATUS_EVERY_S):
            logger.info("%s", worker.status())
    finally:
        worker.stop()
