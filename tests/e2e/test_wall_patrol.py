"""The patrol panel and suppressions on the alert wall in a real browser: the patrol figures show; a viewer sees no
visit button; an operator marks a camera case as a false alarm and proposes a suppression from its tile; a rule
author sees it with the rule's false-alarm rate and confirms it; nothing overflows at 1280x720 or 3840x2160."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser, expect
from ulid import ULID

from api.app import ApiDeps, create_app
from api.auth import Account, AuthConfig
from core.passwords import hash_password
from core.settings import ApiToken
from intake.bus import CaseBus, EventBus
from intake.case_store import CaseStore
from intake.evidence import EvidenceStore
from intake.grids import GridMap
from intake.incident_cases import IncidentCases
from intake.store import EventStore
from intake.suppressions import SuppressionStore
from rules.categories import load_categories
from tests.api.patrol_builders import patrolled_world
from tests.api.server import serve
from tests.e2e.test_alert_wall import browser as browser  # the module-scoped Chromium fixture
from tests.e2e.test_alert_wall import frame as frame
from tests.e2e.test_alert_wall import real_event
from tests.e2e.test_wall_cases import (
    CONFIG,
    EXPECTED,
    MACHINE_TOKEN,
    OPERATOR,
    PASSWORD,
    VIEWER,
    Wall,
    open_wall,
    sign_in,
    tile,
)

AUTHOR = "李规则"
# the detail the map's camera marks and the offline list open (the test fleet has no places, and fails once)
OPEN_DEAD = "import('./static/wall/patrol.js').then((m) => m.openCamera('dead'))"
PANEL_OVERFLOW = """() => [...document.querySelectorAll('#patrol-panel *, #author-panel *')]
  .filter(el => el.offsetParent !== null && el.children.length === 0 && el.scrollWidth > el.clientWidth + 1)
  .map(el => el.className + ': ' + el.textContent)"""


@pytest.fixture
def wall(tmp_path: Path) -> Iterator[Wall]:
    cheap = {"n": 2**10, "r": 8, "p": 1}
    auth = AuthConfig(
        tokens=(
            ApiToken(name="intake-app", role="operator", sha256=hashlib.sha256(MACHINE_TOKEN.encode()).hexdigest()),
        ),
        accounts=(
            Account(OPERATOR, "operator", hash_password(PASSWORD, **cheap)),
            Account(VIEWER, "viewer", hash_password(PASSWORD, **cheap)),
            Account(AUTHOR, "rule_author", hash_password(PASSWORD, **cheap)),
        ),
    )
    bus, case_bus = EventBus(), CaseBus()
    grids = GridMap.from_geojson(CONFIG / "grids.geojson")
    cases = CaseStore(
        tmp_path / "cases.sqlite3", grids=grids, categories=load_categories(CONFIG), on_change=case_bus.publish
    )
    evidence = EvidenceStore(tmp_path / "evidence")
    with EventStore(tmp_path / "events.sqlite3") as store, patrolled_world() as world:
        deps = ApiDeps(
            store=store,
            evidence=evidence,
            bus=bus,
            health=lambda: {},
            version="test",
            auth=auth,
            cases=cases,
            case_bus=case_bus,
            patrol=world.view,
        )
        with serve(create_app(deps)) as url:
            yield Wall(url, cases, evidence)
            bus.close()
            case_bus.close()
    cases.close()


@pytest.mark.slow
def test_patrol_figures_and_a_suppression_from_a_false_alarm(
    browser: Browser, wall: Wall, frame: np.ndarray, tmp_path: Path
) -> None:
    errors: list[str] = []
    event, blobs = real_event(frame, "cam-01", "东门人行道", "walkway", incident_id=str(ULID()))
    for key, data in blobs.items():
        wall.evidence.put_keyed(key, data)
    case = IncidentCases(wall.cases).apply(event, datetime.now(UTC))
    assert case is not None
    # given: a viewer: the patrol figures, the offline camera, and no visit button
    viewer = browser.new_context()
    page = open_wall(viewer, wall.url, errors)
    sign_in(page, VIEWER)
    expect(page.locator('#patrol-figures .pfig[data-key="coverage"] b')).to_contain_text("%")
    expect(page.locator('#patrol-figures .pfig[data-key="workers"] b')).to_have_text("1")  # this process
    page.evaluate(OPEN_DEAD)
    expect(page.locator("#camera")).to_be_visible()
    expect(page.locator("#camera-facts")).to_contain_text("connection refused")
    expect(page.locator("#camera-visit")).to_be_hidden()
    expect(page.locator("#author-panel")).to_be_hidden()
    viewer.close()
    # when: an operator marks the camera case as a false alarm, then proposes a suppression from its tile
    operator = browser.new_context()
    page = open_wall(operator, wall.url, errors)
    sign_in(page, OPERATOR)
    expect(page.locator('#patrol-figures .pfig[data-key="coverage"] b')).to_contain_text("%")
    page.evaluate(OPEN_DEAD)
    expect(page.locator("#camera-visit")).to_be_visible()
    page.locator("#camera-visit").click()
    expect(page.locator("#camera-answer")).to_have_text("已加入巡查队列")
    page.locator("#camera-close").click()
    mine = tile(page, case.id)
    mine.locator('.actions button[data-action="false_alarm"]').click()
    mine.locator(".act-ok").click() if mine.locator(".act-form").is_visible() else None
    expect(mine.locator(".propose")).to_be_visible()
    mine.locator(".propose").click()
    expect(mine.locator(".propose")).to_have_text("已提交屏蔽建议")
    proposed = SuppressionStore(wall.cases).list("proposed")
    assert [(s.case_id, s.rule_id, s.camera_id) for s in proposed] == [(case.id, "walkway-intrusion", "cam-01")]
    operator.close()
    # then: a rule author sees the rule's false-alarm rate and the proposal, and confirms it
    author = browser.new_context(viewport={"width": 1280, "height": 720})
    page = open_wall(author, wall.url, errors)
    sign_in(page, AUTHOR)
    expect(page.locator('#fa-rates tr[data-rule="walkway-intrusion"]')).to_contain_text("100")
    row = page.locator(f'#suppressions li[data-id="{proposed[0].id}"]')
    row.locator('button[data-decision="confirm"]').click()
    expect(page.locator(f'#suppressions li[data-id="{proposed[0].id}"]')).to_have_attribute("data-state", "confirmed")
    assert SuppressionStore(wall.cases).exclusions() == {("walkway-intrusion", "cam-01"): [tuple(proposed[0].mask)]}
    for width, height in ((1280, 720), (3840, 2160)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(tmp_path / f"wall-patrol-{width}x{height}.png"))
        assert page.evaluate(PANEL_OVERFLOW) == [], (width, height)
    author.close()
    assert [e for e in errors if not EXPECTED.search(e)] == []
