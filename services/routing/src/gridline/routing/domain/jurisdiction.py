"""Routing's jurisdiction: grid polygons and their community, street and district, validated.

Input is the contract's GeoJSON FeatureCollection. Validation collects every problem, each
with the feature's index and id, so an operator can fix the file in one pass.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import shapely
from shapely import STRtree
from shapely.geometry import MultiPolygon, Point, Polygon, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union
from shapely.validation import explain_validity

from gridline.common.policy import unit_ids
from gridline.common.policy.extent import Extent

Level = Literal["grid", "community", "street", "district"]
KINDS = ("comprehensive", "special")
PROPERTIES = (
    "grid_id",
    "grid_name",
    "grid_kind",
    "community_id",
    "community_name",
    "street_id",
    "street_name",
    "district_id",
    "district_name",
)
# Shared edges of neighbouring grids touch; only a real area in common is an overlap.
OVERLAP_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Problem:
    index: int | None
    feature_id: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "id": self.feature_id, "message": self.message}


class JurisdictionInvalid(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the jurisdiction")
        self.problems = problems


@dataclass(frozen=True)
class Unit:
    unit_id: str
    level: Level
    name: str
    parent_id: str | None


@dataclass(frozen=True)
class Grid:
    grid_id: str
    grid_name: str
    grid_kind: str
    community_id: str
    community_name: str
    street_id: str
    street_name: str
    district_id: str
    district_name: str
    geometry: BaseGeometry = field(compare=False, repr=False)


class Jurisdiction:
    """Grids, units and a spatial index; built only by `parse_jurisdiction`."""

    def __init__(self, grids: list[Grid], version: str) -> None:
        self.version = version
        self.grids: dict[str, Grid] = {g.grid_id: g for g in grids}
        self._units: dict[str, Unit] = {}
        self._children: dict[str, list[str]] = {}
        for g in grids:
            for unit in (
                Unit(g.district_id, "district", g.district_name, None),
                Unit(g.street_id, "street", g.street_name, g.district_id),
                Unit(g.community_id, "community", g.community_name, g.street_id),
                Unit(g.grid_id, "grid", g.grid_name, g.community_id),
            ):
                if unit.unit_id not in self._units:
                    self._units[unit.unit_id] = unit
                    if unit.parent_id:
                        self._children.setdefault(unit.parent_id, []).append(unit.unit_id)
        # Special grids first, so a point in both goes to the special grid.
        ordered = sorted(grids, key=lambda g: (g.grid_kind != "special", g.grid_id))
        self._indexed = ordered
        self._tree = STRtree([g.geometry for g in ordered])
        hulls: dict[str, BaseGeometry] = {}
        by_district: dict[str, list[BaseGeometry]] = {}
        for g in grids:
            by_district.setdefault(g.district_id, []).append(g.geometry)
        for district, geoms in by_district.items():
            hulls[district] = unary_union(geoms).convex_hull
        self.extent = Extent(hulls)
        # Where an order with no district of its own is held (its point lies in no
        # district's hull): read on every such report, so found once here.
        self._default_district = min(g.district_id for g in grids)

    def unit(self, unit_id: str) -> Unit:
        return self._units[unit_id]

    def units_at(self, level: Level) -> list[Unit]:
        return [u for u in self._units.values() if u.level == level]

    def ancestors(self, unit_id: str) -> list[Unit]:
        """Parent first, district last."""
        result: list[Unit] = []
        parent = self._units[unit_id].parent_id
        while parent is not None:
            unit = self._units[parent]
            result.append(unit)
            parent = unit.parent_id
        return result

    def descendants(self, unit_id: str) -> list[str]:
        result: list[str] = []
        stack = list(self._children.get(unit_id, []))
        while stack:
            child = stack.pop()
            result.append(child)
            stack.extend(self._children.get(child, []))
        return result

    def locate(self, lon: float, lat: float) -> Grid | None:
        """The grid holding the point: a special grid over a comprehensive one (they come
        first in the index's order, so the lowest index wins)."""
        hits = self._tree.query(Point(lon, lat), predicate="intersects")
        return self._indexed[int(hits.min())] if len(hits) else None

    def locate_many(self, points: Sequence[tuple[float, float]]) -> list[Grid | None]:
        """`locate` for each (lon, lat) of a batch, in one query of the index (in a
        Changzhou-sized city, batches of 30 cost about a sixth of one-by-one look-ups:
        bench/routing_micro.py)."""
        if not points:
            return []
        lons, lats = zip(*points, strict=True)
        which, hits = self._tree.query(shapely.points(lons, lats), predicate="intersects")
        first: dict[int, int] = {}  # point -> its first grid in index order (specials first)
        for point, hit in zip(which.tolist(), hits.tolist(), strict=True):
            if hit < first.get(point, len(self._indexed)):
                first[point] = hit
        return [self._indexed[first[i]] if i in first else None for i in range(len(points))]

    def in_extent(self, lon: float, lat: float) -> bool:
        return self.extent.contains(lon, lat)

    def district_of_point(self, lon: float, lat: float) -> str | None:
        return self.extent.district_of(lon, lat)

    def default_district_id(self) -> str:
        """The first district by id: where orders with no district of their own are held."""
        return self._default_district

    def extent_geojson(self) -> dict[str, Any]:
        return self.extent.to_geojson()

    def places(self) -> list[dict[str, Any]]:
        """Every grid, community and street with a point that `locate` puts in it, for
        reports that name a place instead of giving coordinates (the gazetteer intake
        keeps). A community's or street's point lies in its first comprehensive grid, so
        the report is routed like one made there."""
        result: list[dict[str, Any]] = []
        first: dict[str, tuple[float, float]] = {}  # community or street -> a grid's point
        for grid in sorted(self.grids.values(), key=lambda g: g.grid_id):
            point = self._point_in(grid)
            if point is None:
                continue
            result.append(
                _place(
                    grid.grid_id, "grid", grid.grid_name, point, grid.grid_kind, grid.community_id
                )
            )
            if grid.grid_kind == "comprehensive":
                first.setdefault(grid.community_id, point)
                first.setdefault(grid.street_id, point)
        for level in ("community", "street"):
            for unit in sorted(self.units_at(level), key=lambda u: u.unit_id):
                if unit.unit_id in first:
                    result.append(
                        _place(
                            unit.unit_id,
                            level,
                            unit.name,
                            first[unit.unit_id],
                            None,
                            unit.parent_id,
                        )
                    )
        return result

    def _point_in(self, grid: Grid) -> tuple[float, float] | None:
        """A point inside the grid that `locate` maps to it: a comprehensive grid's
        representative point may fall in a special grid lying over it, then one outside
        the special grids is taken."""
        candidates = [grid.geometry]
        overlays = [
            self._indexed[int(i)].geometry
            for i in self._tree.query(grid.geometry, predicate="intersects")
            if self._indexed[int(i)].grid_kind == "special" and self._indexed[int(i)] is not grid
        ]
        if overlays:
            candidates.append(grid.geometry.difference(unary_union(overlays)))
        for area in candidates:
            if area.is_empty:
                continue
            point = area.representative_point()
            lon, lat = round(point.x, 7), round(point.y, 7)
            if self.locate(lon, lat) is grid:
                return lon, lat
        return None


def _place(
    unit_id: str,
    level: str,
    name: str,
    point: tuple[float, float],
    grid_kind: str | None = None,
    parent_id: str | None = None,
) -> dict[str, Any]:
    return {
        "id": unit_id,
        "level": level,
        "name": name,
        "grid_kind": grid_kind,
        "lon": point[0],
        "lat": point[1],
        "parent_id": parent_id,
    }


def _geometry(
    raw: Any, index: int, gid: str | None, problems: list[Problem]
) -> BaseGeometry | None:
    def bad(message: str) -> None:
        problems.append(Problem(index, gid, message))

    if not isinstance(raw, dict) or raw.get("type") not in ("Polygon", "MultiPolygon"):
        kind = raw.get("type") if isinstance(raw, dict) else type(raw).__name__
        bad(f"geometry must be a Polygon or MultiPolygon, got {kind}")
        return None
    try:
        geom = shape(raw)
    except Exception as exc:  # shapely raises several types for malformed coordinates
        bad(f"geometry coordinates are malformed: {exc}")
        return None
    if geom.is_empty:
        bad("geometry is empty")
        return None
    min_x, min_y, max_x, max_y = geom.bounds
    if (
        not all(math.isfinite(v) for v in geom.bounds)
        or min_x < -180
        or max_x > 180
        or min_y < -90
        or max_y > 90
    ):
        bad("coordinates must be WGS84 longitude [-180, 180] then latitude [-90, 90]")
        return None
    if not geom.is_valid:
        bad(f"geometry is invalid: {explain_validity(geom)}")
        return None
    if not isinstance(geom, Polygon | MultiPolygon) or geom.area == 0:
        bad("geometry has no area")
        return None
    return geom


def _properties_problem(props: dict[str, Any]) -> str | None:
    """What is wrong with a feature's properties, if anything: one missing, an id
    (gridline.common.policy.unit_ids) or a name that is no good as text, an unknown kind."""
    missing = [p for p in PROPERTIES if not isinstance(props.get(p), str) or not props[p].strip()]
    if missing:
        return f"missing or non-string properties: {', '.join(missing)}"
    for name in PROPERTIES:
        value = props[name].strip()
        if name.endswith("_id"):
            if (bad := unit_ids.problem(value)) is not None:
                return f"{name} {bad}"
        elif unit_ids.has_control(value):
            return f"{name} {value[:40]!r} holds a control character (a tab, a line break, ...)"
    if props["grid_kind"] not in KINDS:
        return f"grid_kind must be comprehensive or special, got {props['grid_kind']!r}"
    return None


def _check_parents(grids: list[tuple[int, Grid]], problems: list[Problem]) -> None:
    """One parent and one name per unit; no id used at two levels."""
    seen: dict[tuple[str, str], tuple[int, str, str | None]] = {}
    level_of: dict[str, tuple[str, int]] = {}
    for index, g in grids:
        for level, uid, name, parent in (
            ("district", g.district_id, g.district_name, None),
            ("street", g.street_id, g.street_name, g.district_id),
            ("community", g.community_id, g.community_name, g.street_id),
            ("grid", g.grid_id, g.grid_name, g.community_id),
        ):
            other = level_of.get(uid)
            if other is not None and other[0] != level:
                problems.append(
                    Problem(
                        index,
                        g.grid_id,
                        f"id {uid} is used as a {level} here and as a {other[0]} in feature {other[1]}",
                    )
                )
                continue
            level_of[uid] = (level, index)
            if level == "grid":
                continue
            first = seen.get((level, uid))
            if first is None:
                seen[(level, uid)] = (index, name, parent)
                continue
            first_index, first_name, first_parent = first
            if first_parent != parent:
                up = {"street": "district_id", "community": "street_id"}[level]
                problems.append(
                    Problem(
                        index,
                        g.grid_id,
                        f"contradictory parents: {level} {uid} has {up} {parent} here but {first_parent} in feature {first_index}",
                    )
                )
            elif first_name != name:
                problems.append(
                    Problem(
                        index,
                        g.grid_id,
                        f"{level} {uid} is named {name!r} here but {first_name!r} in feature {first_index}",
                    )
                )


def _check_overlaps(grids: list[tuple[int, Grid]], problems: list[Problem]) -> None:
    """Comprehensive grids must not overlap each other, nor special grids each other."""
    for kind in KINDS:
        subset = [(i, g) for i, g in grids if g.grid_kind == kind]
        tree = STRtree([g.geometry for _, g in subset])
        for a, (index, g) in enumerate(subset):
            for b in tree.query(g.geometry, predicate="intersects"):
                b = int(b)
                if b <= a:
                    continue
                other_index, other = subset[b]
                common = g.geometry.intersection(other.geometry).area
                if common > OVERLAP_TOLERANCE * min(g.geometry.area, other.geometry.area):
                    problems.append(
                        Problem(
                            other_index,
                            other.grid_id,
                            f"{kind} grid {other.grid_id} overlaps {kind} grid {g.grid_id} (feature {index})",
                        )
                    )


def _canonical_version(doc: Any) -> str:
    text = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_jurisdiction(doc: Any) -> Jurisdiction:
    """Validate and build; raises JurisdictionInvalid listing every problem found."""
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise JurisdictionInvalid([Problem(None, None, "expected a GeoJSON FeatureCollection")])
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise JurisdictionInvalid([Problem(None, None, "the FeatureCollection has no features")])
    problems: list[Problem] = []
    grids: list[tuple[int, Grid]] = []
    first_index: dict[str, int] = {}
    for index, feature in enumerate(features):
        props = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(props, dict):
            problems.append(Problem(index, None, "feature has no properties object"))
            continue
        gid = props.get("grid_id") if isinstance(props.get("grid_id"), str) else None
        refused = _properties_problem(props)
        if refused is not None:
            problems.append(Problem(index, gid, refused))
        if gid is not None:
            if gid in first_index:
                problems.append(
                    Problem(index, gid, f"duplicate grid_id {gid}: also feature {first_index[gid]}")
                )
                continue
            first_index[gid] = index
        geom = _geometry(feature.get("geometry"), index, gid, problems)
        if refused is not None or geom is None:
            continue
        grids.append((index, Grid(**{p: props[p].strip() for p in PROPERTIES}, geometry=geom)))
    _check_parents(grids, problems)
    _check_overlaps(grids, problems)
    if problems:
        raise JurisdictionInvalid(
            sorted(problems, key=lambda p: p.index if p.index is not None else -1)
        )
    return Jurisdiction([g for _, g in grids], _canonical_version(doc))


__all__ = [
    "Extent",  # re-exported: a jurisdiction publishes its extent
    "Grid",
    "Jurisdiction",
    "JurisdictionInvalid",
    "Problem",
    "Unit",
    "parse_jurisdiction",
]
