"""Hot reload during a running patrol (real file camera, YOLOX, patrol threads): an unchanged rule keeps its
open incident and its state; a changed one closes its incident and starts afresh."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from core.clock import SystemClock
from core.events import Event, EventState
from detectors.detector import Detector
from detectors.manifest import load_manifest
from detectors.session import create_session
from gridwatch.runtime import RulesHolder
from gridwatch.simulate import RecordingSink
from incidents.events import RuleFacts
from incidents.tracker import IncidentChange
from ingest.cameras import Camera
from ingest.grabber import Grabber
from ingest.patrol import Patrol
from ingest.scheduler import InProcessScheduler
from ingest.visit import VisitPipeline
from tests.support.assets import ROOT

RULES = """\
rules:
  - id: walkway
    kind: zone_intrusion
    zone:
      name: walkway
      polygon: [[0.0, 0.31], [0.85, 0.31], [1.0, 0.45], [1.0, 0.85], [0.55, 0.61], [0.3, 0.48], [0.0, 0.41]]
    classes: [person]
    cooldown_s: 0.5
  - id: walkway-b
    kind: zone_intrusion
    zone:
      name: walkway
      polygon: [[0.0, 0.31], [0.85, 0.31], [1.0, 0.45], [1.0, 0.85], [0.55, 0.61], [0.3, 0.48], [0.0, 0.41]]
    classes: [person]
    min_confidence: {confidence}
    cooldown_s: 0.5
  - id: kerb
    kind: persistence
    zone: {{name: kerb, polygon: [[0.82, 0.10], [0.94, 0.10], [0.94, 0.22], [0.82, 0.22]]}}
    classes: [car, truck, bus]
    min_hits: 1
    window: 3
    min_span_s: 0
    cooldown_s: 0.5
"""


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def of(events: list[Event], rule_id: str) -> list[tuple[EventState, str]]:
    return [(e.state, e.incident_id) for e in events if e.rule_id == rule_id]


@pytest.mark.slow
def test_a_reload_keeps_unchanged_rules_incidents_and_state_and_resets_changed_ones(
    tmp_path: Path, yolox_path: Path, footage_path: Path
) -> None:
    # given: a patrol of one file camera with three rules, all three incidents open
    (tmp_path / "site.yaml").write_text(RULES.format(confidence=0.4), encoding="utf-8")
    detector = Detector(create_session(yolox_path), load_manifest(ROOT / "models" / "yolox-nano.yaml"))
    camera = Camera(id="cam-1", url=footage_path.as_uri(), revisit_s=0.2)
    sink, closed = RecordingSink(), list[IncidentChange]()

    def deliver(change: IncidentChange, facts: RuleFacts) -> bool:
        closed.append(change)
        return True

    holder = RulesHolder(tmp_path, detector.labels, [camera], deliver=deliver)
    grabber = Grabber()
    pipeline = VisitPipeline(grabber, detector, holder.engine, holder.incidents, sink, SystemClock())
    patrol = Patrol(InProcessScheduler([camera], time.monotonic), pipeline, workers=1)
    patrol.start()
    try:
        wait_for(lambda: all(of(sink.events, r) for r in ("walkway", "walkway-b", "kerb")))
        kerb_state = holder.state.get(holder.engine().rule("kerb").fingerprint(), "cam-1")
        assert kerb_state is not None
        # when: walkway-b's definition changes, the others do not
        (tmp_path / "site.yaml").write_text(RULES.format(confidence=0.41), encoding="utf-8")
        holder.poll()
        seen = len(sink.events)
        wait_for(lambda: len(of(sink.events[seen:], "walkway-b")) > 0 and len(of(sink.events[seen:], "walkway")) > 1)
        wait_for(lambda: len(of(sink.events[seen:], "kerb")) > 1)
    finally:
        patrol.stop()
        grabber.close()
    # then: walkway and kerb kept their one incident (updates only), and the kerb's state object carried on
    for rule_id in ("walkway", "kerb"):
        steps = of(sink.events, rule_id)
        assert [s for s, _ in steps].count(EventState.open) == 1, rule_id
        assert len({i for _, i in steps}) == 1, rule_id
    assert holder.state.get(holder.engine().rule("kerb").fingerprint(), "cam-1") is kerb_state
    # walkway-b's incident was closed by the reload and a new one opened under the new definition
    [close] = closed
    assert (close.rule_id, close.state, close.reason) == ("walkway-b", EventState.close, "rule changed")
    b = of(sink.events, "walkway-b")
    assert b[0][0] == EventState.open and b[0][1] == close.incident_id
    reopened = [i for s, i in b if s == EventState.open]
    assert len(reopened) == 2 and reopened[1] != close.incident_id
