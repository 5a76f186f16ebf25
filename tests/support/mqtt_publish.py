"""A paho-mqtt publisher of sensor readings, run as its own process: `--rate` readings a second for `--seconds`,
`--batch` readings a message, timestamps 1/rate s apart from `--start` (so rule time is the readings' own).
Prints `SENT <readings> <messages>` when every message has been written to the broker."""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timedelta

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ingest.sensor_mqtt import topic_of


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sensor", default="wl-07")
    parser.add_argument("--rate", type=float, default=10_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--value", type=float, default=1.0)
    parser.add_argument("--start", default="2026-06-01T00:00:00+00:00")
    args = parser.parse_args()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"publisher-{args.sensor}")
    client.connect(args.host, args.port)
    client.loop_start()
    start, step = datetime.fromisoformat(args.start), 1.0 / args.rate
    total, messages = int(args.rate * args.seconds), 0
    began, sent = time.monotonic(), 0
    topic, last = topic_of(args.sensor), None
    while sent < total:
        n = min(args.batch, total - sent)
        items = [
            {
                "at": (start + timedelta(seconds=(sent + i) * step)).isoformat(),
                "value": args.value + (sent + i) % 7 * 0.01,
            }
            for i in range(n)
        ]
        last = client.publish(topic, json.dumps(items if args.batch > 1 else items[0]), qos=0)
        sent, messages = sent + n, messages + 1
        ahead = began + sent * step - time.monotonic()  # paced: `rate` readings a second, not faster
        if ahead > 0:
            time.sleep(ahead)
    if last is not None:
        last.wait_for_publish(30)
    client.disconnect()
    client.loop_stop()
    print(f"SENT {sent} {messages} {time.monotonic() - began:.3f}", flush=True)


if __name__ == "__main__":
    main()
