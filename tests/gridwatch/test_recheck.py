"""Re-check before filing (二次识别) on the shared footage with the real model and simulated time: a parked van still
there at the re-check opens its incident with both snapshots; masked out after the first look, it is dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from core.events import EventState
from gridwatch.simulate import MemoDetector, simulate_patrol
from incidents.tracker import IncidentTracker
from ingest.cameras import Camera
from ingest.recheck import DelayedRequests, Rechecks
from rules.categories import default_categories
from rules.engine import RuleEngine
from rules.loader import load_rule_files
from tests.gridwatch.test_alert_quality import PARKING, START, detector, masked_after  # noqa: F401  (fixture)

RECHECK = PARKING.replace("    category:", "    recheck: {after_s: 600}\n    category:")


def run(folder: Path, det: MemoDetector, footage: Path, gone_at: float | None) -> tuple[object, ...]:
    (folder / "parking.yaml").write_text(RECHECK, encoding="utf-8")
    engine = RuleEngine(load_rule_files([folder]), det.labels, categories=default_categories())
    camera = Camera(id="kerb-cam", url=footage.as_uri(), revisit_s=60)
    asked: list[tuple[str, float]] = []
    rechecks = Rechecks(lambda cam, after_s: asked.append((cam, after_s)))
    tracker = IncidentTracker()
    transform = masked_after(gone_at) if gone_at is not None else None
    sim = simulate_patrol(
        [camera],
        det,
        lambda: engine,
        start=START,
        duration_s=1200,
        transform=transform,
        incidents=tracker,
        rechecks=rechecks,
    )
    return sim, asked, rechecks, tracker


@pytest.mark.slow
def test_a_van_still_there_at_the_recheck_opens_with_both_snapshots(
    detector: MemoDetector,  # noqa: F811
    footage_path: Path,
    tmp_path: Path,
) -> None:
    # when: 20 minutes of patrol, a visit a minute; the rule confirms the van after ~3 minutes, re-checks 10 later
    sim, asked, rechecks, tracker = run(tmp_path, detector, footage_path, None)
    # then: a re-check visit was asked for 600 s later, and the open comes only at the re-check, with two snapshots
    assert asked == [("kerb-cam", 600.0)]
    opens = [e for e in sim.events if e.state == EventState.open]  # type: ignore[attr-defined]
    assert len(opens) == 1
    opened = (opens[0].last_seen - START).total_seconds()
    assert 180 + 600 <= opened <= 240 + 600 + 60
    kinds = [e.kind for e in opens[0].evidence]
    assert kinds == ["annotated", "frame", "annotated", "frame"]
    assert len({e.key for e in opens[0].evidence}) == 4, "the held snapshot and the re-check's differ"
    assert rechecks.report() == {"waiting": 0, "held": 1, "confirmed": 1, "dropped": 0}  # type: ignore[attr-defined]
    assert tracker.dropped_at_recheck == 0  # type: ignore[attr-defined]


@pytest.mark.slow
def test_a_van_gone_by_the_recheck_is_dropped_and_counted(
    detector: MemoDetector,  # noqa: F811
    footage_path: Path,
    tmp_path: Path,
) -> None:
    # when: the van is masked out (inpainted) from 5 minutes on, after it was confirmed and held
    sim, asked, rechecks, tracker = run(tmp_path, detector, footage_path, 300.0)
    # then: nothing was ever announced; the incident is dropped at the re-check and counted
    assert asked == [("kerb-cam", 600.0)]
    assert sim.events == []  # type: ignore[attr-defined]
    assert rechecks.report() == {"waiting": 0, "held": 1, "confirmed": 0, "dropped": 1}  # type: ignore[attr-defined]
    assert tracker.dropped_at_recheck == 1  # type: ignore[attr-defined]
    assert len(tracker) == 0  # type: ignore[arg-type]


def test_delayed_requests_ask_for_the_visit_once_the_delay_has_passed() -> None:
    now = [0.0]
    delayed = DelayedRequests(lambda cam: True, monotonic=lambda: now[0])
    delayed._heap.append((600.0, 1, "kerb-cam"))  # as `later("kerb-cam", 600)` at 0, without the timer thread
    assert delayed.due() == []
    now[0] = 600.0
    assert delayed.due() == ["kerb-cam"] and delayed.pending() == 0


def test_a_recheck_without_a_delay_is_refused_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "parking.yaml").write_text(RECHECK.replace("after_s: 600", "after_s: 0"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_rule_files([tmp_path])
    assert "recheck.after_s" in str(caught.value) and "parking.yaml:" in str(caught.value)
