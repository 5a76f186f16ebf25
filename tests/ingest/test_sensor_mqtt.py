"""Sensor readings through a real broker (Debian's mosquitto) from real paho clients into the sensor rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from core.events import EventState
from ingest.sensor_ingest import SensorIngest
from ingest.sensor_mqtt import SensorMqtt, topic_of
from tests.support.mqtt import MqttBroker, mosquitto
from tests.support.sensors import T0, THRESHOLD_RULES, FixedClock, RecordingSink, engine_of, ingest_of

ROOT = Path(__file__).resolve().parents[2]


def wait_for(done: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    """Wait for a condition (never a timed assertion: the limit only stops a broken test)."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)


def publisher(broker: MqttBroker) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-publisher")
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def publish(client: mqtt.Client, topic: str, payload: object) -> None:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    client.publish(topic, body, qos=1).wait_for_publish(10)


@pytest.fixture
def rig(mqtt_broker: MqttBroker, tmp_path: Path) -> Iterator[tuple[SensorIngest, SensorMqtt, RecordingSink]]:
    sink = RecordingSink()
    ingest = ingest_of(engine_of(THRESHOLD_RULES, tmp_path), sink)
    client = SensorMqtt(ingest, FixedClock(), mqtt_broker.host, mqtt_broker.port, qos=1)
    ingest.start()
    client.start()
    wait_for(lambda: client.connected, "the ingest's subscription")
    yield ingest, client, sink
    client.stop()
    ingest.stop()


def test_threshold_with_hysteresis_opens_and_closes_one_incident(
    rig: tuple[SensorIngest, SensorMqtt, RecordingSink], mqtt_broker: MqttBroker
) -> None:
    ingest, _, sink = rig
    # given: a level that crosses 3.5, wavers inside the 3.2..3.5 band, then falls under 3.2
    values = [3.0, 3.6, 3.4, 3.3, 3.55, 3.25, 3.1, 3.0]
    client = publisher(mqtt_broker)
    for i, value in enumerate(values):
        at = (T0 + timedelta(seconds=10 * i)).isoformat()
        publish(client, topic_of("wl-07"), {"at": at, "value": value})
    client.disconnect()
    # when
    wait_for(lambda: ingest.stats.evaluated == len(values), "every reading evaluated")
    # then: one incident, opened at the crossing and closed when the level fell under clear_below
    assert sink.states() == [EventState.open, EventState.close]
    opened, closed = sink.events
    assert opened.incident_id == closed.incident_id
    assert (opened.sensor_id, opened.camera_id, opened.rule_kind) == ("wl-07", "", "sensor_threshold")
    assert "3.6 m above 3.5 m" in opened.reason
    assert opened.first_seen == T0 + timedelta(seconds=10)
    assert closed.last_seen == T0 + timedelta(seconds=60)
    assert (opened.grid_code, opened.lon, opened.lat) == ("310101001001", 121.4737, 31.2304)


def test_bad_readings_are_counted_and_reported_never_events(
    rig: tuple[SensorIngest, SensorMqtt, RecordingSink], mqtt_broker: MqttBroker
) -> None:
    ingest, _, sink = rig
    client = publisher(mqtt_broker)
    topic = topic_of("wl-07")
    publish(client, topic, b"{not json")
    publish(client, topic, {"value": "3.9"})
    publish(client, topic, {"value": 42.0})  # outside the sensor's range [0, 10]
    publish(client, topic, {"at": "yesterday", "value": 3.9})
    publish(client, topic, {"at": "2026-06-01T08:00:00", "value": 3.9})  # no zone: refused
    publish(client, topic, {"value": 3.9, "unit": "m"})
    publish(client, topic_of("no-such-sensor"), {"value": 3.9})
    publish(client, topic, [{"value": 1.0}, {"value": -5}, {"value": 2.0}])  # the good ones of a batch are taken
    publish(client, topic, {"value": 1.5})
    client.disconnect()
    wait_for(lambda: ingest.stats.evaluated == 3, "the good readings evaluated")
    report = ingest.report()
    assert report["refused"] == {
        "wl-07": {"bad_time": 2, "bad_value": 1, "malformed": 2, "out_of_range": 2},
        "?": {"unknown_sensor": 1},
    }
    assert sink.events == []
    assert report["failures"] == 0


def test_a_flood_of_10000_readings_a_second_is_taken_without_loss(
    rig: tuple[SensorIngest, SensorMqtt, RecordingSink], mqtt_broker: MqttBroker
) -> None:
    ingest, _, sink = rig
    # when: another process publishes 10,000 readings a second for 3 s, 100 a message
    sent = run_publisher(mqtt_broker, rate=10_000, seconds=3.0, batch=100)
    # then: every one reached the rules, in a queue that never held more than its bound
    wait_for(lambda: ingest.stats.evaluated == sent, "every reading evaluated")
    assert sent == 30_000
    assert ingest.stats.overflow == 0
    assert ingest.report()["refused"] == {}
    assert ingest.stats.max_depth <= ingest.max_queue
    assert sink.events == []


def test_a_flood_past_the_queue_bound_is_dropped_counted_and_bounded(mqtt_broker: MqttBroker, tmp_path: Path) -> None:
    # given: a queue of 1,000 readings whose consumer has not started
    sink = RecordingSink()
    ingest = ingest_of(engine_of(THRESHOLD_RULES, tmp_path), sink, max_queue=1_000)
    client = SensorMqtt(ingest, FixedClock(), mqtt_broker.host, mqtt_broker.port)
    client.start()
    try:
        wait_for(lambda: client.connected, "the ingest's subscription")
        sent = run_publisher(mqtt_broker, rate=10_000, seconds=2.0, batch=100)
        wait_for(lambda: ingest.stats.taken + ingest.stats.overflow == sent, "every message handled")
    finally:
        client.stop()
    # then: the first 1,000 were kept, the rest refused whole messages at a time and counted
    assert (ingest.stats.taken, ingest.stats.overflow) == (1_000, sent - 1_000)
    assert ingest.refused("wl-07", "overflow") == sent - 1_000
    assert ingest.stats.max_depth == 1_000
    ingest.start()
    try:
        assert ingest.drain()
    finally:
        ingest.stop()
    assert ingest.stats.evaluated == 1_000


def test_stale_fires_when_readings_stop_and_the_next_reading_closes_it(mqtt_broker: MqttBroker, tmp_path: Path) -> None:
    sink = RecordingSink()
    text = "rules:\n  - {id: quiet, kind: sensor_stale, sensors: ['*'], after_s: 300}\n"
    ingest = ingest_of(engine_of(text, tmp_path / "stale"), sink, tick_s=3600)  # ticks by the test only
    client = SensorMqtt(ingest, FixedClock(), mqtt_broker.host, mqtt_broker.port, client_id="stale", qos=1)
    ingest.start()
    client.start()
    try:
        wait_for(lambda: client.connected, "the ingest's subscription")
        pub = publisher(mqtt_broker)
        publish(pub, topic_of("wl-07"), {"at": T0.isoformat(), "value": 1.0})
        wait_for(lambda: ingest.stats.evaluated == 1, "the reading evaluated")
        # when: time passes without readings (ticks at chosen times), then a reading comes
        quiet = [ingest.tick(T0 + timedelta(seconds=s)) for s in (60, 299, 300, 301, 900)]
        publish(pub, topic_of("wl-07"), {"at": (T0 + timedelta(seconds=901)).isoformat(), "value": 1.0})
        pub.disconnect()
        wait_for(lambda: ingest.stats.evaluated == 2, "the second reading evaluated")
    finally:
        client.stop()
        ingest.stop()
    # opened at 300 s of silence, updated once the cooldown (60 s) was over, closed by the next reading
    assert [len(events) for events in quiet] == [0, 0, 1, 0, 1]
    assert sink.states() == [EventState.open, EventState.update, EventState.close]
    assert "no reading for 300 s" in sink.events[0].reason


def test_the_client_reconnects_after_the_broker_restarts(tmp_path: Path) -> None:
    sink = RecordingSink()
    ingest = ingest_of(engine_of(THRESHOLD_RULES, tmp_path), sink)
    with mosquitto() as broker:
        client = SensorMqtt(ingest, FixedClock(), broker.host, broker.port, qos=1)
        client.start()
        wait_for(lambda: client.connected, "the first subscription")
    wait_for(lambda: not client.connected, "the disconnect")
    try:
        with mosquitto(broker.port) as again:
            wait_for(lambda: client.connected, "the subscription after the restart")
            pub = publisher(again)
            publish(pub, topic_of("wl-07"), {"value": 1.0})
            pub.disconnect()
            wait_for(lambda: ingest.stats.taken == 1, "the reading after the restart")
    finally:
        client.stop()
    assert client.connects == 2


def run_publisher(broker: MqttBroker, *, rate: int, seconds: float, batch: int) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "tests.support.mqtt_publish", "--port", str(broker.port)]
    args += ["--rate", str(rate), "--seconds", str(seconds), "--batch", str(batch)]
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    return int(done.stdout.split()[1])
