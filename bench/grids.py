"""`python -m bench.grids`: point-in-polygon grid lookup on a synthetic city of 5,000 grids, on one core.

The map is `scripts/make_grids.py`'s jittered lattice (written to a temporary file and read back with
`GridMap.from_geojson`, so loading is timed too), once with few vertices a grid and once with about a hundred (closer
to a surveyed map's polygons). The points are uniform over the map's bounding box. Single lookups are timed one by
one; `lookup_many` is timed per call of 10,000 points and divided by 10,000.

Writes the `## Grid lookup` section of docs/benchmarks.md (other sections are kept).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from numpy.typing import NDArray

from bench.report import replace_section
from intake.grids import GridMap
from scripts.make_grids import BBOX, write_city

logger = logging.getLogger("bench.grids")
ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Grid lookup"
TARGET_US = 100.0


@dataclass(frozen=True, slots=True)
class Row:
    """One map's figures; times per lookup in microseconds."""

    grids: int
    vertices: float
    file_mb: float
    load_s: float
    single: list[float]
    many: list[float]
    found: float


def _points(count: int, seed: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    rng = np.random.default_rng(seed)
    lon0, lat0, lon1, lat1 = BBOX
    return rng.uniform(lon0, lon1, count), rng.uniform(lat0, lat1, count)


def _time_single(grid_map: GridMap, lons: Sequence[float], lats: Sequence[float]) -> list[float]:
    lookup, clock = grid_map.lookup, time.perf_counter_ns
    for lon, lat in zip(lons[:500], lats[:500], strict=True):  # warm up
        lookup(lon, lat)
    times = []
    for lon, lat in zip(lons, lats, strict=True):
        start = clock()
        lookup(lon, lat)
        times.append((clock() - start) / 1000)
    return times


def _time_many(grid_map: GridMap, lons: NDArray[np.float64], lats: NDArray[np.float64], calls: int) -> list[float]:
    grid_map.lookup_many(lons, lats)  # warm up
    times = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        grid_map.lookup_many(lons, lats)
        times.append((time.perf_counter_ns() - start) / 1000 / len(lons))
    return times


def measure(grids: int, edge_points: int, points: int, calls: int) -> Row:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_city(Path(tmp) / "city.geojson", grids, edge_points=edge_points)
        start = time.perf_counter()
        grid_map = GridMap.from_geojson(path)
        load_s = time.perf_counter() - start
        file_mb = path.stat().st_size / 1e6
    vertices = float(np.mean(shapely.get_num_coordinates([grid_map.polygon(g.code) for g in grid_map.grids])))
    lons, lats = _points(points, seed=edge_points)
    found = float(np.mean(grid_map.lookup_indices(lons, lats) >= 0))
    single = _time_single(grid_map, lons.tolist(), lats.tolist())
    many = _time_many(grid_map, lons, lats, calls)
    logger.info("%d grids, %.0f vertices: single mean %.1f us", grids, vertices, float(np.mean(single)))
    return Row(grids, vertices, file_mb, load_s, single, many, found)


def _us(values: list[float]) -> str:
    mean, p99 = float(np.mean(values)), float(np.percentile(values, 99))
    return f"{1e6 / mean:,.0f} | {mean:.2f} | {p99:.2f}"


def section(rows: Sequence[Row], points: int, calls: int, command: str) -> str:
    table = "\n".join(
        f"| {r.grids:,} | {r.vertices:.0f} | {r.file_mb:.1f} | {r.load_s:.2f} | {r.found:.1%} | {call} | {_us(times)} |"
        for r in rows
        for call, times in (("single", r.single), ("lookup_many", r.many))
    )
    worst = max(max(float(np.mean(r.single)), float(np.percentile(r.single, 99))) for r in rows)
    verdict = "met" if worst < TARGET_US else "MISSED"
    return f"""{HEADING}

How to run: `{command}` (part of `make bench`). Machine: {platform.machine()}, {os.cpu_count()} cores, one core
used, Python {platform.python_version()}, shapely {shapely.__version__} (GEOS {shapely.geos_version_string}).

`GridMap` (`intake/grids.py`): an STRtree over the grid polygons, queried with the point and the predicate
`intersects`. The maps are `scripts/make_grids.py`'s synthetic city (a jittered lattice, neighbours sharing their
edges) with 3 and 24 wiggled points an edge; load = `GridMap.from_geojson` (read, validate, build the tree, check
for overlaps). {points:,} points uniform over the bounding box ("inside": the share that falls in a grid; the
lattice's short last row leaves the rest outside). Single: each `lookup(lon, lat)` timed alone; lookup_many: {calls}
calls of `lookup_many` on all {points:,} points, each call's time divided by {points:,}.

| grids | vertices a grid | file MB | load s | inside | call | lookups/s | mean us | p99 us |
|---|---|---|---|---|---|---|---|---|
{table}

Target: under {TARGET_US:.0f} us (0.1 ms) a lookup for 5,000 grids: {verdict} (single lookups, worst mean or p99:
{worst:.1f} us).
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grids", description=__doc__)
    parser.add_argument("--grids", type=int, default=5000)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=50, help="timed lookup_many calls")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    rows = [measure(args.grids, edge_points, args.points, args.calls) for edge_points in (3, 24)]
    command = "python -m bench.grids" + (f" --grids {args.grids}" if args.grids != 5000 else "")
    text = section(rows, args.points, args.calls, command)
    replace_section(args.out, HEADING, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
