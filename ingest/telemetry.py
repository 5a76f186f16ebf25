"""What the patrol counts for monitoring, kept cheap on the visit path: a rate over the last minute and
cumulative histograms of visit phases (a bisect and an increment per phase per visit).

The API reads them at scrape time from `Patrol.report()`; nothing here knows about Prometheus.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from dataclasses import dataclass

from ingest.visit import VisitCost

# seconds: a visit costs 0.05 s (a warm file camera) to 10 s (a timeout); the last bucket is +Inf
VISIT_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0)
PHASES = ("connect", "first_keyframe", "decode", "inference", "rules", "evidence", "total")
RATE_WINDOW_S = 60.0


@dataclass(frozen=True, slots=True)
class PhaseHistogram:
    """Visits by how long one phase took: `counts[i]` visits at most `VISIT_BUCKETS_S[i]` (cumulative, as
    Prometheus reads them), `count` in all (the +Inf bucket), `sum_s` their total seconds."""

    phase: str
    bounds_s: tuple[float, ...]
    counts: tuple[int, ...]
    count: int
    sum_s: float


class VisitHistograms:
    """Per-phase histograms of successful visits. Not thread-safe: the patrol calls it under its lock."""

    def __init__(self, bounds_s: tuple[float, ...] = VISIT_BUCKETS_S) -> None:
        self._bounds = bounds_s
        self._counts = {p: [0] * (len(bounds_s) + 1) for p in PHASES}
        self._sums = dict.fromkeys(PHASES, 0.0)

    def observe(self, cost: VisitCost) -> None:
        for phase in PHASES:
            seconds = getattr(cost, phase) / 1000.0
            self._counts[phase][bisect_left(self._bounds, seconds)] += 1
            self._sums[phase] += seconds

    def snapshot(self) -> tuple[PhaseHistogram, ...]:
        out = []
        for phase in PHASES:
            cumulative, running = [], 0
            for n in self._counts[phase]:
                running += n
                cumulative.append(running)
            out.append(PhaseHistogram(phase, self._bounds, tuple(cumulative[:-1]), running, self._sums[phase]))
        return tuple(out)


class RateWindow:
    """Events per second over the last `window_s` (or since the start, when that is shorter). Not thread-safe.

    One float per event in the window: 12,000 at 200 visits/s."""

    def __init__(self, started: float, window_s: float = RATE_WINDOW_S) -> None:
        self._started, self._window = started, window_s
        self._times: deque[float] = deque()

    def add(self, now: float) -> None:
        self._times.append(now)
        self._prune(now)

    def rate(self, now: float) -> float:
        self._prune(now)
        span = min(self._window, now - self._started)
        return len(self._times) / span if span > 0 else 0.0

    def _prune(self, now: float) -> None:
        horizon = now - self._window
        while self._times and self._times[0] < horizon:
            self._times.popleft()
