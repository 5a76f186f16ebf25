"""Every Redis key gridwatch uses, in one place, under one configurable namespace (`patrol.redis_namespace`).

A namespace wrapped in braces (`{gw}:`) puts every key in one Redis Cluster hash slot, which the Lua scripts
need (they touch per-camera keys they compute from the namespace). Keys, by part:

- patrol: `patrol:due:<p>` (sorted set per priority 0-9, camera -> planned start), `patrol:failing` (sorted set
  of failing cameras' planned starts), `patrol:leases` (sorted set, camera -> lease expiry), `patrol:owners`
  (hash, camera -> worker id), `patrol:failing-leases` (sorted set, failing cameras leased), `patrol:requests`
  (list of requested cameras, in order) and `patrol:requested` (set), `patrol:cameras` (set of patrolled ids),
  `patrol:state` (hash: mode, lateness, request credit, peak leased, counters), `patrol:revisits` (list of the
  last revisit intervals), `cam:<id>` (hash: the camera's plan, health and latency ring).
- workers: `worker:<id>` (string with expiry: the heartbeat), `workers` (sorted set, id -> last beat).
- rule state: `rule-state:<fingerprint>` (hash, camera -> encoded state).
- incidents: `incidents:<rule id>:<camera>` (string: the encoded open incidents of one rule at one camera).
- events: `events` (stream), consumer group `intake`.
"""

from __future__ import annotations

from dataclasses import dataclass

PRIORITIES = range(10)
INTAKE_GROUP = "intake"


@dataclass(frozen=True, slots=True)
class RedisKeys:
    namespace: str = "gridwatch:"

    # -- patrol (the Lua scripts build `due_prefix + p`, `camera_prefix + id` themselves from these)
    @property
    def due_prefix(self) -> str:
        return f"{self.namespace}patrol:due:"

    def due(self, priority: int) -> str:
        return f"{self.due_prefix}{priority}"

    @property
    def failing(self) -> str:
        return f"{self.namespace}patrol:failing"

    @property
    def leases(self) -> str:
        return f"{self.namespace}patrol:leases"

    @property
    def owners(self) -> str:
        return f"{self.namespace}patrol:owners"

    @property
    def failing_leases(self) -> str:
        return f"{self.namespace}patrol:failing-leases"

    @property
    def requests(self) -> str:
        return f"{self.namespace}patrol:requests"

    @property
    def requested(self) -> str:
        return f"{self.namespace}patrol:requested"

    @property
    def cameras(self) -> str:
        return f"{self.namespace}patrol:cameras"

    @property
    def state(self) -> str:
        return f"{self.namespace}patrol:state"

    @property
    def revisits(self) -> str:
        return f"{self.namespace}patrol:revisits"

    @property
    def camera_prefix(self) -> str:
        return f"{self.namespace}cam:"

    def camera(self, camera_id: str) -> str:
        return f"{self.camera_prefix}{camera_id}"

    # -- workers
    def worker(self, worker_id: str) -> str:
        return f"{self.namespace}worker:{worker_id}"

    @property
    def workers(self) -> str:
        return f"{self.namespace}workers"

    # -- shared rule state and incidents
    def rule_state(self, fingerprint: str) -> str:
        return f"{self.namespace}rule-state:{fingerprint}"

    @property
    def rule_state_pattern(self) -> str:
        return f"{self.namespace}rule-state:*"

    def incidents(self, rule_id: str, camera_id: str) -> str:
        return f"{self.namespace}incidents:{rule_id}:{camera_id}"

    # -- events
    @property
    def events(self) -> str:
        return f"{self.namespace}events"
