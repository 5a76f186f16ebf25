"""`python -m bench.fleet`: `gridwatch cameras import` / `export` and `load_cameras` on a fleet of 100,000 cameras.

The fleet is `tests/support/fleet.py`'s synthetic city (every column used: GB/T 28181 ids, tags, arming windows,
`${VAR}` passwords, burst rows). Each step runs `--repeats` times on one core; the table gives the best and the
median wall time, and the CPU time of the best run (the machine may be shared: CPU time is what the step costs).

Writes the `## Camera fleet` section of docs/benchmarks.md (other sections are kept).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.report import replace_section
from ingest.cameras import load_cameras
from ingest.fleet import export_fleet, import_fleet
from ingest.fleet_files import render_csv, render_yaml
from tests.support.fleet import make_fleet

logger = logging.getLogger("bench.fleet")
ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Camera fleet"
_QUOTED = re.compile(r'^(  - |    )(id|url|mode): "([^"\\]*)"$', re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Row:
    step: str
    rows: int
    megabytes: float
    wall: list[float]
    cpu: float  # of the fastest run


def _hand_written(text: str) -> str:
    """The same fleet as a person writes it: a comment, plain scalars where YAML allows them (read by libyaml)."""
    return "# the site's cameras, kept by hand\n" + _QUOTED.sub(r"\1\2: \3", text)


def _time(step: str, rows: int, size: int, repeats: int, run: Callable[[], object]) -> Row:
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    logger.info("%s: best %.2f s", step, min(walls))
    return Row(step, rows, size / 1e6, walls, cpus[walls.index(min(walls))])


def _fresh(config: Path) -> Path:
    (config / "cameras.yaml").unlink(missing_ok=True)
    return config


def measure(count: int, repeats: int, work: Path) -> list[Row]:
    cameras = make_fleet(count)
    for i in range(50):
        os.environ.setdefault(f"CAM_PW_{i}", f"pw-{i}")
    sources = {"csv": work / "fleet.csv", "yaml": work / "fleet.yaml", "hand": work / "hand.yaml"}
    sources["csv"].write_text(render_csv(cameras), encoding="utf-8")
    sources["yaml"].write_text(render_yaml(cameras), encoding="utf-8")
    sources["hand"].write_text(_hand_written(render_yaml(cameras)), encoding="utf-8")
    assert yaml.__with_libyaml__, "PyYAML without libyaml: the YAML figures would not be the ones users get"
    config = work / "site"
    config.mkdir()
    size = {name: path.stat().st_size for name, path in sources.items()}
    rows = [
        _time("import CSV", count, size["csv"], repeats, lambda: import_fleet(sources["csv"], _fresh(config))),
        _time("import YAML", count, size["yaml"], repeats, lambda: import_fleet(sources["yaml"], _fresh(config))),
        _time(
            "import YAML, hand-written",
            count,
            size["hand"],
            repeats,
            lambda: import_fleet(sources["hand"], _fresh(config)),
        ),
        _time(
            "re-import CSV, nothing changed", count, size["csv"], repeats, lambda: import_fleet(sources["csv"], config)
        ),
        _time("export CSV", count, size["csv"], repeats, lambda: export_fleet(config, "csv")),
        _time("export YAML", count, size["yaml"], repeats, lambda: export_fleet(config, "yaml")),
        _time(
            "load_cameras, cameras.yaml from import",
            count,
            size["yaml"],
            repeats,
            lambda: load_cameras(config / "cameras.yaml"),
        ),
        _time("load_cameras, hand-written", count, size["hand"], repeats, lambda: load_cameras(sources["hand"])),
    ]
    return rows


def section(rows: Sequence[Row], repeats: int, command: str) -> str:
    table = "\n".join(
        f"| {r.step} | {r.rows:,} | {r.megabytes:.1f} | {min(r.wall):.2f} | {statistics.median(r.wall):.2f} |"
        f" {r.cpu:.2f} | {r.rows / min(r.wall):,.0f} |"
        for r in rows
    )
    return f"""{HEADING}

How to run: `{command}` (part of `make bench`). Machine: {platform.machine()}, {os.cpu_count()} cores, one core
used, Python {platform.python_version()}, PyYAML {yaml.__version__} with libyaml.

The fleet is `tests/support/fleet.py`'s synthetic city: every column used (GB/T 28181 ids, tags, arming windows,
`${{VAR}}` passwords, one row in seven a burst camera). Import = read and validate every row, check GB ids, read
the config folder's old `cameras.yaml` for the diff, write the new one atomically; export = read and validate
`cameras.yaml`, check for credentials, render. `cameras.yaml` as import writes it is read by a fast path (the whole
file as one JSON text, `core.yamlconf.fast_rows`); the hand-written file (a comment, plain scalars) by libyaml's
parser with the garbage collector paused. {repeats} runs a step; MB is the file read.
For comparison, measured once on the hand-written file: PyYAML's pure-Python parser, which
`core.yamlconf` used before (compose for the line numbers, then `safe_load`), took 58 s + 66 s of CPU, and the
file was then refused as more than 100,000 values.

| step | rows | MB | best s | median s | CPU s (best run) | rows/s (best) |
|---|---|---|---|---|---|---|
{table}
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    with tempfile.TemporaryDirectory(prefix="gridwatch-fleet-") as tmp:
        rows = measure(args.rows, args.repeats, Path(tmp))
    command = "python -m bench.fleet" + (f" --rows {args.rows}" if args.rows != 100_000 else "")
    text = section(rows, args.repeats, command)
    replace_section(args.out, HEADING, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
