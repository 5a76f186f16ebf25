"""Learned rule state saved to `data_dir/rule-state.json` and loaded at the next start."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from gridwatch.rulestate import RULE_STATE_FILE, load_rule_state, save_rule_state
from gridwatch.runtime import RulesHolder, Runtime
from rules.engine import RuleEngine
from rules.loader import load_rule_files
from rules.state import InMemoryRuleState
from tests.rules.builders import LABELS, T0, Box, make_detections, observation

RULES = """\
rules:
  - id: plaza-count
    kind: count_anomaly
    zone: {{name: plaza, polygon: [[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]]}}
    classes: [person]
    min_history: {min_history}
  - id: plaza-fence
    kind: zone_intrusion
    zone: {{name: plaza, polygon: [[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]]}}
    classes: [person]
"""
CAMERAS = ("cam-1", "cam-2")


def engine(folder: Path, store: InMemoryRuleState, min_history: int = 8) -> RuleEngine:
    (folder / "site.yaml").write_text(RULES.format(min_history=min_history), encoding="utf-8")
    return RuleEngine(load_rule_files([folder]), LABELS, state=store)


def visit(eng: RuleEngine, camera: str, count: int, weeks: int, minutes: int = 0) -> bool:
    """Whether plaza-count fired on a visit with `count` people in the plaza, Monday 17:xx `weeks` after T0."""
    dets = make_detections(*(Box(170 + 2 * i, 200, 190 + 2 * i, 300) for i in range(count)))
    outcomes = eng.observe(observation(dets, camera_id=camera, at=T0 + timedelta(weeks=weeks, minutes=minutes)))
    return any(v.fired for o in outcomes if o.rule.id == "plaza-count" for v in o.verdicts)


def learn(eng: RuleEngine) -> None:
    """Eight samples of 4 people (one per quarter hour, two weeks) at both cameras."""
    for camera in CAMERAS:
        for i in range(8):
            assert not visit(eng, camera, 4, i // 4, 15 * (i % 4))


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    return folder


def test_a_saved_baseline_fires_after_a_restart_without_relearning(rules_dir: Path, tmp_path: Path) -> None:
    # given: a baseline learned and saved
    before = engine(rules_dir, InMemoryRuleState())
    learn(before)
    path = tmp_path / RULE_STATE_FILE
    assert save_rule_state(path, before, before.state) == 2
    # when: a new process with an empty store loads it
    store = InMemoryRuleState()
    after = engine(rules_dir, store)
    assert load_rule_state(path, after, store) == 2
    # then: a spike fires at once; only count_anomaly (a kind with save_state) was saved
    assert visit(after, "cam-1", 14, 5) and visit(after, "cam-2", 14, 5)
    document = json.loads(path.read_text(encoding="utf-8"))
    assert [r["rule_id"] for r in document["rules"].values()] == ["plaza-count"]
    assert sorted(next(iter(document["rules"].values()))["cameras"]) == list(CAMERAS)


def test_a_changed_rule_ignores_the_old_baseline(
    rules_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = engine(rules_dir, InMemoryRuleState())
    learn(before)
    path = tmp_path / RULE_STATE_FILE
    save_rule_state(path, before, before.state)
    # when: the rule changed (another fingerprint) before the restart
    caplog.set_level(logging.INFO, logger="gridwatch.rulestate")
    store = InMemoryRuleState()
    after = engine(rules_dir, store, min_history=4)
    assert load_rule_state(path, after, store) == 0
    # then: it learns afresh
    assert len(store) == 0
    assert not visit(after, "cam-1", 14, 5)
    assert "1 changed or removed rules ignored" in caplog.text


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe",
        b'{"version": 99, "rules": {}}',
        b"[]",
    ],
    ids=["not json", "not utf-8", "other version", "not a mapping"],
)
def test_a_corrupt_file_warns_and_starts_empty(
    rules_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    path = tmp_path / RULE_STATE_FILE
    path.write_bytes(content)
    store = InMemoryRuleState()
    eng = engine(rules_dir, store)
    assert load_rule_state(path, eng, store) == 0
    assert len(store) == 0
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and str(path) in warnings[0].getMessage()


def test_an_unreadable_state_of_one_camera_is_skipped(
    rules_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = engine(rules_dir, InMemoryRuleState())
    learn(before)
    path = tmp_path / RULE_STATE_FILE
    save_rule_state(path, before, before.state)
    document = json.loads(path.read_text(encoding="utf-8"))
    rule = next(iter(document["rules"].values()))
    rule["cameras"]["cam-2"]["table"] = "garbage"
    path.write_text(json.dumps(document), encoding="utf-8")

    store = InMemoryRuleState()
    after = engine(rules_dir, store)
    assert load_rule_state(path, after, store) == 1
    assert visit(after, "cam-1", 14, 5) and not visit(after, "cam-2", 14, 5)
    assert f"rule state file {path}: 1 saved states were unreadable and ignored" in caplog.text


def test_a_missing_file_is_a_first_start(rules_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = InMemoryRuleState()
    assert load_rule_state(tmp_path / RULE_STATE_FILE, engine(rules_dir, store), store) == 0
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_saving_is_atomic_and_leaves_no_temporary_files(rules_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    path = data / RULE_STATE_FILE
    eng = engine(rules_dir, InMemoryRuleState())
    save_rule_state(path, eng, eng.state)  # nothing learned yet: an empty file
    assert json.loads(path.read_text(encoding="utf-8"))["rules"] == {}
    learn(eng)
    save_rule_state(path, eng, eng.state)
    assert [p.name for p in data.iterdir()] == [RULE_STATE_FILE]
    assert len(json.loads(path.read_text(encoding="utf-8"))["rules"]) == 1


def test_a_failed_save_keeps_the_previous_file(
    rules_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / RULE_STATE_FILE
    eng = engine(rules_dir, InMemoryRuleState())
    learn(eng)
    save_rule_state(path, eng, eng.state)
    previous = path.read_bytes()

    def full_disk(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        save_rule_state(path, eng, eng.state)
    assert path.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == [RULE_STATE_FILE, "rules"]


class _Stub:
    """Stands in for the patrol, batcher, bus and store: the runtime only starts, stops and closes them."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


def test_the_runtime_saves_periodically_and_at_stop(rules_dir: Path, tmp_path: Path) -> None:
    (rules_dir / "site.yaml").write_text(RULES.format(min_history=8), encoding="utf-8")
    holder = RulesHolder(rules_dir, LABELS)
    settings = Settings(data_dir=tmp_path / "data", patrol={"rule_state_save_s": 0.05, "rules_poll_s": 60})
    settings.data_dir.mkdir()
    stub: Any = _Stub()
    runtime = Runtime(settings, stub, stub, holder, stub, stub, stub, threading.Event())
    path = settings.data_dir / RULE_STATE_FILE
    # when: started, it saves every rule_state_save_s
    runtime.start()
    learn(holder.engine())
    deadline = time.monotonic() + 5
    while not (path.exists() and json.loads(path.read_text(encoding="utf-8"))["rules"]):
        assert time.monotonic() < deadline, "no periodic save"
        time.sleep(0.01)
    # and at stop, after the last visits
    visit(holder.engine(), "cam-3", 4, 0)
    runtime.stop()
    rule = next(iter(json.loads(path.read_text(encoding="utf-8"))["rules"].values()))
    assert sorted(rule["cameras"]) == [*CAMERAS, "cam-3"]
