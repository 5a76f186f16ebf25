"""Rule state and incidents shared through a real Redis: they follow a camera from one worker to the next."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import redis

from core.events import EventState
from core.types import Verdict
from incidents.tracker import IncidentPolicy, IncidentTracker
from ingest.redis_keys import RedisKeys
from ingest.redis_state import RedisIncidentState, RedisRuleState
from ingest.state_codec import CodecError, decode, encode
from rules.kinds.absence import AbsenceState
from rules.kinds.count_anomaly import Baseline
from rules.kinds.persistence import PersistenceState, _Object
from rules.quality import Reference
from rules.quality_state import QualityState
from rules.tracker import Tracks
from tests.support.redis import RedisServer

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def keys(redis_server: RedisServer) -> RedisKeys:
    return RedisKeys(redis_server.namespace())


@pytest.fixture
def client(redis_server: RedisServer) -> redis.Redis:
    return redis_server.client()


def states() -> list[object]:
    thumb = np.arange(64 * 48, dtype=np.uint8).reshape(48, 64)
    cells = np.ones((6, 8), np.float32)
    verdict = Verdict("vq", "cam1", True, None, np.array([1, 2], np.int64), {"blur": 0.5}, "blurred", "", -1)
    return [
        PersistenceState([_Object(1, 0, np.array([0.1, 0.2, 0.3, 0.4], np.float32), thumb, 1.0, 2.0, 3, 0)], 2),
        Baseline(np.zeros((168, 5), np.uint8), 42),
        AbsenceState(T0, T0 + timedelta(minutes=3)),
        AbsenceState(T0, None),
        Tracks.empty(7),
        QualityState(Reference(3, thumb, cells, cells, cells), thumb, 2, float("-inf"), (verdict,)),
    ]


@pytest.mark.parametrize("state", states(), ids=lambda s: type(s).__name__)
def test_rule_states_round_trip(state: object) -> None:
    back = decode(encode(state))
    assert type(back) is type(state)
    assert repr(back) == repr(state) or _same(back, state)


def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list | tuple):
        return isinstance(b, type(a)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if hasattr(a, "__dataclass_fields__"):
        return type(a) is type(b) and all(_same(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    return a == b


def test_the_codec_builds_only_gridwatch_types() -> None:
    with pytest.raises(CodecError):
        decode(b'{"$dc":"subprocess:Popen","f":{}}')
    with pytest.raises(CodecError):
        encode(object())


def test_rule_state_follows_the_camera(client: redis.Redis, keys: RedisKeys) -> None:
    # given two workers' stores over one Redis
    a, b = RedisRuleState(client, keys), RedisRuleState(client, keys)

    # when one worker learns a state and the other visits the camera next
    a.put("fp1", "cam1", AbsenceState(T0, None))
    a.put("fp2", "cam1", Baseline(np.ones((168, 3), np.uint8), 7))

    # then the other finds it; a reload keeps only running fingerprints
    assert b.get("fp1", "cam1") == AbsenceState(T0, None)
    assert b.get("fp1", "cam2") is None
    assert len(b) == 2
    assert b.retain(["fp1"]) == 1
    assert a.get("fp2", "cam1") is None and len(a) == 1


def fired(at_key: str = "") -> Verdict:
    return Verdict("r1", "cam1", True, None, key=at_key, reason="seen")


def test_two_workers_continue_one_incident(client: redis.Redis, keys: RedisKeys) -> None:
    # given two workers' trackers sharing incidents through Redis
    shared = RedisIncidentState(client, keys)
    a, b = IncidentTracker(shared), IncidentTracker(shared)
    policy = IncidentPolicy(cooldown_s=0.0, close_after_s=120.0)

    # when worker a sees it first, worker b at the next visits, then nobody sees it for long enough
    opened = a.observe("r1", "fp", "cam1", policy, [fired()], T0)
    updated = b.observe("r1", "fp", "cam1", policy, [fired()], T0 + timedelta(minutes=1))
    quiet = a.observe("r1", "fp", "cam1", policy, [], T0 + timedelta(minutes=2))
    closed = b.observe("r1", "fp", "cam1", policy, [], T0 + timedelta(minutes=4))

    # then one incident: opened once, updated by the other worker, closed once, with one id
    assert [c.state for c in opened] == [EventState.open]
    assert [c.state for c in updated] == [EventState.update]
    assert quiet == []
    assert [c.state for c in closed] == [EventState.close]
    assert len({c.incident_id for c in opened + updated + closed}) == 1
    assert closed[0].sightings == 2
    assert shared.load("r1", "cam1") is None


def test_a_stopping_worker_leaves_shared_incidents_open(client: redis.Redis, keys: RedisKeys) -> None:
    shared = RedisIncidentState(client, keys)
    a, b = IncidentTracker(shared), IncidentTracker(shared)
    policy = IncidentPolicy(cooldown_s=0.0)
    opened = a.observe("r1", "fp", "cam1", policy, [fired()], T0)
    assert a.close_all("gridwatch stopped", T0) == []
    later = b.observe("r1", "fp", "cam1", policy, [fired()], T0 + timedelta(minutes=1))
    assert [c.state for c in later] == [EventState.update] and later[0].incident_id == opened[0].incident_id


def test_a_reload_closes_shared_incidents_once(client: redis.Redis, keys: RedisKeys) -> None:
    shared = RedisIncidentState(client, keys)
    a, b = IncidentTracker(shared), IncidentTracker(shared)
    policy = IncidentPolicy(cooldown_s=0.0)
    a.observe("r1", "fp", "cam1", policy, [fired()], T0)
    b.observe("r1", "fp", "cam1", policy, [fired()], T0 + timedelta(minutes=1))
    closes = a.retain({"r1": "fp-new"}, T0 + timedelta(minutes=2)) + b.retain({"r1": "fp-new"}, T0)
    assert [c.reason for c in closes] == ["rule changed"]
