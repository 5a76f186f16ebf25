"""The grid map: which management grid (网格) a lon/lat falls in, with its district / street / community.

A grid map is a GeoJSON FeatureCollection (RFC 7946, WGS84 lon/lat) of Polygon or MultiPolygon features, one a grid,
each with the properties `code` (digits), `name`, `district`, `street`, `community` and optionally `district_code`,
`street_code`, `community_code`. Other properties (a shapefile's OBJECTID, Shape_Area ...) are allowed and ignored.
Every problem is reported as `file: features[12].properties.code: message` (a JSON syntax error as
`file:line:col: message`), all of them at once.

A point on a border shared by several grids (or on the overlap of grids that overlap) belongs to the one with the
lowest code (string order); a point on the map's outer edge belongs to its grid. Lookups use shapely 2's STRtree.
Pure apart from reading the file in `from_geojson`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, NoReturn, TypeVar

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from core.errors import ConfigError
from core.yamlconf import format_loc

logger = logging.getLogger(__name__)
T = TypeVar("T")

MAX_PROBLEMS = 50  # a broken file lists this many problems, then how many more there are
GEOMETRY_TAGS = frozenset({"Polygon", "MultiPolygon"})
# WGS84 lon/lat; CGCS2000 (EPSG:4490, China's national datum) agrees with WGS84 to well under a metre
LONLAT_CRS = frozenset(
    {
        "urn:ogc:def:crs:OGC:1.3:CRS84",
        "urn:ogc:def:crs:OGC::CRS84",
        "urn:ogc:def:crs:EPSG::4326",
        "EPSG:4326",
        "urn:ogc:def:crs:EPSG::4490",
        "EPSG:4490",
    }
)


def _digits(value: str) -> str:
    if not (value.isascii() and value.isdigit() and len(value) <= 32):
        raise PydanticCustomError("code_digits", "a code is 1 to 32 digits (0-9), not '{value}'", {"value": value})
    return value


def _position(value: tuple[float, ...]) -> tuple[float, ...]:
    if not 2 <= len(value) <= 3:
        raise PydanticCustomError(
            "position", "a position has {n} numbers, not 2 (lon, lat) or 3 (lon, lat, height)", {"n": len(value)}
        )
    lon, lat = value[0], value[1]
    if not -180.0 <= lon <= 180.0:  # also refuses NaN
        raise PydanticCustomError("lon_range", "longitude {lon} is outside -180..180", {"lon": lon})
    if not -90.0 <= lat <= 90.0:
        raise PydanticCustomError("lat_range", "latitude {lat} is outside -90..90", {"lat": lat})
    return value


def _ring(value: tuple[tuple[float, ...], ...]) -> tuple[tuple[float, ...], ...]:
    if len(value) < 4:
        raise PydanticCustomError(
            "ring_short",
            "a ring has {n} positions; a closed ring needs at least 4 (the first repeated at the end)",
            {"n": len(value)},
        )
    if value[0][:2] != value[-1][:2]:
        raise PydanticCustomError("ring_open", "the ring is not closed: its first and last positions differ", {})
    return value


def _not_empty(what: str) -> AfterValidator:
    """A length check that runs only once the items are valid (pydantic's `min_length` would count only valid ones)."""

    def check(value: tuple[T, ...]) -> tuple[T, ...]:
        if not value:
            raise PydanticCustomError("empty", "needs at least one {what}", {"what": what})
        return value

    return AfterValidator(check)


Digits = Annotated[str, AfterValidator(_digits)]
Name = Annotated[str, Field(min_length=1)]
Position = Annotated[tuple[float, ...], AfterValidator(_position)]
Ring = Annotated[tuple[Position, ...], AfterValidator(_ring)]
Rings = Annotated[tuple[Ring, ...], _not_empty("ring")]  # the outer ring, then the holes


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")


class PolygonGeometry(_Model):
    type: Literal["Polygon"]
    coordinates: Rings


class MultiPolygonGeometry(_Model):
    type: Literal["MultiPolygon"]
    coordinates: Annotated[tuple[Rings, ...], _not_empty("polygon")]


class GridProperties(_Model):
    """A feature's properties; unknown ones are ignored (converted shapefiles carry many)."""

    code: Digits
    name: Name
    district: Name
    street: Name
    community: Name
    district_code: Digits | None = None
    street_code: Digits | None = None
    community_code: Digits | None = None


class GridFeature(_Model):
    type: Literal["Feature"]
    geometry: Annotated[PolygonGeometry | MultiPolygonGeometry, Field(discriminator="type")]
    properties: GridProperties


class NamedCrs(_Model):
    type: Literal["name"]
    properties: dict[str, str]


class GridCollection(_Model):
    type: Literal["FeatureCollection"]
    crs: NamedCrs | None = None  # RFC 7946 dropped `crs`, but ogr2ogr and older tools still write it
    features: Annotated[tuple[GridFeature, ...], _not_empty("feature")]

    @field_validator("crs")
    @classmethod
    def _lonlat(cls, crs: NamedCrs | None) -> NamedCrs | None:
        name = crs.properties.get("name", "") if crs is not None else "EPSG:4326"
        if name not in LONLAT_CRS:
            raise PydanticCustomError(
                "crs_not_lonlat",
                "coordinates must be WGS84 lon/lat (EPSG:4326), not {name}; reproject with ogr2ogr -t_srs EPSG:4326",
                {"name": name},
            )
        return crs


@dataclass(frozen=True, slots=True)
class Grid:
    """One management grid and where it sits in the hierarchy district / street / community / grid."""

    code: str
    name: str
    district: str
    street: str
    community: str
    district_code: str | None = None
    street_code: str | None = None
    community_code: str | None = None


class GridMap:
    """Grids and their polygons behind an STRtree; `lookup(lon, lat)` gives the grid a point falls in."""

    def __init__(self, grids: Sequence[Grid], polygons: Sequence[shapely.Geometry]) -> None:
        if len(grids) != len(polygons):
            raise ValueError(f"{len(grids)} grids but {len(polygons)} polygons")
        order = sorted(range(len(grids)), key=lambda i: grids[i].code)
        self.grids: tuple[Grid, ...] = tuple(grids[i] for i in order)
        codes = [g.code for g in self.grids]
        if len(set(codes)) != len(codes):
            raise ValueError("grid codes must be unique")
        self._index = {code: i for i, code in enumerate(codes)}
        self._polygons = np.array([polygons[i] for i in order], dtype=object)
        shapely.prepare(self._polygons)
        # tree index i is the i-th lowest code, so the lowest index among the hits is the border rule's winner
        self._tree = shapely.STRtree(self._polygons)

    @classmethod
    def from_geojson(cls, path: Path) -> GridMap:
        """Read and validate a grid map; a ConfigError lists every problem as `file: features[i]...: message`."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
        except UnicodeDecodeError as exc:
            raise ConfigError([f"{path}: not UTF-8 text: {exc.reason} at byte {exc.start}"]) from None
        grid_map = cls.parse(text, str(path))
        logger.info("grid map: %d grids from %s", len(grid_map), path)
        return grid_map

    @classmethod
    def parse(cls, text: str, source: str) -> GridMap:
        """Validate GeoJSON `text`; `source` names it in the messages."""
        collection = _validate(text, source)
        polygons = [_shape(f) for f in collection.features]
        problems = _geometry_problems(polygons, source) + _duplicate_problems(collection.features, source)
        if problems:
            raise ConfigError(_capped(problems))
        grid_map = cls([_grid(f.properties) for f in collection.features], polygons)
        overlaps = grid_map.overlaps()
        if overlaps:
            shown = ", ".join(f"{a} and {b}" for a, b in overlaps[:5])
            logger.warning(
                "%s: grids overlap in %d pairs (%s); the lowest code wins inside an overlap",
                source,
                len(overlaps),
                shown,
            )
        return grid_map

    def __len__(self) -> int:
        return len(self.grids)

    def get(self, code: str) -> Grid | None:
        i = self._index.get(code)
        return None if i is None else self.grids[i]

    def polygon(self, code: str) -> shapely.Geometry:
        """The polygon of the grid `code` (KeyError if the map lacks it)."""
        geometry: shapely.Geometry = self._polygons[self._index[code]]
        return geometry

    def overlaps(self) -> list[tuple[str, str]]:
        """Pairs of grid codes whose interiors intersect (grids should only touch), lower code first."""
        left, right = self._tree.query(self._polygons, predicate="intersects")
        pairs = left < right  # each pair once, no grid with itself
        left, right = left[pairs], right[pairs]
        inner = shapely.relate_pattern(self._polygons[left], self._polygons[right], "T********")
        return [
            (self.grids[a].code, self.grids[b].code)
            for a, b in zip(left[inner].tolist(), right[inner].tolist(), strict=True)
        ]

    def lookup(self, lon: float, lat: float) -> Grid | None:
        """The grid that (lon, lat) falls in (borders included, the lowest code on a shared one); None outside."""
        if not (math.isfinite(lon) and math.isfinite(lat)):
            return None
        hits = self._tree.query(shapely.Point(lon, lat), predicate="intersects")
        return self.grids[int(hits.min())] if hits.size else None

    def lookup_indices(self, lons: ArrayLike, lats: ArrayLike) -> NDArray[np.intp]:
        """Vectorised lookup: the index into `grids` of each point's grid, -1 where none (or a coordinate is NaN)."""
        x = np.asarray(lons, dtype=np.float64)
        y = np.asarray(lats, dtype=np.float64)
        if x.shape != y.shape or x.ndim != 1:
            raise ValueError(f"lons and lats must be 1-d and of one length, not {x.shape} and {y.shape}")
        found = np.full(x.shape[0], len(self.grids), dtype=np.intp)
        points, tree = self._tree.query(shapely.points(x, y), predicate="intersects")
        np.minimum.at(found, points, tree)
        found[found == len(self.grids)] = -1
        return found

    def lookup_many(self, lons: ArrayLike, lats: ArrayLike) -> list[Grid | None]:
        """`lookup` for many points at once, in their order."""
        return [self.grids[i] if i >= 0 else None for i in self.lookup_indices(lons, lats).tolist()]


def _validate(text: str, source: str) -> GridCollection:
    try:
        return GridCollection.model_validate_json(text)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            if err["type"] == "json_invalid":
                return _json_syntax(text, source)
            problems.append(f"{source}: {format_loc(err['loc'], GEOMETRY_TAGS)}: {err['msg']}")
        raise ConfigError(_capped(problems)) from None


def _json_syntax(text: str, source: str) -> NoReturn:
    """Raise the syntax error with its line and column, as Python's json module reports them."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError([f"{source}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"]) from None
    except RecursionError:
        raise ConfigError([f"{source}:1:1: invalid JSON: nested too deeply"]) from None
    raise ConfigError([f"{source}:1:1: invalid JSON"])  # pydantic's parser refused what Python's accepts


def _shape(feature: GridFeature) -> shapely.Geometry:
    geometry = feature.geometry
    parts = (geometry.coordinates,) if isinstance(geometry, PolygonGeometry) else geometry.coordinates
    polygons = [
        shapely.Polygon([p[:2] for p in rings[0]], [[p[:2] for p in hole] for hole in rings[1:]]) for rings in parts
    ]
    return polygons[0] if isinstance(geometry, PolygonGeometry) else shapely.MultiPolygon(polygons)


def _geometry_problems(polygons: Sequence[shapely.Geometry], source: str) -> list[str]:
    valid = shapely.is_valid(np.array(polygons, dtype=object))
    return [
        f"{source}: features[{i}].geometry: invalid polygon: {shapely.is_valid_reason(polygons[i])}"
        for i in np.flatnonzero(~valid).tolist()
    ]


def _duplicate_problems(features: Sequence[GridFeature], source: str) -> list[str]:
    first: dict[str, int] = {}
    problems = []
    for i, feature in enumerate(features):
        code = feature.properties.code
        if code in first:
            where = f"{source}: features[{i}].properties.code"
            problems.append(f"{where}: grid code {code} appears twice (first in features[{first[code]}])")
        else:
            first[code] = i
    return problems


def _grid(p: GridProperties) -> Grid:
    return Grid(p.code, p.name, p.district, p.street, p.community, p.district_code, p.street_code, p.community_code)


def _capped(problems: list[str]) -> list[str]:
    if len(problems) <= MAX_PROBLEMS:
        return problems
    return [*problems[:MAX_PROBLEMS], f"... and {len(problems) - MAX_PROBLEMS} more problems"]
