"""The alert wall in a real browser (Debian Chromium driven by Playwright) against a real uvicorn server."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import av
import numpy as np
import pytest
from playwright.sync_api import Browser, Locator, Page, Response, expect, sync_playwright
from ulid import ULID

from api.app import ApiDeps, create_app
from api.auth import AuthConfig, FailureLimiter
from core.events import Event, EventState
from core.settings import ApiToken
from core.types import Detections, Overlay
from incidents.evidence import make_snapshot
from intake.bus import EventBus
from intake.evidence import EvidenceStore
from intake.sink import IntakeSink
from intake.store import EventStore
from tests.api.server import serve

VIEWER_TOKEN = "gw-e2e-viewer-" + "7" * 32
# what Chromium logs for the sign-in probe and a wrong token: expected, and the only console errors allowed
UNAUTHORIZED = re.compile(r"status of 401")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def frame(footage_path: Path) -> np.ndarray:
    with av.open(str(footage_path)) as container:
        for i, f in enumerate(container.decode(video=0)):
            if i == 40:
                image: np.ndarray = f.to_ndarray(format="bgr24")
                return image
    raise AssertionError("footage too short")


def real_event(
    frame: np.ndarray,
    camera: str,
    name: str,
    zone: str,
    *,
    incident_id: str = "",
    state: EventState = EventState.open,
) -> tuple[Event, dict[str, bytes]]:
    dets = Detections(
        xyxy=np.array([[186, 160, 220, 235]], np.float32),
        confidence=np.array([0.83], np.float32),
        class_id=np.array([0], np.int64),
    )
    labels = ["person"]
    height, width = frame.shape[:2]
    polygon = tuple((x / width, y / height) for x, y in [(0, 180), (650, 180), (768, 480), (0, 240)])
    snap = make_snapshot(frame, dets, labels, np.array([0]), Overlay(polygons=(polygon,)), f"{camera} walkway")
    now = datetime.now(UTC)
    event = Event(
        id=str(ULID()),
        incident_id=incident_id,
        rule_id="walkway-intrusion",
        rule_kind="zone_intrusion",
        camera_id=camera,
        camera_name=name,
        zone=zone,
        category="0501",
        state=state,
        first_seen=now,
        last_seen=now,
        count=1,
        reason="1 person in zone walkway",
        evidence=snap.evidence,
    )
    return event, snap.blobs


def serve_wall(tmp_path: Path, auth: AuthConfig) -> Iterator[tuple[str, IntakeSink]]:
    bus = EventBus()
    evidence = EvidenceStore(tmp_path / "evidence")
    with EventStore(tmp_path / "events.sqlite3") as store:
        deps = ApiDeps(store=store, evidence=evidence, bus=bus, health=lambda: {}, version="test", auth=auth)
        with serve(create_app(deps)) as url:
            yield url, IntakeSink(store, evidence, bus)
            bus.close()


@pytest.fixture
def wall(tmp_path: Path) -> Iterator[tuple[str, IntakeSink]]:
    yield from serve_wall(tmp_path, AuthConfig())


def viewer_auth(limiter: FailureLimiter | None = None) -> AuthConfig:
    """Authentication on, with one viewer token (VIEWER_TOKEN) named wall-1."""
    token = ApiToken(name="wall-1", role="viewer", sha256=hashlib.sha256(VIEWER_TOKEN.encode()).hexdigest())
    auth = dataclasses.replace(AuthConfig(), tokens=(token,))
    return auth if limiter is None else dataclasses.replace(auth, limiter=limiter)


@pytest.fixture
def secured_wall(tmp_path: Path) -> Iterator[tuple[str, IntakeSink]]:
    yield from serve_wall(tmp_path, viewer_auth())


def annotated_key(event: Event) -> str:
    return next(e.key for e in event.evidence if e.kind == "annotated")


def expect_snapshot_loaded(card: Locator) -> None:
    """The card's snapshot <img> has loaded the full 768-pixel-wide evidence JPEG."""
    image = card.locator("img")
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("img => img.naturalWidth") == 768


def open_wall(browser: Browser, url: str) -> tuple[Page, list[str]]:
    """The page and the list its console errors and uncaught exceptions are collected into."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    return page, errors


@pytest.mark.slow
def test_wall_shows_stored_and_live_events_with_their_snapshots(
    browser: Browser, wall: tuple[str, IntakeSink], frame: np.ndarray
) -> None:
    url, sink = wall
    # given: one event already stored
    sink.emit(*real_event(frame, "cam-01", "东门人行道", "walkway"))

    # when: the wall opens
    page, errors = open_wall(browser, url)

    # then: the stored event is on it, its annotated snapshot loaded
    cards = page.locator("#grid article.card")
    expect(cards).to_have_count(1)
    expect(cards.first).to_contain_text("东门人行道")
    expect_snapshot_loaded(cards.first)

    # when: a new event arrives while the page is open
    sink.emit(*real_event(frame, "cam-02", "<b>Library</b> plaza", "<script>x</script>"))

    # then: it appears on top, live, with its text shown as text
    expect(cards).to_have_count(2)
    expect(cards.first).to_contain_text("<b>Library</b> plaza")
    expect(cards.first).to_contain_text("<script>x</script>")
    assert page.locator("#grid b, #grid script").count() == 0

    # and: the language toggle switches the labels
    page.locator("#lang").click()
    expect(page.locator("#lang")).to_have_text("中文")
    assert errors == []
    page.close()


@pytest.mark.slow
def test_an_incident_keeps_one_tile_through_its_open_update_and_close(
    browser: Browser, wall: tuple[str, IntakeSink], frame: np.ndarray
) -> None:
    url, sink = wall
    page, errors = open_wall(browser, url)
    expect(page.locator("#live-dot")).to_have_attribute("data-state", "live")
    cards = page.locator("#grid article.card")
    incident_id = str(ULID())
    tile = page.locator(f'#grid article.card[data-key="{incident_id}"]')

    # when: the incident opens, then an event without an incident arrives from another camera
    sink.emit(*real_event(frame, "cam-01", "东门人行道", "walkway", incident_id=incident_id))
    expect(tile.locator(".state")).to_have_text("新发")
    sink.emit(*real_event(frame, "cam-02", "Library plaza", "plaza"))

    # then: two tiles, the newer event on top, the incident's tile counting one event
    expect(cards).to_have_count(2)
    expect(cards.first).to_contain_text("Library plaza")
    expect(tile.locator(".hits")).to_have_text("共 1 次")

    # when: the incident's update comes, with a fresh snapshot (the scene mirrored)
    update, blobs = real_event(
        np.ascontiguousarray(frame[:, ::-1]), "cam-01", "东门人行道", "walkway", incident_id=incident_id
    )
    update = update.model_copy(update={"state": EventState.update, "reason": "1 person in zone walkway for 60 s"})
    sink.emit(update, blobs)

    # then: the same tile, moved to the top, shows the update's state, count, reason and snapshot
    expect(tile.locator(".state")).to_have_text("持续")
    expect(cards).to_have_count(2)
    expect(cards.first).to_have_attribute("data-key", incident_id)
    expect(tile.locator(".hits")).to_have_text("共 2 次")
    expect(tile).to_contain_text("for 60 s")
    expect(tile.locator("img")).to_have_attribute("src", f"api/v1/evidence/{annotated_key(update)}")
    expect_snapshot_loaded(tile)

    # when: the incident closes (no evidence)
    close = update.model_copy(
        update={"id": str(ULID()), "state": EventState.close, "evidence": [], "reason": "not seen for 125 s"}
    )
    sink.emit(close, {})

    # then: still one tile for it, dimmed and labelled closed, still showing the update's snapshot
    expect(tile.locator(".state")).to_have_text("结束")
    expect(tile).to_have_class(re.compile(r"\bclosed\b"))
    expect(tile).to_have_css("opacity", "0.55")
    expect(tile.locator(".hits")).to_have_text("共 3 次")
    expect(cards).to_have_count(2)
    expect(tile.locator("img")).to_have_attribute("src", f"api/v1/evidence/{annotated_key(update)}")
    expect_snapshot_loaded(tile)

    # and: in English, then after a reload (from the incidents API), it is the same one closed tile
    page.locator("#lang").click()
    expect(tile.locator(".state")).to_have_text("Closed")
    expect(tile.locator(".hits")).to_have_text("3 events")
    page.reload()
    expect(cards).to_have_count(2)
    expect(tile).to_have_count(1)
    expect(tile.locator(".state")).to_have_text("Closed")
    expect(tile.locator(".hits")).to_have_text("3 events")
    expect(tile).to_have_class(re.compile(r"\bclosed\b"))
    expect(tile.locator("img")).to_have_attribute("src", f"api/v1/evidence/{annotated_key(update)}")
    expect_snapshot_loaded(tile)
    assert errors == []
    page.close()


@pytest.mark.slow
def test_wall_asks_for_a_token_then_shows_stored_and_live_events(
    browser: Browser, secured_wall: tuple[str, IntakeSink], frame: np.ndarray
) -> None:
    url, sink = secured_wall
    sink.emit(*real_event(frame, "cam-01", "东门人行道", "walkway"))

    # when: the wall opens without a session
    page, errors = open_wall(browser, url)

    # then: it asks for a token, in Chinese and, toggled, in English; no event is shown
    signin = page.locator("#signin")
    expect(signin).to_be_visible()
    expect(signin).to_contain_text("访问令牌")
    expect(page.locator("#wall")).to_be_hidden()
    page.locator("#lang").click()
    expect(signin).to_contain_text("Access token")

    # when: a wrong token is given, then the viewer's
    page.locator("#token").fill("not-the-token")
    page.locator("#signin-submit").click()
    expect(page.locator("#signin-error")).to_contain_text("not valid")
    expect(page.locator("#token")).to_have_value("")
    page.locator("#token").fill(VIEWER_TOKEN)
    page.locator("#signin-submit").click()

    # then: the stored event is shown with its snapshot (the <img> is authorized by the cookie)
    expect(signin).to_be_hidden()
    cards = page.locator("#grid article.card")
    expect(cards).to_have_count(1)
    expect(cards.first).to_contain_text("东门人行道")
    expect_snapshot_loaded(cards.first)
    expect(page.locator("#who")).to_contain_text("wall-1")
    expect(page.locator("#live-dot")).to_have_attribute("data-state", "live")

    # when: a new event arrives, it appears live
    sink.emit(*real_event(frame, "cam-02", "Library plaza", "plaza"))
    expect(cards).to_have_count(2)
    expect(cards.first).to_contain_text("Library plaza")

    # and: the token is nowhere the page can read, and the session cookie is HttpOnly
    assert VIEWER_TOKEN not in page.content()
    assert page.evaluate("document.cookie") == ""
    assert VIEWER_TOKEN not in page.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")

    # when: signing out, the sign-in box is back and the API refuses the page
    page.locator("#signout").click()
    expect(signin).to_be_visible()
    expect(cards).to_have_count(0)
    assert page.evaluate("fetch('/api/v1/events').then(r => r.status)") == 401
    assert [e for e in errors if not UNAUTHORIZED.search(e)] == []
    page.close()


@pytest.mark.slow
def _session_post(response: Response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/api/v1/session")


def test_wall_says_to_wait_after_too_many_wrong_tokens(browser: Browser, tmp_path: Path) -> None:
    for url, _ in serve_wall(tmp_path, viewer_auth(limiter=FailureLimiter(max_failures=2, window_s=600))):
        page, errors = open_wall(browser, url)
        page.locator("#lang").click()  # English
        for _ in range(2):
            page.locator("#token").fill("not-the-token")
            with page.expect_response(_session_post):  # each answer in before the next try
                page.locator("#signin-submit").click()
            expect(page.locator("#signin-error")).to_contain_text("not valid")

        # when: a third try comes, even with the right token
        page.locator("#token").fill(VIEWER_TOKEN)
        with page.expect_response(_session_post):
            page.locator("#signin-submit").click()

        # then: the page says to wait, and stays signed out
        expect(page.locator("#signin-error")).to_contain_text("Too many wrong tokens")
        expect(page.locator("#wall")).to_be_hidden()
        assert [e for e in errors if not (UNAUTHORIZED.search(e) or "429" in e)] == []
        page.close()
