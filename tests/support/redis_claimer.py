"""A patrol worker that claims cameras and then hangs mid-visit, for the kill -9 test:
`python -m tests.support.redis_claimer URL NAMESPACE CAMERAS CLAIMS NOW` prints the ids it holds, one a line,
then `ready`, and sleeps until it is killed."""

from __future__ import annotations

import sys
import time

import redis

from ingest.cameras import Camera
from ingest.redis_keys import RedisKeys
from ingest.redis_scheduler import LeaseSettings, RedisScheduler


def cameras(n: int, revisit_s: float = 60.0) -> list[Camera]:
    return [Camera(id=f"cam{i:03d}", url=f"file:///dev/null#{i}", revisit_s=revisit_s) for i in range(n)]


def main(url: str, namespace: str, n: int, claims: int, now: float) -> None:
    sched = RedisScheduler(
        cameras(n),
        redis.Redis.from_url(url),
        clock=lambda: now,
        keys=RedisKeys(namespace),
        leases=LeaseSettings(lease_s=30.0, heartbeat_s=5.0),
        heartbeat=False,
        worker_id="doomed",
    )
    for _ in range(claims):
        camera = sched.acquire(timeout=0)
        if camera is not None:
            print(camera.id, flush=True)
    print("ready", flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
