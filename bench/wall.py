"""`python -m bench.wall`: how fast the alert wall follows the cases.

1. Push latency from a case change to the walls: a case store whose changes go to the case bus, served by the real
   app under uvicorn; N open walls (N = 1, 10, 100) each holding the live stream. Each change is a `note` whose text
   carries the wall-clock time just before `CaseStore.transition` is called; a wall's latency is the time its
   `event: case` message is read minus that. Measured at the stream (httpx clients, one asyncio loop) for 1, 10 and
   100 walls, and at the tile (Chromium pages, the time the tile's audit count changes, seen by a MutationObserver)
   for 1 and 10 walls.
2. First paint with 10,000 open cases in the store: navigation start to the first tile, and to the whole first
   page of tiles (the wall loads the 200 newest; filters and order apply to those), in Chromium.

Writes the `## Alert wall` section of docs/benchmarks.md (other sections are kept).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from api.app import ApiDeps, create_app
from bench.report import replace_section
from intake.bus import CaseBus, EventBus
from intake.case_model import ActionRequest, CaseCreate
from intake.case_store import CaseStore
from intake.evidence import EvidenceStore
from intake.store import EventStore
from tests.api.server import serve

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
HEADING = "## Alert wall"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
STAMP = "bench-t="


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Server:
    def __init__(self, folder: Path) -> None:
        self.bus, self.case_bus = EventBus(queue_size=4096), CaseBus(queue_size=4096)
        self.cases = CaseStore(folder / "cases.sqlite3", on_change=self.case_bus.publish)
        self.store = EventStore(folder / "events.sqlite3")
        deps = ApiDeps(
            store=self.store,
            evidence=EvidenceStore(folder / "evidence"),
            bus=self.bus,
            health=lambda: {},
            version="bench",
            cases=self.cases,
            case_bus=self.case_bus,
        )
        self.app = create_app(deps)

    def close(self) -> None:
        self.bus.close()
        self.case_bus.close()
        self.cases.close()
        self.store.close()


def _change(cases: CaseStore, case_id: str) -> None:
    note = f"{STAMP}{time.time():.6f}"
    cases.transition(case_id, "note", ActionRequest(note=note), actor="bench", role="operator", at=datetime.now(UTC))


async def _listen(client: httpx.AsyncClient, url: str, out: list[float], ready: asyncio.Event, want: int) -> None:
    got = 0
    async with client.stream("GET", url + "/api/v1/stream") as response:
        event = None
        async for line in response.aiter_lines():
            if line.startswith(":"):
                ready.set()
            elif line.startswith("event:"):
                event = line.partition(":")[2].strip()
            elif line.startswith("data:") and event == "case":
                received = time.time()
                note = json.loads(line[5:])["case"]["audit"][-1]["note"]
                if note.startswith(STAMP):
                    out.append(received - float(note[len(STAMP) :]))
                    got += 1
                    if got == want:
                        return
            elif line == "":
                event = None


def stream_latency(server: Server, url: str, walls: int, changes: int) -> list[float]:
    case, _ = server.cases.create(
        CaseCreate(sender_id=f"bench:{walls}", category="0505"), actor="b", role="operator", at=datetime.now(UTC)
    )
    out: list[float] = []

    async def run() -> None:
        limits = httpx.Limits(max_connections=walls + 5)
        async with httpx.AsyncClient(timeout=httpx.Timeout(60.0), limits=limits) as client:
            readies = [asyncio.Event() for _ in range(walls)]
            tasks = [asyncio.create_task(_listen(client, url, out, r, changes)) for r in readies]
            await asyncio.gather(*(r.wait() for r in readies))
            for _ in range(changes):
                await asyncio.to_thread(_change, server.cases, case.id)
                await asyncio.sleep(0.05)
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)

    asyncio.run(run())
    return out


TILE_WATCH = """id => new Promise(resolve => {
  window.__seen = [];
  const grid = document.getElementById('cases');
  window.__last = grid.querySelector('article.case[data-id="' + id + '"]').dataset.audit;
  new MutationObserver(() => {
    const tile = grid.querySelector('article.case[data-id="' + id + '"]');
    if (tile && tile.dataset.audit !== window.__last) { window.__last = tile.dataset.audit;
      window.__seen.push(performance.timeOrigin + performance.now()); }
  }).observe(grid, {subtree: true, childList: true, attributes: true, characterData: true});
  resolve(true);
})"""


def tile_latency(server: Server, url: str, walls: int, changes: int) -> list[float]:
    case, _ = server.cases.create(
        CaseCreate(sender_id=f"bench-tile:{walls}", category="0505"), actor="b", role="operator", at=datetime.now(UTC)
    )
    stamps: list[float] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        pages = [browser.new_page() for _ in range(walls)]
        for page in pages:
            page.goto(url + "/")
            page.wait_for_selector(f'#cases article.case[data-id="{case.id}"]')
            page.wait_for_selector('#live-dot[data-state="live"]')
            page.evaluate(TILE_WATCH, case.id)
        for _ in range(changes):
            stamps.append(time.time() * 1000)
            _change(server.cases, case.id)
            time.sleep(0.1)
        time.sleep(1.0)
        out: list[float] = []
        for page in pages:
            seen = page.evaluate("window.__seen")
            out += [(s - t) / 1000 for s, t in zip(seen, stamps, strict=False)]
        browser.close()
    return out


def first_paint(server: Server, url: str, open_cases: int) -> tuple[float, float, int]:
    at = datetime.now(UTC)
    for i in range(open_cases):
        report = CaseCreate(sender_id=f"bench-open:{i}", category="0505" if i % 2 else "0102", urgency="normal")
        server.cases.create(report, actor="b", role="operator", at=at)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 3840, "height": 2160})
        page.goto(url + "/")
        page.locator("#cases article.case").nth(199).wait_for(timeout=60_000)  # (the page's CSP forbids eval)
        first_tile = page.evaluate("performance.getEntriesByType('paint').map(p => p.startTime)")
        full = page.evaluate("performance.now()")
        shown = page.evaluate("document.querySelectorAll('#cases article.case').length")
        browser.close()
    return (max(first_tile) if first_tile else full) / 1000, full / 1000, int(shown)


def section(rows: list[tuple[str, int, list[float]]], paint: tuple[float, float, int], open_cases: int) -> str:
    lines = [
        HEADING,
        "",
        "How to run: `make bench` (or `.venv/bin/python -m bench.wall`); needs Debian's chromium. The app, the SQLite",
        "case store and the walls run on this machine; a change is a `note` on one case, 20 per wall count, 50-100 ms",
        "apart, timed from just before `CaseStore.transition` (the commit, the case re-read and the bus included).",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}.",
        "",
        "| where it is measured | open walls | messages | p50 ms | p95 ms | max ms |",
        "|---|---|---|---|---|---|",
    ]
    for where, walls, values in rows:
        ms = [v * 1000 for v in values]
        lines.append(
            f"| {where} | {walls} | {len(ms)} | {statistics.median(ms):.1f} | {_pct(ms, 0.95):.1f} | {max(ms):.1f} |"
        )
    first, full, shown = paint
    lines += [
        "",
        f"First paint with {open_cases:,} open cases in the store, 3840x2160: first contentful paint {first:.2f} s,",
        f"the {shown} newest tiles (the wall's first page) filled {full:.2f} s after navigation start.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.wall", description=__doc__)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--open-cases", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp))
        with serve(server.app) as url:
            rows = [("stream (httpx)", n, stream_latency(server, url, n, args.changes)) for n in (1, 10, 100)]
            rows += [("tile (Chromium)", n, tile_latency(server, url, n, args.changes)) for n in (1, 10)]
            paint = first_paint(server, url, args.open_cases)
            server.close()
    text = section(rows, paint, args.open_cases)
    replace_section(args.out, HEADING, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
