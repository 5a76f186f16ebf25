"""Write a synthetic city's grid map (GeoJSON) for tests and the grid-lookup benchmark.

.venv/bin/python scripts/make_grids.py var/grids-5000.geojson --grids 5000

A jittered lattice over a bounding box (Shanghai's centre by default): interior lattice corners move up to a quarter
of a cell, every edge gets a few wiggled points so that grids have realistic vertex counts, and neighbours share their
edges exactly (no gaps, no overlaps). The map's outer edge is straight. The hierarchy is 1 district, 10 streets and
100 communities; grid i (row-major from the south-west) is in community i * 100 // N. Codes are 6 + 3 + 3 + 3 digits
(district 319901, not a real one; street, community, grid). A lattice of ceil(sqrt(N)) columns has its last row short
when N is not a multiple of it; those cells are left out of the map.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

logger = logging.getLogger(__name__)
BBOX = (121.30, 31.10, 121.60, 31.35)  # lon_min, lat_min, lon_max, lat_max: about 28 x 28 km
DISTRICT_CODE = "319901"
STREETS, COMMUNITIES = 10, 100
CORNER_JITTER = 0.25  # of a cell
EDGE_WIGGLE = 0.3  # across the edge, of the spacing of its points (at most 0.06 of a cell): no edges cross
Coords = list[list[float]]


def lattice_shape(grids: int) -> tuple[int, int]:
    """(columns, rows) of the lattice that holds `grids` cells, the last row possibly short."""
    cols = math.ceil(math.sqrt(grids))
    return cols, math.ceil(grids / cols)


def _corners(cols: int, rows: int, bbox: tuple[float, float, float, float], rng: np.random.Generator) -> NDArray[Any]:
    """(rows + 1, cols + 1, 2) lon/lat of the lattice corners, the interior ones jittered."""
    lon0, lat0, lon1, lat1 = bbox
    lon, lat = np.meshgrid(np.linspace(lon0, lon1, cols + 1), np.linspace(lat0, lat1, rows + 1))
    corners = np.stack([lon, lat], axis=-1)
    cell = np.array([(lon1 - lon0) / cols, (lat1 - lat0) / rows])
    jitter = rng.uniform(-CORNER_JITTER, CORNER_JITTER, size=(rows - 1, cols - 1, 2)) * cell
    corners[1:-1, 1:-1] += jitter
    return corners


def _edge(
    a: NDArray[Any], b: NDArray[Any], points: int, cell: NDArray[Any], wiggle: float, rng: np.random.Generator
) -> Coords:
    """`points` points strictly between corners a and b, moved across the edge by up to `wiggle` of a cell."""
    t = np.arange(1, points + 1) / (points + 1)
    along = a + (b - a) * t[:, None]
    direction = (b - a) / cell  # in cells, where lon and lat have the same scale
    normal = np.array([-direction[1], direction[0]]) / np.hypot(direction[0], direction[1])
    offsets = rng.uniform(-wiggle, wiggle, size=points)[:, None] * normal * cell
    result: Coords = (along + offsets).tolist()
    return result


def _edges(corners: NDArray[Any], points: int, rng: np.random.Generator) -> tuple[list[list[Coords]], ...]:
    """Wiggled points of each horizontal edge (west to east) and vertical edge (south to north); outer ones straight."""
    rows, cols = corners.shape[0] - 1, corners.shape[1] - 1
    cell = (corners[-1, -1] - corners[0, 0]) / np.array([cols, rows])

    def edge(a: NDArray[Any], b: NDArray[Any], outer: bool) -> Coords:
        return _edge(a, b, points, cell, 0.0 if outer else min(0.06, EDGE_WIGGLE / (points + 1)), rng)

    horizontal = [
        [edge(corners[r, c], corners[r, c + 1], r in (0, rows)) for c in range(cols)] for r in range(rows + 1)
    ]
    vertical = [[edge(corners[r, c], corners[r + 1, c], c in (0, cols)) for c in range(cols + 1)] for r in range(rows)]
    return horizontal, vertical


def _ring(
    corners: NDArray[Any], horizontal: list[list[Coords]], vertical: list[list[Coords]], r: int, c: int
) -> Coords:
    """Counter-clockwise ring of cell (r, c), closed, with every coordinate rounded to 7 decimals (about 1 cm)."""
    ring: Coords = [corners[r, c].tolist(), *horizontal[r][c], corners[r, c + 1].tolist(), *vertical[r][c + 1]]
    ring += [corners[r + 1, c + 1].tolist(), *reversed(horizontal[r + 1][c]), corners[r + 1, c].tolist()]
    ring += [*reversed(vertical[r][c]), corners[r, c].tolist()]
    return [[round(x, 7), round(y, 7)] for x, y in ring]


def _properties(i: int, grids: int) -> dict[str, str]:
    community = i * COMMUNITIES // grids
    street = community // (COMMUNITIES // STREETS)
    first = -(-community * grids // COMMUNITIES)  # the first grid index of this community
    street_code = f"{DISTRICT_CODE}{street + 1:03d}"
    community_code = f"{street_code}{community % (COMMUNITIES // STREETS) + 1:03d}"
    return {
        "code": f"{community_code}{i - first + 1:03d}",
        "name": f"第{i + 1:04d}网格",
        "district": "合成区",
        "district_code": DISTRICT_CODE,
        "street": f"第{street + 1:02d}街道",
        "street_code": street_code,
        "community": f"第{community + 1:03d}社区",
        "community_code": community_code,
    }


def synthetic_city(
    grids: int, *, bbox: tuple[float, float, float, float] = BBOX, seed: int = 0, edge_points: int = 3
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of `grids` grids; feature i is lattice cell (i // columns, i % columns)."""
    if not COMMUNITIES <= grids <= COMMUNITIES * 999:
        raise ValueError(f"grids must be {COMMUNITIES}..{COMMUNITIES * 999}, not {grids}")
    rng = np.random.default_rng(seed)
    cols, rows = lattice_shape(grids)
    corners = _corners(cols, rows, bbox, rng)
    horizontal, vertical = _edges(corners, edge_points, rng)
    rings = [_ring(corners, horizontal, vertical, *divmod(i, cols)) for i in range(grids)]
    invalid = int(np.count_nonzero(~shapely.is_valid([shapely.Polygon(ring) for ring in rings])))
    if invalid:
        raise ValueError(
            f"{invalid} of {grids} synthetic grids are not valid polygons: fewer edge points or a new seed"
        )
    features = [
        {"type": "Feature", "properties": _properties(i, grids), "geometry": {"type": "Polygon", "coordinates": [ring]}}
        for i, ring in enumerate(rings)
    ]
    return {"type": "FeatureCollection", "features": features}


def write_city(path: Path, grids: int, *, seed: int = 0, edge_points: int = 3) -> Path:
    city = synthetic_city(grids, seed=seed, edge_points=edge_points)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(city, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    logger.debug("wrote %s: %d grids", path, grids)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--grids", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--edge-points", type=int, default=3, help="wiggled points on every edge between two corners")
    args = parser.parse_args()
    write_city(args.out, args.grids, seed=args.seed, edge_points=args.edge_points)
    print(f"wrote {args.out}: {args.grids} grids")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
