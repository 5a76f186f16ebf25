"""A real MQTT broker for tests and benchmarks: Debian's `mosquitto`, started on a free loopback port with a
generated config file (anonymous clients allowed on that listener only), never the system service."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT_S = 10.0
CANDIDATES = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto")


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    return found or next((c for c in CANDIDATES if Path(c).exists()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class MqttBroker:
    host: str
    port: int
    log: Path


@contextmanager
def mosquitto(port: int | None = None) -> Iterator[MqttBroker]:
    """Start a broker (on `port`, else a free one) and wait until it accepts connections; stop it afterwards."""
    binary = mosquitto_binary()
    if binary is None:
        raise RuntimeError("mosquitto is not installed: `make sysdeps` installs Debian's mosquitto package")
    root = Path(tempfile.mkdtemp(prefix="gridwatch-mqtt-"))
    port, log = port or _free_port(), root / "mosquitto.log"
    conf = root / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "log_dest stderr\nmax_queued_messages 0\nmax_inflight_messages 0\n",
        encoding="utf-8",
    )
    with log.open("wb") as out:  # as root, mosquitto drops to its own user: it writes only to what it is given
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                    raise RuntimeError(f"mosquitto did not listen on {port}: {tail}") from None
                time.sleep(0.05)
        yield MqttBroker("127.0.0.1", port, log)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def mqtt_broker() -> Iterator[MqttBroker]:
    """A broker of the test's own, on a free loopback port."""
    with mosquitto() as broker:
        yield broker
