"""The patrol's pure policy pieces, shared by every scheduler backend (in-process, Redis): backoff, the lead a
visit starts early by, the latency ring it is learned from, the next visit's due time and the overload switch.

No I/O, no threads, no clock: each function is given the time and returns what to plan, so both backends plan
exactly alike and the policy is tested once.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from ingest.scheduling import Health, Latency, Mode, VisitCostLike

LATENCY_WINDOW = 16  # visits per camera whose latency is kept
REVISIT_WINDOW = 4096  # revisit intervals kept for the report, all cameras together


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    base_s: float = 5.0
    max_s: float = 600.0
    offline_after: int = 3
    jitter: float = 0.2

    def delay(self, failures: int, rng: random.Random, revisit_s: float = 0.0) -> float:
        """Doubling from `base_s`, or from twice the camera's own target when that is longer, up to `max_s`, with
        jitter: an unreachable camera at a 60 s target is tried after 2, 4, 8, 10 minutes, so its timeouts soon
        cost the patrol little."""
        raw = min(self.max_s, max(self.base_s * 2.0 ** max(0, failures - 1), revisit_s * 2.0**failures))
        return float(raw * rng.uniform(1 - self.jitter, 1 + self.jitter))


@dataclass(frozen=True, slots=True)
class PlanPolicy:
    overload_enter: float = 0.10  # mean lateness, as a share of revisit_s, that switches to priority first
    overload_exit: float = 0.02  # and back to deadline first
    lateness_decay: float = 0.005  # weight of one visit in the decayed mean (about the last 200 visits)
    request_share: float = 0.2  # out-of-turn visits: at most this share of all visits
    request_burst: float = 10.0  # and at most this many in a row
    lead_headroom: float = 0.25  # a visit's lead: its longest recent visit, plus this share of it
    max_lead_share: float = 0.5  # and at most this share of its revisit target
    start_slack: float = 0.01  # and this share of the target for the wait for a free worker
    failing_share: float = 0.1  # failing cameras' visits in flight: at most this share of the workers (or 1)

    @property
    def earned(self) -> float:
        """Request credit each regular visit earns: requests are at most `request_share` of all visits."""
        share = self.request_share
        return share / (1.0 - share) if share < 1.0 else float("inf")

    def failing_cap(self, peak_leased: int) -> int:
        """Failing cameras' visits in flight allowed, given the most visits ever in flight at once."""
        return max(1, int(self.failing_share * peak_leased))


class LatencyRing:
    """A camera's last `LATENCY_WINDOW` visit costs (connect, first keyframe, whole visit; ms): 384 bytes, which
    the Redis backend stores as they are (`to_bytes`)."""

    __slots__ = ("ring", "samples")

    def __init__(self, ring: array[float] | None = None, samples: int = 0) -> None:
        self.ring = ring
        self.samples = samples

    @classmethod
    def from_bytes(cls, data: bytes, samples: int) -> LatencyRing:
        if not data:
            return cls(None, 0)
        ring = array("d")
        ring.frombytes(data)
        return cls(ring, samples)

    def to_bytes(self) -> bytes:
        return b"" if self.ring is None else self.ring.tobytes()

    def learn(self, cost: VisitCostLike, headroom: float, max_lead_s: float) -> float:
        """Record one visit; returns the new lead (seconds): the longest recent visit plus `headroom`, capped."""
        if self.ring is None:
            self.ring = array("d", bytes(8 * 3 * LATENCY_WINDOW))
        i = 3 * (self.samples % LATENCY_WINDOW)
        self.ring[i], self.ring[i + 1], self.ring[i + 2] = cost.connect, cost.first_keyframe, cost.total
        self.samples += 1
        return min(max_lead_s, max(self._column(2)) * (1.0 + headroom) / 1000.0)

    def _column(self, k: int) -> list[float]:
        n = min(self.samples, LATENCY_WINDOW)
        return [] if self.ring is None else sorted(self.ring[k : 3 * n : 3])

    def latency(self) -> Latency:
        if not self.samples:
            return Latency()
        connect, keyframe, total = self._column(0), self._column(1), self._column(2)
        return Latency(p50(connect), p95(connect), p50(keyframe), p95(keyframe), p95(total), p50(total))


def p50(ordered: Sequence[float]) -> float:
    return ordered[(len(ordered) - 1) // 2] if ordered else 0.0


def p95(ordered: Sequence[float]) -> float:
    """Nearest rank: with 16 samples the largest but none, so one outlier does not set the lead."""
    return ordered[max(0, -(-95 * len(ordered) // 100) - 1)] if ordered else 0.0


@dataclass(frozen=True, slots=True)
class NextVisit:
    """What a finished visit plans: the next start, how much of its lead is the wait for a worker, the health."""

    due: float
    early: float
    failures: int
    health: Health
    lead_s: float


def plan_after_visit(
    now: float,
    revisit_s: float,
    failures: int,
    lead_s: float,
    ring: LatencyRing,
    error: str | None,
    cost: VisitCostLike | None,
    policy: PlanPolicy,
    backoff: BackoffPolicy,
    rng: random.Random,
) -> NextVisit:
    """The next visit after one that ended at `now`: `revisit_s - lead` after it when it succeeded (learning the
    cost into `ring`), after the backoff when it failed."""
    if error is None:
        if cost is not None:
            lead_s = ring.learn(cost, policy.lead_headroom, revisit_s * policy.max_lead_share)
        early = policy.start_slack * revisit_s
        return NextVisit(now + revisit_s - lead_s - early, early, 0, Health.online, lead_s)
    failures += 1
    health = Health.offline if failures >= backoff.offline_after else Health.degraded
    due = now + max(revisit_s, backoff.delay(failures, rng, revisit_s))
    return NextVisit(due, 0.0, failures, health, lead_s)


def observe_lateness(lateness: float, mode: Mode, late: float, policy: PlanPolicy) -> tuple[float, Mode]:
    """Fold one revisit's lateness (a share of its target) into the decayed mean; the mode it calls for."""
    lateness += policy.lateness_decay * (max(0.0, late) - lateness)
    if mode is Mode.deadline and lateness > policy.overload_enter:
        return lateness, Mode.overload
    if mode is Mode.overload and lateness < policy.overload_exit:
        return lateness, Mode.deadline
    return lateness, mode
