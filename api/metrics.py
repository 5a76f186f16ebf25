"""Prometheus metrics, collected at scrape time from the patrol's typed reports: nothing is counted twice on the
visit path, and each app has a registry of its own (so tests build many apps, and nothing leaks between them).

Labels carry health states, results, phases, event states and outbox target names (settings keys): never a
camera address, a token or a secret.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from api.patrol_view import CameraHealth, PatrolStatus, PatrolView, Telemetry

logger = logging.getLogger(__name__)

PREFIX = "gridwatch_"
HEALTH: tuple[CameraHealth, ...] = ("unknown", "online", "degraded", "offline")


def _gauge(name: str, doc: str, value: float | None, unit: str = "") -> Iterator[Metric]:
    if value is not None:
        yield GaugeMetricFamily(PREFIX + name, doc, value=value, unit=unit)


class PatrolCollector(Collector):
    """The patrol's figures (`PatrolView.status()`, `.telemetry()`) as metric families, read at each scrape."""

    def __init__(self, view: PatrolView) -> None:
        self._view = view

    def describe(self) -> list[Metric]:
        return []  # nothing to check at registration: the families depend on what this process runs

    def collect(self) -> Iterator[Metric]:
        status, telemetry = self._view.status(), self._view.telemetry()
        yield from self._patrol(status)
        yield from self._telemetry(telemetry)

    def _patrol(self, s: PatrolStatus) -> Iterator[Metric]:
        visits = CounterMetricFamily(PREFIX + "visits", "Patrol visits, by result", labels=["result"])
        visits.add_metric(["ok"], s.visits - s.gated)
        visits.add_metric(["gated"], s.gated)
        visits.add_metric(["failed"], s.failures)
        yield visits
        cameras = GaugeMetricFamily(PREFIX + "cameras", "Enabled cameras, by health", labels=["health"])
        for health in HEALTH:
            cameras.add_metric([health], s.health.get(health, 0))
        yield cameras
        yield from _gauge("cameras_enabled", "Cameras the patrol visits", s.enabled)
        yield from _gauge("cameras_within_target_ratio", "Share of enabled cameras within target", s.within_target)
        rv = s.revisit_s
        yield from _gauge("revisit_p50_seconds", "Median revisit interval (last 4096 visits)", rv.p50)
        yield from _gauge("revisit_p95_seconds", "95th percentile revisit interval (last 4096 visits)", rv.p95)
        yield from _gauge("revisit_max_seconds", "Longest revisit interval (last 4096 visits)", rv.max)
        yield from _gauge("revisit_late_ratio", "Share of recent revisit intervals over target", rv.late_share)
        yield from _gauge("visits_in_flight", "Visits being made now", s.in_flight)
        yield from _gauge("visits_in_flight_limit", "The adaptive bound on visits in flight", s.in_flight_limit)
        yield from _gauge("visits_per_second", "Visits per second over the last minute", s.visits_per_s)
        yield from _gauge("patrol_workers", "Patrol worker processes alive", len(s.workers))
        yield from _gauge("scheduler_overload", "1 while the scheduler orders by priority first", s.mode == "overload")
        yield from _gauge("scheduler_lateness_ratio", "Decayed mean lateness as a share of target", s.lateness)
        yield from _gauge("visit_requests_pending", "Out-of-turn visits waiting", s.requests_pending)
        served = CounterMetricFamily(PREFIX + "visit_requests_served", "Out-of-turn visits made")
        served.add_metric([], s.requests_served)
        yield served
        events = CounterMetricFamily(PREFIX + "events", "Incident events the visits emitted", labels=["state"])
        for state, count in s.events_by_state.model_dump().items():
            events.add_metric([state], count)
        yield events

    def _telemetry(self, t: Telemetry) -> Iterator[Metric]:
        phases = HistogramMetricFamily(
            PREFIX + "visit_seconds", "Successful visits by the duration of each phase", labels=["phase"], unit=""
        )
        for h in t.visit_seconds:
            buckets = [(_le(b), float(n)) for b, n in zip(h.bounds_s, h.counts, strict=True)]
            phases.add_metric([h.phase], [*buckets, ("+Inf", float(h.count))], sum_value=h.sum_s)
        yield phases
        yield from _gauge("inference_queue_depth", "Frames waiting for inference", t.inference_queue)
        yield from _gauge("intake_handoff_depth", "Events handed off, not yet stored", t.handoff_depth)
        if t.handoff_refused is not None:
            refused = CounterMetricFamily(PREFIX + "intake_handoff_refused", "Hand-offs refused: the queue was full")
            refused.add_metric([], t.handoff_refused)
            yield refused
        if t.outbox:
            pending = GaugeMetricFamily(PREFIX + "outbox_pending", "Deliveries waiting, by target", labels=["target"])
            dead = GaugeMetricFamily(PREFIX + "outbox_dead", "Dead-lettered deliveries, by target", labels=["target"])
            for target in t.outbox:
                pending.add_metric([target.target], target.pending)
                dead.add_metric([target.target], target.dead)
            yield pending
            yield dead
        yield from _gauge(
            "case_feed_lag_seconds", "Newest stored event not yet read by the case feed", t.case_feed_lag_s
        )


def _le(bound: float) -> str:
    return repr(float(bound))


def build_registry(view: PatrolView | None) -> CollectorRegistry:
    """A registry of this app's own: the process (CPU, memory, open files) and, with a patrol, its figures."""
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    if view is not None:
        registry.register(PatrolCollector(view))
    return registry
