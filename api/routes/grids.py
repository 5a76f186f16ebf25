"""The grid map as GeoJSON, for the alert wall's base map: the grid polygons are the map (no tiles from outside)."""

from __future__ import annotations

import logging
from typing import Literal

import shapely
from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict

from api.deps import DepsDep, ViewerDep
from api.models import AUTH_ERRORS
from intake.grids import Grid

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["grids"])

Position = tuple[float, float]


class GridGeometry(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: Literal["MultiPolygon"] = "MultiPolygon"
    coordinates: list[list[list[Position]]]  # polygons -> rings -> lon, lat


class GridFeature(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: Literal["Feature"] = "Feature"
    properties: Grid
    geometry: GridGeometry


class GridCollection(BaseModel):
    """RFC 7946 GeoJSON, WGS84 lon/lat; every grid as a MultiPolygon. Empty when the server has no grid map."""

    model_config = ConfigDict(frozen=True)

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[GridFeature]


def _rings(polygon: shapely.Polygon) -> list[list[Position]]:
    rings = [polygon.exterior, *polygon.interiors]
    return [[(round(x, 7), round(y, 7)) for x, y, *_ in ring.coords] for ring in rings]


def _geometry(shape: shapely.Geometry) -> GridGeometry:
    parts = list(shape.geoms) if isinstance(shape, shapely.MultiPolygon) else [shape]
    return GridGeometry(coordinates=[_rings(p) for p in parts])


@router.get("/grids", operation_id="grid_map", responses=AUTH_ERRORS)
def grid_map(_caller: ViewerDep, deps: DepsDep, response: Response) -> GridCollection:
    """The grids of the case store's grid map (the config folder's `grids.geojson`)."""
    response.headers["Cache-Control"] = "private, max-age=300"
    grids = deps.cases.grids if deps.cases is not None else None
    if grids is None:
        return GridCollection(features=[])
    features = [GridFeature(properties=g, geometry=_geometry(grids.polygon(g.code))) for g in grids.grids]
    return GridCollection(features=features)
