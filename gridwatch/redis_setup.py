"""The Redis parts of a patrol shared by many workers (`patrol.backend: redis`): one connection, the key namespace,
and the scheduler, rule state, incidents and event stream built on them. Used by `gridwatch run` and
`gridwatch worker`; the URL's password never reaches a log line (only its sanitised form is logged).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis

from core.errors import ConfigError, GridwatchError
from core.redact import sanitize_url
from core.settings import PatrolSettings, Settings
from core.sink import EventSink
from ingest.cameras import Camera
from ingest.redis_keys import INTAKE_GROUP, RedisKeys
from ingest.redis_scheduler import LeaseSettings, RedisScheduler
from ingest.redis_state import RedisIncidentState, RedisRuleState
from ingest.schedule_policy import BackoffPolicy
from ingest.scheduler import InProcessScheduler
from ingest.scheduling import Scheduler
from intake.redis_stream import StreamConsumer, StreamSink

logger = logging.getLogger(__name__)


def worker_name() -> str:
    """This process's name among the workers and consumers: host and pid."""
    return f"{socket.gethostname()}-{os.getpid()}"


def with_redis(settings: Settings, url: str | None) -> Settings:
    """The settings with `patrol.backend: redis` at `url` (the `--redis` flag), when given."""
    if url is None:
        return settings
    patrol = {**settings.patrol.model_dump(), "backend": "redis", "redis_url": url}
    return settings.model_copy(update={"patrol": PatrolSettings.model_validate(patrol)})


@dataclass
class RedisParts:
    client: redis.Redis
    keys: RedisKeys
    patrol: PatrolSettings
    name: str

    @classmethod
    def connect(cls, settings: Settings) -> RedisParts | None:
        """None for the in-process backend; else a checked connection (a clear error when Redis is away)."""
        p = settings.patrol
        if p.backend != "redis":
            return None
        if p.redis_url is None:
            raise ConfigError(["settings.yaml: patrol.redis_url: required with patrol.backend redis (or --redis URL)"])
        url = p.redis_url.get_secret_value()
        shown = sanitize_url(url)
        try:
            client = redis.Redis.from_url(url, health_check_interval=30)
            client.ping()
        except (redis.RedisError, ValueError) as exc:
            raise GridwatchError(f"redis at {shown}: {type(exc).__name__}: {sanitize_url(str(exc))}") from None
        name = worker_name()
        logger.info("patrol on redis at %s, namespace %r, worker %s", shown, p.redis_namespace, name)
        return cls(client, RedisKeys(p.redis_namespace), p, name)

    def scheduler(self, cameras: Sequence[Camera], clock: Callable[[], float], backoff: BackoffPolicy) -> Scheduler:
        leases = LeaseSettings(self.patrol.lease_s, self.patrol.heartbeat_s)
        return RedisScheduler(cameras, self.client, clock, self.keys, backoff, leases=leases, worker_id=self.name)

    def rule_state(self) -> RedisRuleState:
        return RedisRuleState(self.client, self.keys)

    def incidents(self) -> RedisIncidentState:
        return RedisIncidentState(self.client, self.keys)

    def event_sink(self) -> StreamSink:
        return StreamSink(self.client, self.keys.events)

    def consumer(self, sink: EventSink) -> StreamConsumer:
        return StreamConsumer(self.client, self.keys.events, INTAKE_GROUP, self.name, sink)

    def close(self) -> None:
        self.client.close()


def make_scheduler(
    parts: RedisParts | None,
    cameras: Sequence[Camera],
    monotonic: Callable[[], float],
    wall: Callable[[], float],
    backoff: BackoffPolicy,
) -> Scheduler:
    """In-process on the monotonic clock, or Redis on the wall clock (shared by the workers' hosts)."""
    if parts is None:
        return InProcessScheduler(cameras, monotonic, backoff)
    return parts.scheduler(cameras, wall, backoff)
