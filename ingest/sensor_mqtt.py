"""Sensor readings by MQTT: a paho-mqtt client subscribed to `gridwatch/sensors/+/readings`.

A message on `gridwatch/sensors/{id}/readings` is one reading `{"at": "2026-06-01T08:00:00+08:00", "value": 3.4}`
(`at` optional: the time it was received; ISO 8601 with a zone, or epoch seconds) or a list of up to 1000 of them.
A message that is not such JSON, and every bad item of a list, is refused and counted per sensor and reason
(`SensorIngest.reject`); the callback never raises. The good items of a list are offered together.

paho's network thread reconnects by itself, waiting 1 s, then twice as long each time up to `max_backoff_s`; the
subscription is made again on every connect.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from core.clock import Clock
from core.redact import sanitize_url
from core.sensors import Reading, ReadingIntake

logger = logging.getLogger(__name__)

TOPIC_PREFIX = "gridwatch/sensors/"
TOPIC_SUFFIX = "/readings"
SUBSCRIPTION = f"{TOPIC_PREFIX}+{TOPIC_SUFFIX}"
MAX_BATCH = 1000


def topic_of(sensor_id: str) -> str:
    return f"{TOPIC_PREFIX}{sensor_id}{TOPIC_SUFFIX}"


def _time(raw: object, received: datetime) -> datetime | None:
    if raw is None:
        return received
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw):
        try:
            return datetime.fromtimestamp(raw, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(raw, str) and len(raw) <= 64:
        try:
            at = datetime.fromisoformat(raw)
        except ValueError:
            return None
        return at if at.tzinfo is not None else None
    return None


def parse_item(sensor_id: str, item: object, received: datetime) -> Reading | str:
    """One reading, or the reason it is not one (`malformed`, `bad_time`, `bad_value`)."""
    if not isinstance(item, dict) or not set(item) <= {"at", "value"} or "value" not in item:
        return "malformed"
    value = item["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "bad_value"
    at = _time(item.get("at"), received)
    if at is None:
        return "bad_time"
    return Reading(sensor_id, at, float(value))


def parse_payload(sensor_id: str, payload: bytes | bytearray, received: datetime) -> tuple[list[Reading], list[str]]:
    """The readings of one message and the reasons of its bad items."""
    try:
        data: Any = json.loads(payload)
    except (ValueError, RecursionError):
        return [], ["malformed"]
    items = data if isinstance(data, list) else [data]
    if len(items) > MAX_BATCH:
        return [], ["batch_too_large"]
    readings, bad = [], []
    for item in items:
        found = parse_item(sensor_id, item, received)
        if isinstance(found, str):
            bad.append(found)
        else:
            readings.append(found)
    return readings, bad


def handle_message(intake: ReadingIntake, topic: str, payload: bytes | bytearray, received: datetime) -> int:
    """Validate one message and offer its readings; returns how many were taken. Never raises for bad input."""
    if not (topic.startswith(TOPIC_PREFIX) and topic.endswith(TOPIC_SUFFIX)):
        intake.reject("?", "bad_topic")
        return 0
    sensor_id = topic[len(TOPIC_PREFIX) : -len(TOPIC_SUFFIX)]
    if not intake.known(sensor_id):
        intake.reject(sensor_id, "unknown_sensor")
        return 0
    readings, bad = parse_payload(sensor_id, payload, received)
    good = []
    for reading in readings:
        problem = intake.check(sensor_id, reading.value)
        if problem:
            bad.append(problem)
        else:
            good.append(reading)
    for reason in set(bad):
        intake.reject(sensor_id, reason, bad.count(reason))
    return intake.offer(good).taken if good else 0


class SensorMqtt:
    """The MQTT side of the sensor ingest: connects (and reconnects) to the broker and feeds `intake`."""

    def __init__(
        self,
        intake: ReadingIntake,
        clock: Clock,
        host: str,
        port: int = 1883,
        *,
        username: str | None = None,
        password: str | None = None,
        client_id: str = "gridwatch-sensors",
        qos: int = 0,
        max_backoff_s: int = 60,
    ) -> None:
        self._intake, self._clock, self.qos = intake, clock, qos
        self._where = sanitize_url(f"mqtt://{host}:{port}")
        self.host, self.port = host, port
        self.connected = False  # connected and subscribed
        self._stopping = False
        self.connects = 0
        self.messages = 0
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.reconnect_delay_set(min_delay=1, max_delay=max_backoff_s)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    def start(self) -> None:
        self._client.connect_async(self.host, self.port, keepalive=30)
        self._client.loop_start()

    def stop(self) -> None:
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            logger.warning("sensors: broker %s refused the connection: %s", self._where, reason)
            return
        self.connects += 1
        client.subscribe(SUBSCRIPTION, qos=self.qos)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if any(r.is_failure for r in reasons):
            logger.warning("sensors: broker %s refused the subscription to %s", self._where, SUBSCRIPTION)
            return
        self.connected = True
        logger.info("sensors: connected to %s, subscribed to %s", self._where, SUBSCRIPTION)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.connected = False
        if self._stopping:
            logger.info("sensors: disconnected from %s", self._where)
        else:
            logger.warning("sensors: disconnected from %s (%s); reconnecting with backoff", self._where, reason)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        self.messages += 1
        try:
            handle_message(self._intake, message.topic, message.payload, self._clock.now())
        except UnicodeDecodeError:  # a topic that is not UTF-8
            self._intake.reject("?", "bad_topic")
        except Exception:  # the callback boundary: paho's network thread must never see an exception
            logger.exception("sensors: a message (%d bytes) not handled", len(message.payload))
