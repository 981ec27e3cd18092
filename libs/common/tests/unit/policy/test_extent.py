"""The city extent answers as shapely's own `intersects` does, edges and vertices included."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from shapely.geometry import Point, shape

from gridline.common.policy.extent import Extent

pytestmark = pytest.mark.unit


def _hull(district: str, ring: list[tuple[float, float]]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"district_id": district},
        "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
    }


# Three districts: two overlap, one stands apart, one edge is slanted.
DOC = {
    "type": "FeatureCollection",
    "features": [
        _hull("a", [(119.90, 31.70), (120.00, 31.70), (120.00, 31.80), (119.90, 31.80)]),
        _hull("b", [(119.95, 31.75), (120.10, 31.72), (120.05, 31.90)]),
        _hull("c", [(120.30, 31.60), (120.40, 31.60), (120.35, 31.65)]),
    ],
}


def _probe_points() -> list[tuple[float, float]]:
    rng = random.Random(7)
    points: list[tuple[float, float]] = []
    for feature in DOC["features"]:
        ring = feature["geometry"]["coordinates"][0]
        for (x1, y1), (x2, y2) in itertools.pairwise(ring):
            points.append((x1, y1))  # a vertex
            for t in (0.5, 1 / 3):  # on an edge (as far as floats allow)
                points.append((x1 + t * (x2 - x1), y1 + t * (y2 - y1)))
            points += [(x1 + 1e-12, y1), (x1 - 1e-12, y1), (x1, y1 - 1e-12)]
    points += [(rng.uniform(119.8, 120.5), rng.uniform(31.5, 32.0)) for _ in range(20_000)]
    return points


def _reference(lon: float, lat: float) -> str | None:
    """The first district whose hull intersects the point, by shapely's plain predicate."""
    for f in DOC["features"]:
        if shape(f["geometry"]).intersects(Point(lon, lat)):
            return str(f["properties"]["district_id"])
    return None


def test_every_answer_is_shapelys_own() -> None:
    prepared = Extent.from_geojson(DOC)
    points = _probe_points()
    answers = [prepared.district_of(lon, lat) for lon, lat in points]
    assert answers == [_reference(lon, lat) for lon, lat in points]
    assert [prepared.contains(lon, lat) for lon, lat in points] == [a is not None for a in answers]
    answers = [a is not None for a in answers]
    # Both outcomes occur, on every district: the comparison means something.
    assert 1000 < sum(answers) < len(answers) - 1000
    assert prepared.contains(120.35, 31.62) and prepared.contains(120.0, 31.75)


def test_a_point_on_an_edge_or_vertex_is_inside_and_just_beyond_is_not() -> None:
    prepared = Extent.from_geojson(DOC)
    assert prepared.contains(119.90, 31.75)  # on a's west edge
    assert prepared.contains(120.30, 31.60)  # c's vertex
    assert not prepared.contains(119.90 - 1e-9, 31.75)
    assert not prepared.contains(120.20, 31.62)  # between b and c
