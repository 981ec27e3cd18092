"""The city's extent: each district's convex hull, as routing publishes it with a
jurisdiction. Intake checks that a report lies inside the city against it."""

from __future__ import annotations

from typing import Any

from shapely import STRtree
from shapely.geometry import Point, mapping, shape
from shapely.geometry.base import BaseGeometry


class Extent:
    """The city's extent: each district's convex hull. Gaps between grids lie inside it."""

    def __init__(self, hulls: dict[str, BaseGeometry]) -> None:
        self._hulls = hulls
        self._ids = list(hulls)
        self._tree = STRtree([hulls[i] for i in self._ids])

    @classmethod
    def from_geojson(cls, doc: dict[str, Any]) -> Extent:
        """From `Jurisdiction.extent_geojson()`: a FeatureCollection, one hull a district."""
        return cls({f["properties"]["district_id"]: shape(f["geometry"]) for f in doc["features"]})

    def district_of(self, lon: float, lat: float) -> str | None:
        point = Point(lon, lat)
        for i in self._tree.query(point, predicate="intersects"):
            return self._ids[int(i)]
        return None

    def contains(self, lon: float, lat: float) -> bool:
        return self.district_of(lon, lat) is not None

    def to_geojson(self) -> dict[str, Any]:
        return {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "properties": {"district_id": d}, "geometry": mapping(g)}
                for d, g in sorted(self._hulls.items())
            ],
        }
