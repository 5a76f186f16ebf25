from __future__ import annotations

import threading

from core.types import Verdict
from rules.lifecycle import EventGate


def fired(rule: str = "walkway-intrusion", camera: str = "cam-1", zone: str | None = "walkway") -> Verdict:
    return Verdict(rule_id=rule, camera_id=camera, fired=True, zone=zone)


# Each step: verdict, monotonic time, expected admit. Cooldown 60 s throughout.
STEPS: list[tuple[Verdict, float, bool]] = [
    (fired(), 100.0, True),  # first event opens
    (fired(), 100.0, False),  # same instant
    (fired(), 159.9, False),  # within cooldown
    (fired(zone="gate"), 130.0, True),  # another zone of the same rule and camera
    (fired(camera="cam-2"), 130.0, True),  # another camera
    (fired(rule="other-rule"), 130.0, True),  # another rule
    (fired(zone=None), 130.0, True),  # a rule without a zone is its own key
    (fired(), 160.0, True),  # cooldown over: fires again and restarts the cooldown
    (fired(), 219.0, False),
    (fired(zone="gate"), 190.0, True),  # its own cooldown, from 130
    (Verdict(rule_id="walkway-intrusion", camera_id="cam-9", fired=False), 500.0, False),  # not fired
    (fired(camera="cam-9"), 500.0, True),  # ... and a not-fired verdict started no cooldown
]


def test_cooldown_per_rule_camera_and_zone() -> None:
    gate = EventGate()
    results = [gate.admit(verdict, 60.0, now) for verdict, now, _ in STEPS]
    assert results == [expected for _, _, expected in STEPS]


def test_zero_cooldown_admits_every_fired_verdict() -> None:
    gate = EventGate()
    assert [gate.admit(fired(), 0.0, 10.0) for _ in range(3)] == [True, True, True]


def test_expire_forgets_keys_past_their_cooldown() -> None:
    gate = EventGate()
    gate.admit(fired(), 60.0, 0.0)
    gate.admit(fired(camera="cam-2"), 60.0, 30.0)
    assert gate.expire(59.0) == 0
    assert gate.expire(60.0) == 1
    assert len(gate) == 1
    assert not gate.admit(fired(camera="cam-2"), 60.0, 89.0)


def test_concurrent_admits_open_one_event() -> None:
    # given: 16 workers fire the same rule on the same camera at the same moment
    gate = EventGate()
    barrier = threading.Barrier(16)
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        admitted = gate.admit(fired(), 60.0, 1.0)
        with lock:
            results.append(admitted)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    # when
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then
    assert sorted(results) == [False] * 15 + [True]


def test_reopen_lifts_the_cooldown_of_an_undelivered_event() -> None:
    gate = EventGate()
    verdict = Verdict(rule_id="r", camera_id="c", fired=True, zone="z")
    assert gate.admit(verdict, 60.0, 0.0)
    gate.reopen(verdict)
    assert gate.admit(verdict, 60.0, 1.0)
    assert not gate.admit(verdict, 60.0, 2.0)
