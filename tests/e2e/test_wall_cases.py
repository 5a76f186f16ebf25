"""Cases on the alert wall in a real browser (Debian Chromium driven by Playwright) against a real uvicorn server:
an operator signs in with name and password, a case posted through the API appears live, they dispatch it from its
tile, and the new state is in the API and on a second open wall; a viewer gets no buttons and the API refuses them;
names with HTML are shown as text; no text overflows its tile at 1280x720 or 3840x2160, in either language."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
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
from rules.categories import load_categories
from tests.api.server import serve
from tests.e2e.test_alert_wall import browser as browser  # the module-scoped Chromium fixture
from tests.e2e.test_alert_wall import frame as frame
from tests.e2e.test_alert_wall import real_event

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo"
OPERATOR, VIEWER = "王值班", "wall-viewer"
PASSWORD = "correct-horse-东门-42"
MACHINE_TOKEN = "gw-e2e-machine-" + "5" * 32
HOSTILE = "<img src=x onerror=alert(1)>"
# Chromium logs the sign-in probe's 401 and a refused action's 403 or 409 as console errors: the only ones allowed
EXPECTED = re.compile(r"status of (401|403|409)")
# every text element of a tile whose content is wider than its box (none may be)
OVERFLOWING = """() => [...document.querySelectorAll('#cases .case *')]
  .filter(el => el.offsetParent !== null && el.children.length === 0 && el.scrollWidth > el.clientWidth + 1
               && getComputedStyle(el).overflow !== 'hidden')
  .map(el => el.className + ': ' + el.textContent)"""


@dataclass
class Wall:
    url: str
    cases: CaseStore
    evidence: EvidenceStore

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {MACHINE_TOKEN}"}
        return httpx.post(self.url + path, json=body, headers=headers, timeout=10)

    def get(self, path: str) -> Any:
        headers = {"Authorization": f"Bearer {MACHINE_TOKEN}"}
        return httpx.get(self.url + path, headers=headers, timeout=10).json()


def report(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "sender_id": f"app:{n}",
        "category": "0505",
        "description": "白色面包车长期占用人行道 van parked on the pavement",
        "lon": 121.4730,
        "lat": 31.2308,
        "urgency": "urgent",
        "reporter": {"name": HOSTILE, "id": "GW-0117"},
        **extra,
    }


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
        ),
    )
    bus, case_bus = EventBus(), CaseBus()
    grids = GridMap.from_geojson(CONFIG / "grids.geojson")
    cases = CaseStore(
        tmp_path / "cases.sqlite3", grids=grids, categories=load_categories(CONFIG), on_change=case_bus.publish
    )
    evidence = EvidenceStore(tmp_path / "evidence")
    with EventStore(tmp_path / "events.sqlite3") as store:
        deps = ApiDeps(
            store=store,
            evidence=evidence,
            bus=bus,
            health=lambda: {},
            version="test",
            auth=auth,
            cases=cases,
            case_bus=case_bus,
        )
        with serve(create_app(deps)) as url:
            yield Wall(url, cases, evidence)
            bus.close()
            case_bus.close()
    cases.close()


def open_wall(context: BrowserContext, url: str, errors: list[str]) -> Page:
    page = context.new_page()
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    return page


def sign_in(page: Page, name: str) -> None:
    page.locator("#account").fill(name)
    page.locator("#password").fill(PASSWORD)
    page.locator("#signin-submit").click()
    expect(page.locator("#who")).to_contain_text(name)
    expect(page.locator("#live-dot")).to_have_attribute("data-state", "live")


def tile(page: Page, case_id: str) -> Any:
    return page.locator(f'#cases article.case[data-id="{case_id}"]')


@pytest.mark.slow
def test_an_operator_dispatches_a_live_case_and_a_second_wall_sees_it(browser: Browser, wall: Wall) -> None:
    errors: list[str] = []
    first, second = browser.new_context(viewport={"width": 1280, "height": 720}), browser.new_context()
    page = open_wall(first, wall.url, errors)
    other = open_wall(second, wall.url, errors)
    sign_in(page, OPERATOR)
    sign_in(other, OPERATOR)

    # when: a case is posted through the API while both walls are open
    posted = wall.post("/api/v1/cases", report(1))
    assert posted.status_code == 201, posted.text
    case = posted.json()["case"]
    mine = tile(page, case["id"])

    # then: it appears without a reload, with its category, grid path, source, deadline-free state and actions
    expect(mine).to_have_count(1)
    expect(mine.locator(".cat")).to_have_text("05 街面秩序 / 0505 机动车乱停放")
    expect(mine.locator(".path")).to_contain_text("黄浦区 / 南京东路街道")
    expect(mine.locator(".cstate")).to_have_text("上报")
    expect(mine.locator(".sev")).to_have_text("紧急")
    expect(mine.locator(".camera")).to_have_text(HOSTILE)  # a name with HTML, as text
    assert page.locator("#cases img[src='x']").count() == 0
    expect(mine.locator(".actions button")).to_have_text(["受理", "不予受理", "误报", "重复", "备注"])

    # when: the operator accepts, files, then dispatches it to a department from the tile
    mine.locator("button[data-action=accept]").click()
    expect(mine.locator(".cstate")).to_have_text("受理")
    mine.locator("button[data-action=file]").click()
    expect(mine.locator(".cstate")).to_have_text("立案")
    mine.locator("button[data-action=dispatch]").click()
    mine.locator(".act-input").fill("城管执法中队")
    mine.locator(".act-ok").click()

    # then: dispatched, in the API with the operator as the actor, and on the second wall at once
    expect(mine.locator(".cstate")).to_have_text("已派遣")
    expect(mine.locator(".dept")).to_contain_text("城管执法中队")
    state = wall.get(f"/api/v1/cases/{case['id']}")["case"]
    assert (state["state"], state["department"]) == ("dispatched", "城管执法中队")
    assert [(a["action"], a["actor"]) for a in state["audit"][1:]] == [
        ("accept", OPERATOR),
        ("file", OPERATOR),
        ("dispatch", OPERATOR),
    ]
    theirs = tile(other, case["id"])
    expect(theirs.locator(".cstate")).to_have_text("已派遣")
    expect(theirs.locator(".dept")).to_contain_text("城管执法中队")

    # when: the department starts on it (a machine client of the API), both walls follow
    wall.post(f"/api/v1/cases/{case['id']}/actions/start")
    expect(theirs.locator(".cstate")).to_have_text("处置中")
    expect(mine.locator(".cstate")).to_have_text("处置中")
    assert [e for e in errors if not EXPECTED.search(e)] == []
    first.close()
    second.close()


@pytest.mark.slow
def test_a_refused_action_shows_the_apis_reason_on_the_tile(browser: Browser, wall: Wall) -> None:
    errors: list[str] = []
    context = browser.new_context()
    page = open_wall(context, wall.url, errors)
    sign_in(page, OPERATOR)
    case = wall.post("/api/v1/cases", report(2)).json()["case"]
    mine = tile(page, case["id"])
    expect(mine.locator("button[data-action=accept]")).to_be_visible()
    # when: the operator closes it as a duplicate of a case that does not exist
    mine.locator("button[data-action=duplicate]").click()
    mine.locator(".act-input").fill("01ARZ3NDEKTSV4RRFFQ69G5FAV")
    mine.locator(".act-ok").click()
    # then: the refusal, with the API's reason and what is allowed instead; the case is unchanged
    refusal = mine.locator(".refusal")
    expect(refusal).to_contain_text("操作被拒绝：duplicate_of '01ARZ3NDEKTSV4RRFFQ69G5FAV' is not another case")
    expect(refusal).to_contain_text("当前可执行：受理")
    expect(mine.locator(".cstate")).to_have_text("上报")
    # when: a good action follows, the refusal goes
    mine.locator("button[data-action=accept]").click()
    expect(mine.locator(".cstate")).to_have_text("受理")
    expect(refusal).to_be_hidden()
    assert [e for e in errors if not EXPECTED.search(e)] == []
    context.close()


@pytest.mark.slow
def test_a_viewer_sees_no_buttons_and_the_api_refuses_them(browser: Browser, wall: Wall) -> None:
    errors: list[str] = []
    context = browser.new_context()
    page = open_wall(context, wall.url, errors)
    case = wall.post("/api/v1/cases", report(3)).json()["case"]
    sign_in(page, VIEWER)
    mine = tile(page, case["id"])
    expect(mine.locator(".cstate")).to_have_text("上报")
    expect(mine.locator(".actions button")).to_have_count(0)
    # when: the viewer's page posts the action itself, with the session's CSRF value
    status = page.evaluate(
        """async id => {
          const who = await (await fetch('api/v1/session')).json();
          const r = await fetch('api/v1/cases/' + id + '/actions/dispatch', {method: 'POST',
            headers: {'Content-Type': 'application/json', 'X-CSRF-Token': who.csrf},
            body: JSON.stringify({department: 'x'})});
          return [r.status, (await r.json()).detail];
        }""",
        case["id"],
    )
    assert status[0] == 403 and "needs operator" in status[1]
    assert wall.get(f"/api/v1/cases/{case['id']}")["case"]["state"] == "reported"
    assert [e for e in errors if not EXPECTED.search(e)] == []
    context.close()


@pytest.mark.slow
@pytest.mark.parametrize(("width", "height"), [(1280, 720), (3840, 2160)])
def test_no_text_overflows_a_tile_in_either_language(
    browser: Browser, wall: Wall, tmp_path: Path, width: int, height: int
) -> None:
    long_name = "东门人行道长期占道经营与机动车乱停放综合治理点位" + "-Nanjing-East-Road-pedestrian-street-gate-7"
    for n in range(12):
        extra = {"reporter": {"name": HOSTILE + long_name if n % 2 else long_name, "id": "x"}}
        if n % 3 == 0:
            extra["urgency"] = "normal"
        posted = wall.post("/api/v1/cases", report(100 + n, description=("很长的描述 " + "x" * 90) * (n % 4), **extra))
        assert posted.status_code == 201, posted.text
    errors: list[str] = []
    context = browser.new_context(viewport={"width": width, "height": height})
    page = open_wall(context, wall.url, errors)
    sign_in(page, OPERATOR)
    expect(page.locator("#cases article.case")).to_have_count(12)
    for lang, large in (("zh", False), ("en", False), ("en", True)):
        if lang == "en" and page.locator("#lang").text_content() == "English":
            page.locator("#lang").click()
            expect(page.locator("#cases .cstate").first).to_have_text("Reported")
        if large:
            page.locator("#large").click()
        page.wait_for_timeout(300)
        shot = tmp_path / f"wall-{width}x{height}-{lang}{'-large' if large else ''}.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        assert page.evaluate(OVERFLOWING) == [], (lang, large)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert [e for e in errors if not EXPECTED.search(e)] == []
    context.close()


@pytest.mark.slow
def test_a_camera_case_shows_its_snapshot_and_opens_every_picture(
    browser: Browser, wall: Wall, frame: np.ndarray
) -> None:
    errors: list[str] = []
    context = browser.new_context()
    page = open_wall(context, wall.url, errors)
    sign_in(page, OPERATOR)
    # when: a camera's incident becomes a case, as the case feed makes it (with its clean and annotated frames)
    event, blobs = real_event(frame, "cam-01", "东门人行道", "walkway", incident_id=str(ULID()))
    for key, data in blobs.items():
        wall.evidence.put_keyed(key, data)
    case = IncidentCases(wall.cases).apply(event, datetime.now(UTC))
    assert case is not None
    mine = tile(page, case.id)
    # then: the tile shows the annotated snapshot, the camera and the source
    annotated = next(e.key for e in event.evidence if e.kind == "annotated")
    image = mine.locator(".shot img")
    expect(image).to_have_attribute("src", f"api/v1/evidence/{annotated}")
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("img => img.naturalWidth") == 768
    expect(mine.locator(".camera")).to_contain_text("cam-01")
    expect(mine.locator(".source")).to_have_text("智能抓拍")
    # when: the snapshot is clicked
    mine.locator(".shot").click()
    # then: every picture, the clean frame first, each loaded
    dialog = page.locator("#shots")
    expect(dialog).to_be_visible()
    figures = dialog.locator("figure")
    expect(figures).to_have_count(len(event.evidence))
    expect(figures.first.locator("figcaption")).to_have_text("原始画面")
    for i in range(len(event.evidence)):
        expect(figures.nth(i).locator("img")).to_have_js_property("complete", True)
        assert figures.nth(i).locator("img").evaluate("img => img.naturalWidth") > 0
    page.locator("#shots-close").click()
    expect(dialog).to_be_hidden()
    assert [e for e in errors if not EXPECTED.search(e)] == []
    context.close()


@pytest.mark.slow
def test_the_grid_map_draws_the_grids_and_a_click_on_a_case_picks_its_tile(browser: Browser, wall: Wall) -> None:
    errors: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = open_wall(context, wall.url, errors)
    sign_in(page, OPERATOR)
    grids = wall.get("/api/v1/grids")
    assert grids["type"] == "FeatureCollection" and len(grids["features"]) == 5
    # when: a case is reported inside one of the grids
    case = wall.post("/api/v1/cases", report(7)).json()["case"]
    # then: the map shows every grid, the case's grid marked busy, and the case as a dot
    expect(page.locator("#map path.grid")).to_have_count(5)
    expect(page.locator(f'#map path.grid.busy[data-code="{case["grid_code"]}"]')).to_have_count(1)
    dot = page.locator(f'#map circle[data-id="{case["id"]}"]')
    expect(dot).to_have_count(1)
    assert page.locator("#map text").first.text_content() == "教学楼网格"
    # when: the dot is clicked, its tile is picked out
    dot.click()
    expect(tile(page, case["id"])).to_have_class(re.compile(r"\bpicked\b"))
    # and: the map can be hidden, and the choice is kept
    page.locator("#map-toggle").click()
    expect(page.locator("#map-panel")).to_be_hidden()
    page.reload()
    expect(tile(page, case["id"])).to_have_count(1)
    expect(page.locator("#map-panel")).to_be_hidden()
    expect(page.locator("#map-toggle")).to_have_text("地图")
    assert [e for e in errors if not EXPECTED.search(e)] == []
    context.close()


def behind_proxy(app: Any, prefix: str) -> Any:
    """What a reverse proxy that terminates TLS and serves the app under `prefix` hands the app: the path without
    the prefix, the prefix as `root_path`, and the scheme the browser used (https), as uvicorn's proxy headers do."""

    async def proxied(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            path = scope["path"]
            if not path.startswith(prefix + "/"):
                await send({"type": "http.response.start", "status": 404, "headers": []})
                await send({"type": "http.response.body", "body": b"outside the prefix"})
                return
            scope = {**scope, "path": path[len(prefix) :], "raw_path": None, "scheme": "https"}
        await app(scope, receive, send)

    return proxied


@pytest.mark.slow
def test_the_wall_works_under_a_path_prefix_behind_a_tls_proxy(browser: Browser, tmp_path: Path) -> None:
    cheap = {"n": 2**10, "r": 8, "p": 1}
    auth = AuthConfig(accounts=(Account(OPERATOR, "operator", hash_password(PASSWORD, **cheap)),))
    bus, case_bus = EventBus(), CaseBus()
    cases = CaseStore(tmp_path / "cases.sqlite3", on_change=case_bus.publish)
    with EventStore(tmp_path / "events.sqlite3") as store:
        deps = ApiDeps(
            store=store,
            evidence=EvidenceStore(tmp_path / "evidence"),
            bus=bus,
            health=lambda: {},
            version="test",
            auth=auth,
            cases=cases,
            case_bus=case_bus,
        )
        with serve(behind_proxy(create_app(deps), "/gridwatch")) as url:
            errors: list[str] = []
            context = browser.new_context()
            # localhost: Chromium keeps a Secure cookie from it as from an https origin
            page = open_wall(context, url.replace("127.0.0.1", "localhost") + "/gridwatch/", errors)
            sign_in(page, OPERATOR)
            cookie = next(c for c in context.cookies() if c["name"] == "gridwatch_session")
            assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
            # when: a case is reported, it arrives over the prefixed stream; an action goes through the prefix
            page.evaluate(
                """async () => {
                  const who = await (await fetch('api/v1/session')).json();
                  await fetch('api/v1/cases', {method: 'POST', headers: {'Content-Type': 'application/json',
                    'X-CSRF-Token': who.csrf}, body: JSON.stringify({sender_id: 'proxy:1', category: '0505'})});
                }"""
            )
            card = page.locator("#cases article.case")
            expect(card).to_have_count(1)
            card.locator("button[data-action=accept]").click()
            expect(card.locator(".cstate")).to_have_text("受理")
            assert [e for e in errors if not EXPECTED.search(e)] == []
            context.close()
            bus.close()
            case_bus.close()
    cases.close()
