"""Rule state and open incidents in Redis, so that they follow a camera to whichever worker visits it next.

`RedisRuleState` implements `rules.state.RuleStateStore`: one hash per rule fingerprint (`rule-state:<fp>`),
camera -> the encoded state (`ingest.state_codec`). `RedisIncidentState` implements
`incidents.tracker.SharedIncidents`: one string per (rule, camera) with its open and candidate incidents.

No camera is visited by two workers at once (the scheduler's leases), so a state is read at the start of a visit
and written at its end without a lock: there is no other writer for that camera meanwhile. Each costs a round trip
per rule per visit (about 0.1 ms on a LAN).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import redis

from ingest.redis_keys import RedisKeys
from ingest.state_codec import CodecError, decode, encode

logger = logging.getLogger(__name__)


class RedisRuleState:
    def __init__(self, client: redis.Redis, keys: RedisKeys) -> None:
        self._r = client
        self._keys = keys

    def get(self, fingerprint: str, camera_id: str) -> object | None:
        raw = self._r.hget(self._keys.rule_state(fingerprint), camera_id)
        if raw is None:
            return None
        try:
            return decode(raw)  # type: ignore[arg-type]
        except (CodecError, ValueError, KeyError, TypeError) as exc:  # a state the rule cannot use: it starts afresh
            logger.warning("rule state of %s at camera %s unreadable, started afresh: %s", fingerprint, camera_id, exc)
            return None

    def put(self, fingerprint: str, camera_id: str, state: object) -> None:
        self._r.hset(self._keys.rule_state(fingerprint), camera_id, encode(state))

    def retain(self, fingerprints: Iterable[str]) -> int:
        keep = {self._keys.rule_state(fp) for fp in fingerprints}
        gone = [k for k in self._r.scan_iter(match=self._keys.rule_state_pattern, count=500) if k.decode() not in keep]
        if not gone:
            return 0
        pipe = self._r.pipeline()
        for key in gone:
            pipe.hlen(key)
        dropped = sum(int(n) for n in pipe.execute())
        self._r.delete(*gone)
        logger.info("rule state: dropped %d states of %d changed or removed rules", dropped, len(gone))
        return dropped

    def __len__(self) -> int:
        keys = list(self._r.scan_iter(match=self._keys.rule_state_pattern, count=500))
        if not keys:
            return 0
        pipe = self._r.pipeline(transaction=False)
        for key in keys:
            pipe.hlen(key)
        return sum(int(n) for n in pipe.execute())


class RedisIncidentState:
    def __init__(self, client: redis.Redis, keys: RedisKeys) -> None:
        self._r = client
        self._keys = keys

    def load(self, rule_id: str, camera_id: str) -> object | None:
        raw = self._r.get(self._keys.incidents(rule_id, camera_id))
        return None if raw is None else decode(raw)  # type: ignore[arg-type]

    def save(self, rule_id: str, camera_id: str, state: object | None) -> None:
        key = self._keys.incidents(rule_id, camera_id)
        if state is None:
            self._r.delete(key)
        else:
            self._r.set(key, encode(state))

    def take(self, rule_id: str, camera_id: str) -> object | None:
        """Remove and return (atomically: one worker gets it) the state of one rule at one camera."""
        raw = self._r.getdel(self._keys.incidents(rule_id, camera_id))
        return None if raw is None else decode(raw)  # type: ignore[arg-type]
