"""The Redis patrol scheduler: many workers on many hosts share one patrol, with the in-process policy.

Due times live in sorted sets (one per priority, one for failing cameras), so every worker sees one plan.
`acquire` runs one Lua script (`ingest.redis_lua.CLAIM`) that, atomically, takes back leases past their expiry,
picks the camera (a failing one within its share of the workers, a request within its credit, else the earliest
due, or in overload the highest priority due) and leases it to this worker: no camera is ever held by two workers
at once. `complete` runs another that releases the lease, stores the camera's health and latency ring and plans
the next visit, as `plan_after_visit` (the in-process scheduler's policy) computed it. Two round trips a visit.

A worker renews its leases with its heartbeat (every `heartbeat_s`); a worker that dies stops renewing, and its
cameras come back at their original due time once `lease_s` has passed (spread when many come back at once). A
worker that starts (or restarts) registers its cameras without touching the due times already planned, so a
restart is no thundering herd.

Times are the caller's `clock` (wall-clock seconds by default: the workers' hosts must agree on the time, NTP),
never Redis TIME, so tests run on simulated time.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import redis

from ingest.cameras import Camera
from ingest.redis_keys import PRIORITIES, RedisKeys
from ingest.redis_lua import CLAIM, COMPLETE, HEARTBEAT, REGISTER, RELEASE, REQUEST
from ingest.schedule_policy import (
    REVISIT_WINDOW,
    BackoffPolicy,
    LatencyRing,
    PlanPolicy,
    p50,
    p95,
    plan_after_visit,
)
from ingest.scheduling import (
    CameraReport,
    Health,
    HealthChange,
    Mode,
    RevisitFigures,
    ScheduleReport,
    VisitCostLike,
    WorkerReport,
)

logger = logging.getLogger(__name__)

MAX_POLL_S = 0.5  # an idle worker looks again at least this often (another worker may have planned sooner)
RECLAIM_SPREAD_S = 0.05  # leases taken back together come back this far apart
MAX_RECLAIM = 100  # leases taken back per claim
REGISTER_BATCH = 1000  # cameras per registration script


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    lease_s: float = 30.0
    heartbeat_s: float = 5.0


@dataclass(slots=True)
class _Held:
    """What this worker knows of a camera it holds, from the claim: enough to plan the next visit."""

    camera: Camera
    failures: int
    health: Health
    lead_s: float
    last_visit: float | None
    ring: LatencyRing
    failing: bool


def _text(value: object, default: str = "") -> str:
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


def _num(fields: dict[str, bytes], name: str, default: float = 0.0) -> float:
    raw = fields.get(name)
    return default if raw is None or raw == b"" else float(raw)


@dataclass
class RedisScheduler:
    cameras: Sequence[Camera]
    client: redis.Redis
    clock: Callable[[], float] = time.time
    keys: RedisKeys = field(default_factory=RedisKeys)
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    rng: random.Random = field(default_factory=random.Random)
    policy: PlanPolicy = field(default_factory=PlanPolicy)
    leases: LeaseSettings = field(default_factory=LeaseSettings)
    worker_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    heartbeat: bool = True  # a thread renews the leases; tests on simulated time call `beat()` themselves

    def __post_init__(self) -> None:
        self._by_id = {c.id: c for c in self.cameras if c.enabled}
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._wake = threading.Event()
        r = self.client
        self._claim = r.register_script(CLAIM)
        self._complete = r.register_script(COMPLETE)
        self._request = r.register_script(REQUEST)
        self._beat = r.register_script(HEARTBEAT)
        self._release = r.register_script(RELEASE)
        self.register()
        self.beat()
        self._thread: threading.Thread | None = None
        if self.heartbeat:
            self._thread = threading.Thread(target=self._beat_loop, name="patrol-heartbeat", daemon=True)
            self._thread.start()

    @property
    def _ns(self) -> str:
        return self.keys.namespace

    def register(self) -> int:
        """Put this worker's cameras in the patrol; due times already planned stay. Returns how many were new,
        their first visits spread (at most over the revisit target) as the in-process scheduler spreads them."""
        now = self.clock()
        enabled = list(self._by_id.values())
        added = 0
        for start in range(0, len(enabled), REGISTER_BATCH):  # batches: Redis serves the others in between
            args: list[str | float | int] = [self._ns]
            for i, c in enumerate(enabled[start : start + REGISTER_BATCH], start):
                first = now + i * min(0.01, c.revisit_s / len(enabled))
                args += [c.id, c.name, c.priority, repr(c.revisit_s), repr(first)]
            added += int(self.client.eval(REGISTER, 0, *args))
        logger.info("patrol on redis: %d cameras registered (%d new) by worker %s", len(enabled), added, self.worker_id)
        return added

    # -- the workers' side

    def acquire(self, timeout: float | None = None) -> Camera | None:
        """The next camera due, leased to this worker; None on close or when `timeout` passes (0: no wait)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed.is_set():
            now = self.clock()
            got = self._try_claim(now)
            if isinstance(got, Camera):
                return got
            wait = MAX_POLL_S if got is None else max(0.0, min(MAX_POLL_S, got - now))
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                wait = min(wait, left)
            self._wake.wait(wait)
            self._wake.clear()
        return None

    def _try_claim(self, now: float) -> Camera | float | None:
        """A leased camera, or when the next one is due (None: nothing planned)."""
        p = self.policy
        out = self._claim(
            args=[
                self._ns,
                repr(now),
                repr(self.leases.lease_s),
                self.worker_id,
                p.failing_share,
                repr(p.earned),
                p.request_burst,
                p.lateness_decay,
                p.overload_enter,
                p.overload_exit,
                RECLAIM_SPREAD_S,
                MAX_RECLAIM,
            ]
        )
        if not out[0]:
            next_due = float(out[1])
            if next_due < 0 and self._by_id:  # an empty plan: Redis restarted without persistence, or was flushed
                logger.warning("patrol plan empty in redis: registering this worker's cameras again")
                self.register()
                return now
            return None if next_due < 0 else next_due
        cam_id, kind, switched = _text(out[0]), _text(out[1]), _text(out[2])
        if switched:
            logger.warning("patrol scheduler: -> %s (mean lateness %.2f of the target)", switched, float(out[3]))
        raw = out[4:]
        fields = {_text(raw[i]): raw[i + 1] for i in range(0, len(raw), 2)}
        camera = self._by_id.get(cam_id)
        if camera is None:  # planned by a worker with another cameras.yaml: leave it to the workers that know it
            logger.warning("camera %s is not in this worker's cameras: put back for the others", cam_id)
            self._release(args=[self._ns, cam_id, self.worker_id, repr(now + _num(fields, "revisit_s", 60.0))])
            return now + MAX_POLL_S
        last = fields.get("last_visit")
        held = _Held(
            camera,
            int(_num(fields, "failures")),
            Health(_text(fields.get("health"), Health.unknown.value)),
            _num(fields, "lead_s"),
            float(last) if last else None,
            LatencyRing.from_bytes(fields.get("ring") or b"", int(_num(fields, "samples"))),
            kind == "failing",
        )
        with self._lock:
            self._held[cam_id] = held
        return camera

    def complete(
        self, camera_id: str, error: str | None = None, cost: VisitCostLike | None = None
    ) -> HealthChange | None:
        """Release the lease, learn the visit's latency, plan the next visit; returns the health change, if any."""
        with self._lock:
            held = self._held.pop(camera_id)
        now = self.clock()
        c = held.camera
        plan = plan_after_visit(
            now, c.revisit_s, held.failures, held.lead_s, held.ring, error, cost, self.policy, self.backoff, self.rng
        )
        interval = "" if held.last_visit is None else repr(now - held.last_visit)
        late = int(held.last_visit is not None and now - held.last_visit > c.revisit_s)
        zset = "failing" if plan.failures else f"due:{c.priority}"
        kept = self._complete(
            args=[
                self._ns,
                camera_id,
                self.worker_id,
                zset,
                repr(plan.due),
                repr(plan.early),
                plan.failures,
                plan.health.value,
                error or "",
                repr(now),
                repr(plan.lead_s),
                held.ring.to_bytes(),
                held.ring.samples,
                interval,
                late,
                REVISIT_WINDOW,
            ]
        )
        self._wake.set()
        if not kept:
            logger.warning("camera %s: lease lost before the visit ended (lease_s too short?)", camera_id)
            return None
        if held.health != plan.health:
            logger.info("camera %s: %s -> %s %s", camera_id, held.health, plan.health, error or "")
            return HealthChange(camera_id, held.health, plan.health, error or "")
        return None

    def request_visit(self, camera_id: str) -> bool:
        """Visit a camera ahead of the round, within the requests' share (shared by all workers); False for a
        camera that is not patrolled."""
        if self._closed.is_set():
            return False
        ok = bool(self._request(args=[self._ns, camera_id]))
        self._wake.set()
        return ok

    def beat(self) -> int:
        """Say this worker is alive and renew the leases it holds; returns how many were renewed."""
        with self._lock:
            held = list(self._held)
        ls = self.leases
        ttl = 3 * ls.heartbeat_s
        return int(self._beat(args=[self._ns, self.worker_id, repr(self.clock()), repr(ls.lease_s), repr(ttl), *held]))

    def _beat_loop(self) -> None:
        while not self._closed.wait(self.leases.heartbeat_s):
            try:
                self.beat()
            except redis.RedisError as exc:  # loop boundary: the next beat tries again
                logger.warning("patrol heartbeat to redis failed: %s", exc)

    def close(self) -> None:
        """Stop handing out cameras; visits under way still `complete` (the patrol waits for them)."""
        self._closed.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(1.0)

    def live_workers(self) -> list[str]:
        """Workers whose heartbeat has not expired."""
        now = self.clock()
        ids = [
            _text(w) for w in self.client.zrangebyscore(self.keys.workers, now - 3 * self.leases.heartbeat_s, "+inf")
        ]
        return [w for w in ids if self.client.exists(self.keys.worker(w))]

    # -- reports (a read of every camera's hash: for health pages, not the hot path)

    def snapshot(self) -> list[CameraReport]:
        return list(self.report().cameras)

    def report(self) -> ScheduleReport:
        k, now = self.keys, self.clock()
        pipe = self.client.pipeline(transaction=False)
        ids = sorted(self._by_id)
        for cam_id in ids:
            pipe.hgetall(k.camera(cam_id))
        pipe.hmget(k.state, "mode", "lateness", "served")
        pipe.zrange(k.leases, 0, -1)
        pipe.smembers(k.requested)
        pipe.lrange(k.revisits, 0, -1)
        *hashes, state, leased_raw, requested_raw, revisits_raw = pipe.execute()
        leased = {_text(x) for x in leased_raw}
        requested = {_text(x) for x in requested_raw}
        cameras = tuple(
            self._camera_report(
                self._by_id[cam_id], {_text(f): v for f, v in h.items()}, cam_id in leased, cam_id in requested
            )
            for cam_id, h in zip(ids, hashes, strict=True)
        )
        pairs = [_text(x).split() for x in revisits_raw]
        intervals = sorted(float(a) for a, _ in pairs)
        n = len(intervals)
        revisit = RevisitFigures(
            n,
            p50(intervals) if n else None,
            p95(intervals) if n else None,
            intervals[-1] if n else None,
            sum(int(b) for _, b in pairs) / n if n else None,
        )
        fresh = sum(1 for c in cameras if c.last_visit is not None and now - c.last_visit <= c.revisit_s)
        return ScheduleReport(
            at=now,
            mode=Mode(_text(state[0], Mode.deadline.value)),
            lateness=float(state[1] or 0.0),
            enabled=len(cameras),
            within_target=fresh / len(cameras) if cameras else 1.0,
            in_flight=len(leased),
            offline=sum(1 for c in cameras if c.health is Health.offline),
            requests_pending=len(requested),
            requests_served=int(state[2] or 0),
            revisit=revisit,
            cameras=cameras,
            workers=self._workers(),
        )

    def _workers(self) -> tuple[WorkerReport, ...]:
        """The workers alive, each with the cameras it holds now (its threads are its own: 0, not known here)."""
        owners = [_text(w) for w in self.client.hvals(self.keys.owners)]
        return tuple(WorkerReport(w, 0, owners.count(w)) for w in self.live_workers())

    @staticmethod
    def _camera_report(c: Camera, f: dict[str, bytes], leased: bool, requested: bool) -> CameraReport:
        last = f.get("last_visit")
        ring = LatencyRing.from_bytes(f.get("ring") or b"", int(_num(f, "samples")))
        return CameraReport(
            c.id,
            c.name,
            c.priority,
            c.revisit_s,
            Health(_text(f.get("health"), Health.unknown.value)),
            int(_num(f, "failures")),
            int(_num(f, "visits")),
            _text(f.get("last_error")),
            float(last) if last else None,
            _num(f, "due"),
            leased,
            requested,
            ring.latency(),
        )


def due_now(client: redis.Redis, keys: RedisKeys, now: float) -> int:
    """Cameras whose planned start has passed (for tests and the worker's start-up log)."""
    pipe = client.pipeline(transaction=False)
    for p in PRIORITIES:
        pipe.zcount(keys.due(p), "-inf", now)
    pipe.zcount(keys.failing, "-inf", now)
    return sum(int(n) for n in pipe.execute())
