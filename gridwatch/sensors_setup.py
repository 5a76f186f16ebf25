"""The sensor side of `gridwatch run`: the registry, the ingest thread, the MQTT client, and the linkage to cameras.

`build_sensors` reads `sensors.yaml` (linked cameras checked against `cameras.yaml`), starts nothing; `Sensors`
starts and stops the ingest thread and the MQTT client together and reports their figures for `/healthz`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.clock import Clock
from core.events import Event
from core.settings import SensorSettings
from core.sink import EventSink
from incidents.tracker import IncidentTracker
from ingest.sensor_ingest import SensorIngest
from ingest.sensor_mqtt import SensorMqtt
from ingest.sensors import SENSORS_FILE, Sensor, load_sensors
from rules.engine import RuleEngine

logger = logging.getLogger(__name__)


@dataclass
class Sensors:
    ingest: SensorIngest
    mqtt: SensorMqtt | None = None

    def start(self) -> None:
        self.ingest.start()
        if self.mqtt is not None:
            self.mqtt.start()

    def stop(self) -> None:
        if self.mqtt is not None:
            self.mqtt.stop()
        self.ingest.stop()

    def health(self) -> dict[str, object]:
        mqtt = None if self.mqtt is None else {"connected": self.mqtt.connected, "messages": self.mqtt.messages}
        return {**self.ingest.report(), "mqtt": mqtt}


def build_sensors(
    config_dir: Path,
    settings: SensorSettings,
    camera_ids: Sequence[str],
    engine: Callable[[], RuleEngine],
    sink: EventSink,
    clock: Clock,
    *,
    incidents: IncidentTracker | None = None,
    on_open: Callable[[Sensor, Event], None] | None = None,
) -> Sensors | None:
    """The sensor ingest of `config_dir/sensors.yaml`; None when there is no such file."""
    path = config_dir / SENSORS_FILE
    if not path.exists():
        return None
    sensors = load_sensors(path, set(camera_ids))
    ingest = SensorIngest(
        sensors,
        engine,
        sink,
        clock,
        incidents=incidents,
        max_queue=settings.max_queue,
        tick_s=settings.tick_s,
        on_open=on_open,
    )
    mqtt = None
    if settings.mqtt_host is not None:
        password = None if settings.mqtt_password is None else settings.mqtt_password.get_secret_value()
        mqtt = SensorMqtt(
            ingest,
            clock,
            settings.mqtt_host,
            settings.mqtt_port,
            username=settings.mqtt_username,
            password=password,
            qos=settings.mqtt_qos,
        )
    logger.info("%d sensors from %s, MQTT %s", len(ingest.sensors), path, "on" if mqtt else "off")
    return Sensors(ingest, mqtt)
