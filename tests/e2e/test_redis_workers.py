"""Many workers, one patrol, over the real RTSP server and a real Redis: `gridwatch run` (patrol.backend redis,
with the intake) and a `gridwatch worker` share the cameras; the worker's events reach the one intake store."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import GridwatchError
from core.settings import Settings
from gridwatch.modelstore import fetch_model
from gridwatch.redis_setup import RedisParts, with_redis
from gridwatch.runtime import Runtime, build_runtime
from gridwatch.worker import Worker, build_worker
from tests.e2e.test_patrol_rtsp import RULES, free_port, wait_for
from tests.support.assets import ROOT, model_mirror
from tests.support.redis import RedisServer
from tests.support.rtsp import RtspServer


@pytest.fixture
def config(tmp_path: Path, rtsp_server: RtspServer) -> Path:
    config = tmp_path / "config"
    (config / "rules").mkdir(parents=True)
    (config / "cameras.yaml").write_text(
        "cameras:\n" + "".join(f"  - {{id: cam-{i}, url: '{rtsp_server.url(i)}', revisit_s: 2}}\n" for i in range(4))
    )
    (config / "rules" / "site.yaml").write_text(RULES)
    return config


def settings_for(tmp_path: Path, name: str, redis_url: str, namespace: str) -> Settings:
    models = tmp_path / "models"
    if not models.exists():
        models.mkdir()
        shutil.copy(ROOT / "models" / "yolox-nano.yaml", models)
        fetch_model(models / "yolox-nano.yaml", models, str(model_mirror()))
    patrol = {"max_in_flight": 2, "open_timeout_s": 2, "read_timeout_s": 2, "redis_namespace": namespace}
    base = Settings(data_dir=tmp_path / name, models_dir=models, model_mirror=str(model_mirror()), patrol=patrol)
    return with_redis(base, redis_url)


@pytest.fixture
def embedded_and_worker(tmp_path: Path, config: Path, redis_server: RedisServer) -> Iterator[tuple[Runtime, Worker]]:
    namespace = redis_server.namespace()
    runtime = build_runtime(config, settings_for(tmp_path, "run", redis_server.url, namespace))
    worker = build_worker(config, settings_for(tmp_path, "worker", redis_server.url, namespace))
    runtime.start()
    worker.start()
    yield runtime, worker
    worker.stop()
    runtime.stop()


@pytest.mark.rtsp
@pytest.mark.slow
def test_a_worker_and_the_embedded_patrol_share_cameras_and_one_intake(
    embedded_and_worker: tuple[Runtime, Worker],
) -> None:
    runtime, worker = embedded_and_worker

    # when both patrol until each has visited and the walkway rule has fired on two cameras
    def shared() -> bool:
        fired = {e.camera_id for e in runtime.store.list(rule_id="walkway-intrusion")}
        return len(fired) >= 2 and runtime.patrol.stats.visits >= 2 and worker.patrol.stats.visits >= 2

    wait_for(shared, timeout=120)

    # then both did visits, one patrol report (from Redis) counts them all, and the events are stored once each
    assert runtime.patrol.stats.visits >= 2 and worker.patrol.stats.visits >= 2
    report = worker.patrol.report().schedule
    assert report.enabled == 4 and all(c.visits >= 1 for c in report.cameras)
    events = runtime.store.list(rule_id="walkway-intrusion", limit=100)
    assert len({e.camera_id for e in events}) >= 2
    assert len({e.id for e in events}) == len(events)
    assert runtime.health()["intake"]["stream"]["stored"] >= 1  # type: ignore[index]


def test_the_redis_password_is_never_shown(redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # a server that answers, and one that does not
    url = redis_server.url.replace("redis://", "redis://:s3cretpw@")
    settings = with_redis(Settings(), url)
    parts = RedisParts.connect(settings)
    assert parts is not None
    parts.close()
    away = with_redis(Settings(), f"redis://:s3cretpw@127.0.0.1:{free_port()}/0")
    with pytest.raises(GridwatchError) as err:
        RedisParts.connect(away)
    assert "redis://***@127.0.0.1" in str(err.value)
    assert "s3cretpw" not in str(err.value) and "s3cretpw" not in caplog.text
    assert "s3cretpw" not in repr(settings) and "s3cretpw" not in settings.model_dump_json()
