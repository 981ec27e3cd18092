"""The cells of the place look-up: every stored report within the radius of a new one lies
in one of the cells the look-up reads."""

from __future__ import annotations

import math
import random

import pytest

from gridline.intake.domain.duplicates import (
    CELLS_PER_DEGREE,
    METRES_PER_DEGREE,
    cell_of,
    cells_around,
    distance_m,
)

pytestmark = pytest.mark.unit


def test_every_point_within_the_radius_is_in_a_cell_read() -> None:
    rng = random.Random(13)
    for _ in range(20_000):
        lat, lon = rng.uniform(-60, 60), rng.uniform(-179, 179)
        radius = rng.choice([0.05, 50, 250, 1_000, 5_000])
        read = set(cells_around(lat, lon, radius))
        # A point at a random bearing, at most the radius away (a little less: the box is
        # checked against the great circle, the point is placed on the plane).
        bearing, d = rng.uniform(0, 2 * math.pi), rng.uniform(0, radius) * 0.999
        dlat = d * math.cos(bearing) / METRES_PER_DEGREE
        dlon = d * math.sin(bearing) / (METRES_PER_DEGREE * math.cos(math.radians(lat)))
        other = (lat + dlat, lon + dlon)
        if distance_m(lat, lon, *other) <= radius:
            assert cell_of(*other) in read, (lat, lon, radius, other)


def test_points_on_either_side_of_a_cell_edge_fall_in_neighbouring_cells() -> None:
    edge = 6396 / CELLS_PER_DEGREE  # 31.98, a cell's southern edge
    below, above = cell_of(edge - 1e-9, 119.95), cell_of(edge + 1e-9, 119.95)
    assert above - below == 100_000  # one row of cells north
    # A report 1 m south of the edge reads the cells north of it too, at any radius ≥ 1 m.
    assert above in cells_around(edge - 1 / METRES_PER_DEGREE, 119.95, 2)
    assert cells_around(edge + 0.002, 119.952, 0.05) == [cell_of(edge + 0.002, 119.952)]


def test_cells_are_distinct_across_the_globe() -> None:
    corners = [
        (-90, -180),
        (-90, 179.999),
        (89.999, -180),
        (89.999, 179.999),
        (0, 0),
        (-0.001, -0.001),
    ]
    assert len({cell_of(lat, lon) for lat, lon in corners}) == len(corners)
    assert all(cell_of(lat, lon) >= 0 for lat, lon in corners)
