"""A continuous camera in `gridwatch run`: held open beside the patrol's round, its samples observed window after
window by a rule that follows motion (line crossing), which a keyframe patrol could not serve."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import Settings
from gridwatch.modelstore import fetch_model
from gridwatch.runtime import Runtime, build_runtime
from tests.support.assets import ROOT, model_mirror

pytestmark = pytest.mark.slow

RULES = """\
rules:
  - id: walkway-westbound
    kind: line_crossing
    cameras: [cam-live]
    line: {name: walkway, a: [0.30, 0.31], b: [0.30, 0.52]}
    in_side: right
    direction: in
    classes: [person]
    min_confidence: 0.4
    cooldown_s: 30
    category: "0501"
"""


@pytest.fixture
def runtime(tmp_path: Path, footage_path: Path) -> Iterator[Runtime]:
    config = tmp_path / "config"
    (config / "rules").mkdir(parents=True)
    (config / "cameras.yaml").write_text(
        "cameras:\n"
        f"  - {{id: cam-live, url: 'file://{footage_path}#t=15', mode: continuous, sample_fps: 5, window_s: 2}}\n"
        f"  - {{id: cam-round, url: 'file://{footage_path}#t=40', revisit_s: 2}}\n"
    )
    (config / "rules" / "line.yaml").write_text(RULES)
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(ROOT / "models" / "yolox-nano.yaml", models)
    settings = Settings(data_dir=tmp_path / "data", models_dir=models, model_mirror=str(model_mirror()))
    fetch_model(models / "yolox-nano.yaml", models, settings.model_mirror)
    built = build_runtime(config, settings)
    built.start()
    yield built
    built.stop()


def test_a_continuous_camera_counts_a_crossing_while_the_round_goes_on(runtime: Runtime) -> None:
    # when: the clip from second 15 plays in real time (the first westbound crossing comes within 30 s)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not runtime.store.list(rule_id="walkway-westbound"):
        time.sleep(0.5)
    # then: the crossing is an incident of the continuous camera, which is never in the scheduler's round, while
    # the keyframe camera is patrolled as before
    (event, *_) = runtime.store.list(rule_id="walkway-westbound")
    assert event.camera_id == "cam-live" and event.incident_id
    (watch,) = runtime.patrol.watches
    assert watch.stats.windows >= 1 and watch.stats.reconnects == 0 and watch.stats.health == "online"
    report = runtime.patrol.report()
    assert [c.camera_id for c in report.schedule.cameras] == ["cam-round"]
    assert report.schedule.cameras[0].visits >= 1
