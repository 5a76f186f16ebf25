"""Sensor readings per second into the sensor rules, on one core: the rules alone, through MQTT (a real mosquitto
and a paho publisher in another process), and through `POST /api/v1/sensors/{id}/readings`.

Prints the `## Sensors` section of docs/benchmarks.md; `--write` replaces it in the file.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import ApiDeps, create_app
from bench.report import replace_section
from ingest.sensor_ingest import SensorIngest
from ingest.sensor_mqtt import SensorMqtt
from intake.bus import EventBus
from intake.evidence import EvidenceStore
from intake.store import EventStore
from tests.support.mqtt import MqttBroker, mosquitto
from tests.support.sensors import T0, FixedClock, RecordingSink, engine_of, readings, water_level

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Sensors"
RULES = (ROOT / "configs" / "demo" / "rules" / "sensors.yaml").read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class Rate:
    what: str
    readings: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.readings / self.seconds


def ingest_of(max_queue: int = 10_000_000) -> SensorIngest:
    engine = engine_of(RULES, Path(tempfile.mkdtemp(prefix="gridwatch-bench-sensors-")))
    return SensorIngest([water_level()], lambda: engine, RecordingSink(), FixedClock(), max_queue=max_queue)


def rules_only(n: int) -> Rate:
    ingest = ingest_of()
    batch = readings([0.1 + (i % 50) * 0.01 for i in range(n)], step_s=0.01)  # wavering under the threshold
    began = time.perf_counter()
    for reading in batch:
        ingest.process(reading)
    return Rate("rules alone (`SensorIngest.process`, 4 demo rules on the sensor)", n, time.perf_counter() - began)


def over_mqtt(broker: MqttBroker, n: int, batch: int) -> Rate:
    ingest = ingest_of()
    client = SensorMqtt(ingest, FixedClock(), broker.host, broker.port)
    ingest.start()
    client.start()
    while not client.connected:
        time.sleep(0.01)
    args = [sys.executable, "-m", "tests.support.mqtt_publish", "--port", str(broker.port), "--value", "0.1"]
    args += ["--rate", "10000000", "--seconds", str(n / 10_000_000), "--batch", str(batch)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    began = time.perf_counter()
    publisher = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True, preexec_fn=_other_cores)
    deadline = began + 300  # a lost message would otherwise keep the benchmark waiting
    while ingest.stats.evaluated + ingest.stats.overflow < n and time.perf_counter() < deadline:
        time.sleep(0.005)
    seconds = time.perf_counter() - began
    publisher.wait(60)
    client.stop()
    ingest.stop()
    what = f"MQTT, {batch} reading{'s' if batch > 1 else ''} a message, into the rules"
    return Rate(what, ingest.stats.evaluated, seconds)


def over_http(n: int, batch: int, folder: Path) -> Rate:
    ingest = ingest_of()
    bus = EventBus()
    with EventStore(folder / "events.sqlite3") as store:
        deps = ApiDeps(store, EvidenceStore(folder / "evidence"), bus, dict, "bench", readings=ingest)
        with TestClient(create_app(deps)) as client:
            ingest.start()
            body = [{"at": (T0 + timedelta(seconds=i)).isoformat(), "value": 0.1} for i in range(batch)]
            began = time.perf_counter()
            for _ in range(n // batch):
                client.post("/api/v1/sensors/wl-07/readings", json=body).raise_for_status()
            ingest.drain(120)
            seconds = time.perf_counter() - began
            ingest.stop()
    bus.close()
    what = f"HTTP (in-process client), {batch} reading{'s' if batch > 1 else ''} a request, into the rules"
    return Rate(what, ingest.stats.evaluated, seconds)


def _other_cores() -> None:
    """The publisher runs off the measured core where there is another one."""
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, set(cores[:-1]) or set(cores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--write", action="store_true", help="replace the section in docs/benchmarks.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("ingest", "incidents", "rules", "httpx", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    all_cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_setaffinity") else []
    n = args.readings
    rates = [rules_only(n)]
    with mosquitto() as broker:  # started before this process is pinned: the broker keeps every core
        if all_cores:
            os.sched_setaffinity(0, {all_cores[-1]})
        rates += [over_mqtt(broker, n, 100), over_mqtt(broker, n // 10, 1)]
    with tempfile.TemporaryDirectory() as folder:
        rates += [over_http(n // 4, 1000, Path(folder)), over_http(n // 100, 1, Path(folder))]
    for r in rates:
        logger.info("%s: %d readings in %.2f s, %.0f/s", r.what, r.readings, r.seconds, r.per_s)
    text = section(rates, n)
    if args.write:
        replace_section(ROOT / "docs" / "benchmarks.md", HEADING, text)
    print(text)


def section(rates: list[Rate], n: int) -> str:
    rows = "\n".join(f"| {r.what} | {r.readings:,} | {r.seconds:.2f} | {r.per_s:,.0f} |" for r in rates)
    return f"""{HEADING}

How to run: `make bench` (or `.venv/bin/python -m bench.sensors --write`). Machine: {platform.machine()},
{os.cpu_count()} cores, shared; the measured process (paho's network thread, the `sensor-rules` thread, the API)
pinned to one core, the broker (Debian's mosquitto, on a free loopback port) and the publisher (paho, unpaced) on
the others. Rules: the four demo sensor rules (`configs/demo/rules/sensors.yaml`) on one sensor, readings
wavering under the threshold (no incidents). Up to {n:,} readings a run; the ingest queue is large enough that
nothing overflows, so each figure is what the rules take in, not what a full queue refuses.

| path | readings | s | readings/s |
|---|---|---|---|
{rows}
"""


if __name__ == "__main__":
    main()
