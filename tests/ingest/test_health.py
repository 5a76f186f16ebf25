from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from core.events import EventState, Severity
from ingest.cameras import Camera
from ingest.health import CameraHealthIncidents
from ingest.patrol import Patrol
from ingest.scheduler import BackoffPolicy, Health, HealthChange, InProcessScheduler
from tests.ingest.test_patrol import RecordingPipeline

CAM = Camera(id="gate-3", name="北门", url="rtsp://admin:pw@10.0.0.3/ch1", grid_code="310101001001")
AT = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("before", "after", "state", "severity"),
    [
        (Health.degraded, Health.offline, EventState.open, Severity.major),
        (Health.offline, Health.online, EventState.close, Severity.info),
        (Health.online, Health.degraded, None, None),
        (Health.degraded, Health.online, None, None),
        (Health.unknown, Health.online, None, None),
    ],
)
def test_only_offline_and_its_recovery_are_events(
    before: Health, after: Health, state: EventState | None, severity: Severity | None
) -> None:
    health = CameraHealthIncidents()
    if before == Health.offline:  # the camera went offline before
        health.event(CAM, HealthChange(CAM.id, Health.degraded, Health.offline, "refused"), AT)
    event = health.event(
        CAM, HealthChange(CAM.id, before, after, "camera gate-3 (rtsp://***@10.0.0.3/ch1): refused"), AT
    )
    if state is None:
        assert event is None
        return
    assert event is not None
    assert (event.state, event.severity, event.rule_id, event.camera_id) == (state, severity, "camera-health", "gate-3")
    assert event.grid_code == "310101001001" and event.evidence == []
    assert "pw" not in event.model_dump_json()


def test_the_patrol_reports_a_camera_going_offline_once() -> None:
    changes: list[HealthChange] = []
    cameras = [Camera(id="dead", url="rtsp://h/dead", revisit_s=0.01), Camera(id="ok", url="rtsp://h/ok")]
    scheduler = InProcessScheduler(cameras, time.monotonic, BackoffPolicy(base_s=0.01, max_s=0.02, offline_after=2))
    patrol = Patrol(
        scheduler,
        RecordingPipeline(broken={"dead"}),  # type: ignore[arg-type]
        workers=2,
        on_health=lambda camera, change: changes.append(change),
    )
    patrol.start()
    time.sleep(0.5)
    patrol.stop()
    dead = [(c.before, c.after) for c in changes if c.camera_id == "dead"]
    assert dead == [(Health.unknown, Health.degraded), (Health.degraded, Health.offline)]
    health = CameraHealthIncidents()
    events = [health.event(cameras[0], c, AT) for c in changes if c.camera_id == "dead"]
    assert [None if e is None else e.state for e in events] == [None, EventState.open]


def test_offline_and_back_online_share_one_incident_id() -> None:
    # given
    health = CameraHealthIncidents()
    # when: offline, back, offline again
    down = health.event(CAM, HealthChange(CAM.id, Health.degraded, Health.offline, "refused"), AT)
    up = health.event(CAM, HealthChange(CAM.id, Health.offline, Health.online, ""), AT)
    again = health.event(CAM, HealthChange(CAM.id, Health.degraded, Health.offline, "refused"), AT)
    # then: one incident opened and closed, then a new one
    assert down is not None and up is not None and again is not None
    assert (down.state, up.state, again.state) == (EventState.open, EventState.close, EventState.open)
    assert down.incident_id == up.incident_id != again.incident_id
    assert up.reason == "camera back online" and down.reason.startswith("camera offline")
