from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest
import shapely
import yaml

from core.errors import ConfigError
from intake.grids import Grid, GridMap
from scripts.make_grids import lattice_shape, synthetic_city, write_city

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "demo"
SQUARE = [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]]


@pytest.fixture(scope="module")
def demo() -> GridMap:
    return GridMap.from_geojson(DEMO / "grids.geojson")


@pytest.fixture(scope="module")
def city_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_city(tmp_path_factory.mktemp("grids") / "city.geojson", 5000)


def _props(code: object = "310101001001", **extra: Any) -> dict[str, Any]:
    return {
        "code": code,
        "name": "一网格",
        "district": "黄浦区",
        "street": "南京东路街道",
        "community": "示范社区",
        **extra,
    }


def _feature(coords: Any = SQUARE, props: dict[str, Any] | None = None, kind: str = "Polygon") -> dict[str, Any]:
    geometry = {"type": kind, "coordinates": coords}
    return {"type": "Feature", "properties": _props() if props is None else props, "geometry": geometry}


def _collection(*features: dict[str, Any], **top: Any) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(features), **top}, ensure_ascii=False)


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "grids.geojson"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        GridMap.from_geojson(path)
    return [p.replace(str(path), "grids.geojson") for p in caught.value.problems]


def test_the_demo_map_finds_every_demo_cameras_grid(demo: GridMap) -> None:
    cameras = yaml.safe_load((DEMO / "cameras.yaml").read_text(encoding="utf-8"))["cameras"]
    assert len(cameras) >= 4
    for camera in cameras:
        grid = demo.lookup(camera["lon"], camera["lat"])
        assert grid is not None, camera["id"]
        assert grid.code == camera["grid_code"]
        assert (grid.district, grid.district_code, grid.street) == ("黄浦区", "310101", "南京东路街道")
    many = demo.lookup_many([c["lon"] for c in cameras], [c["lat"] for c in cameras])
    assert [g.code if g else None for g in many] == [c["grid_code"] for c in cameras]


def test_a_point_outside_every_grid_is_none(demo: GridMap) -> None:
    assert demo.lookup(121.4800, 31.2400) is None
    assert demo.lookup(0.0, 0.0) is None
    assert demo.lookup(math.nan, 31.23) is None
    assert demo.lookup_many([121.48, math.nan, 121.4730], [31.24, 31.23, 31.2310])[:2] == [None, None]
    assert demo.lookup_indices([121.48], [31.24]).tolist() == [-1]


def test_a_point_on_a_shared_border_goes_to_the_lowest_code(demo: GridMap) -> None:
    # 001 | 002 share lon 121.4738 north of lat 31.2302; all four of 001..004 meet at (121.4738, 31.2302)
    on_edge, on_corner, on_outer_edge = (121.4738, 31.2308), (121.4738, 31.2302), (121.4722, 31.2308)
    for lon, lat, code in [(*on_edge, "310101001001"), (*on_corner, "310101001001"), (*on_outer_edge, "310101001001")]:
        assert [demo.lookup(lon, lat) for _ in range(3)] == [demo.get(code)] * 3
        assert demo.lookup_many([lon], [lat]) == [demo.get(code)]
    # 002 | 005 share lon 121.4754: 002 is lower; 003 | 005 below it: 003 is lower
    assert [g.code if g else None for g in demo.lookup_many([121.4754, 121.4754], [31.2310, 31.2295])] == [
        "310101001002",
        "310101001003",
    ]


def test_the_border_rule_does_not_depend_on_the_file_order(tmp_path: Path) -> None:
    right = [[[1.0, 0.0], [2.0, 0.0], [2.0, 1.0], [1.0, 1.0], [1.0, 0.0]]]
    text = _collection(_feature(right, _props("2")), _feature(SQUARE, _props("10")))
    path = tmp_path / "g.geojson"
    path.write_text(text, encoding="utf-8")
    grids = GridMap.from_geojson(path)
    assert [g.code for g in grids.grids] == ["10", "2"]  # string order: "10" < "2"
    grid = grids.lookup(1.0, 0.5)
    assert grid is not None and grid.code == "10"


def test_every_lattice_cells_centroid_finds_its_own_grid(city_file: Path) -> None:
    city = GridMap.from_geojson(city_file)
    features = json.loads(city_file.read_text(encoding="utf-8"))["features"]
    assert len(city) == len(features) == 5000
    assert lattice_shape(5000) == (71, 71)
    centroids = [shapely.Polygon(f["geometry"]["coordinates"][0]).centroid for f in features]
    lons, lats = [c.x for c in centroids], [c.y for c in centroids]
    codes = [f["properties"]["code"] for f in features]
    assert [g.code if g else None for g in city.lookup_many(lons, lats)] == codes
    singles = [city.lookup(x, y) for x, y in zip(lons, lats, strict=True)]
    assert [g.code if g else None for g in singles] == codes


def test_the_synthetic_city_has_the_hierarchy_and_shared_edges(city_file: Path) -> None:
    city = GridMap.from_geojson(city_file)
    assert {g.district for g in city.grids} == {"合成区"}
    assert len({g.street_code for g in city.grids}) == 10
    assert len({g.community_code for g in city.grids}) == 100
    assert all(g.code.startswith(g.community_code or "?") for g in city.grids)
    polygons = [city.polygon(g.code) for g in city.grids]
    union = shapely.union_all(polygons)
    assert union.area == pytest.approx(sum(p.area for p in polygons), rel=1e-9)  # no overlaps, no slivers
    assert shapely.get_num_coordinates(polygons[0]) == 17  # 4 corners x (1 + 3 wiggled points) + the closing one
    assert synthetic_city(100, seed=1) == synthetic_city(100, seed=1)


def test_properties_beyond_the_known_ones_are_ignored(tmp_path: Path) -> None:
    text = _collection(_feature(props=_props(OBJECTID=7, Shape_Area=1.5)), crs=_crs("urn:ogc:def:crs:OGC:1.3:CRS84"))
    path = tmp_path / "g.geojson"
    path.write_text(text, encoding="utf-8")
    grid = GridMap.from_geojson(path).lookup(0.5, 0.5)
    assert grid == Grid("310101001001", "一网格", "黄浦区", "南京东路街道", "示范社区")


def test_a_multipolygon_with_a_hole(tmp_path: Path) -> None:
    hole = [[0.2, 0.2], [0.4, 0.2], [0.4, 0.4], [0.2, 0.2]]
    far = [[[5.0, 5.0], [6.0, 5.0], [6.0, 6.0], [5.0, 5.0]]]
    path = tmp_path / "g.geojson"
    path.write_text(_collection(_feature([[SQUARE[0], hole], far], kind="MultiPolygon")), encoding="utf-8")
    grids = GridMap.from_geojson(path)
    assert grids.lookup(0.35, 0.25) is None
    assert grids.lookup(0.1, 0.1) is not None
    assert grids.lookup(5.9, 5.1) is not None


def _crs(name: str) -> dict[str, Any]:
    return {"type": "name", "properties": {"name": name}}


BAD = [
    (
        _collection(_feature(), _feature(props=_props(name="二网格"))),
        ["grids.geojson: features[1].properties.code: grid code 310101001001 appears twice (first in features[0])"],
    ),
    (
        _collection(_feature([[[0, 0], [1, 0], [0, 0]]])),
        [
            "grids.geojson: features[0].geometry.coordinates[0]: a ring has 3 positions; a closed ring needs at "
            "least 4 (the first repeated at the end)"
        ],
    ),
    (
        _collection(_feature([[[0, 0], [1, 0], [1, 1], [0, 1]]])),
        [
            "grids.geojson: features[0].geometry.coordinates[0]: the ring is not closed: its first and last "
            "positions differ"
        ],
    ),
    (
        _collection(_feature(), _feature([[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]], _props("2"))),
        ["grids.geojson: features[1].geometry: invalid polygon: Self-intersection[0.5 0.5]"],
    ),
    (
        _collection(_feature([[[0, 0], [181, 0], [1, 1], [0, 0]]])),
        ["grids.geojson: features[0].geometry.coordinates[0][1]: longitude 181.0 is outside -180..180"],
    ),
    (
        _collection(_feature([[[0, 0], [1, 0], [1, -91], [0, 0]]], kind="Polygon")),
        ["grids.geojson: features[0].geometry.coordinates[0][2]: latitude -91.0 is outside -90..90"],
    ),
    (
        _collection(
            _feature([[[[0, 0], [1, 0], [1, 1], [0, 0]]], [[[0, 0], [1, 0], [200, 1], [0, 0]]]], kind="MultiPolygon")
        ),
        ["grids.geojson: features[0].geometry.coordinates[1][0][2]: longitude 200.0 is outside -180..180"],
    ),
    (
        _collection(_feature(props=_props(code=310101001001)), _feature(props=_props(code="31-01"))),
        [
            "grids.geojson: features[0].properties.code: Input should be a valid string",
            "grids.geojson: features[1].properties.code: a code is 1 to 32 digits (0-9), not '31-01'",
        ],
    ),
    (
        _collection(_feature(props={"code": "1", "name": "n", "district": "d", "street_code": "x"})),
        [
            "grids.geojson: features[0].properties.street: Field required",
            "grids.geojson: features[0].properties.community: Field required",
            "grids.geojson: features[0].properties.street_code: a code is 1 to 32 digits (0-9), not 'x'",
        ],
    ),
    (
        _collection(_feature([[0, 0], [1, 1]], kind="LineString")),
        [
            "grids.geojson: features[0].geometry: Input tag 'LineString' found using 'type' does not match any of "
            "the expected tags: 'Polygon', 'MultiPolygon'"
        ],
    ),
    (_collection(), ["grids.geojson: features: needs at least one feature"]),
    (
        _collection(_feature(), crs=_crs("urn:ogc:def:crs:EPSG::4547")),
        [
            "grids.geojson: crs: coordinates must be WGS84 lon/lat (EPSG:4326), not urn:ogc:def:crs:EPSG::4547; "
            "reproject with ogr2ogr -t_srs EPSG:4326"
        ],
    ),
    (
        '{"type": "FeatureCollection",\n "features": [\n  {"type" "Feature"}]}',
        ["grids.geojson:3:11: invalid JSON: Expecting ':' delimiter"],
    ),
    ("[]", ["grids.geojson: (top): Input should be an object"]),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_files_give_exact_messages(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert _problems(tmp_path, text) == expected


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        GridMap.from_geojson(tmp_path / "none.geojson")
    assert caught.value.problems == [f"{tmp_path / 'none.geojson'}: cannot read: No such file or directory"]


def test_many_problems_are_capped(tmp_path: Path) -> None:
    problems = _problems(tmp_path, _collection(*[_feature() for _ in range(60)]))
    assert len(problems) == 51
    assert problems[-1] == "... and 9 more problems"


def test_overlapping_grids_are_logged_and_the_lowest_code_wins(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shifted = [[[0.5, 0.5], [2.0, 0.5], [2.0, 2.0], [0.5, 2.0], [0.5, 0.5]]]
    path = tmp_path / "g.geojson"
    path.write_text(_collection(_feature(shifted, _props("2")), _feature(SQUARE, _props("1"))), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="intake.grids"):
        grids = GridMap.from_geojson(path)
    assert "grids overlap in 1 pairs (1 and 2)" in caplog.text
    inside = grids.lookup(0.75, 0.75)
    assert inside is not None and inside.code == "1"


def test_lookup_many_checks_its_arguments(demo: GridMap) -> None:
    with pytest.raises(ValueError, match="1-d and of one length"):
        demo.lookup_many([1.0, 2.0], [1.0])


def test_a_grid_inside_another_counts_as_an_overlap(tmp_path: Path) -> None:
    inner = [[[0.2, 0.2], [0.4, 0.2], [0.4, 0.4], [0.2, 0.4], [0.2, 0.2]]]
    path = tmp_path / "g.geojson"
    path.write_text(_collection(_feature(SQUARE, _props("9")), _feature(inner, _props("3"))), encoding="utf-8")
    grids = GridMap.from_geojson(path)
    assert grids.overlaps() == [("3", "9")]
    assert GridMap.from_geojson(DEMO / "grids.geojson").overlaps() == []
