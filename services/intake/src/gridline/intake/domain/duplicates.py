"""Duplicates (并单): which work order a new report joins, decided for a whole batch.

A report joins the earliest open report of the same category within the catalogue's
`duplicate_radius_m` that was received within `duplicate_window_hours` before it: it takes
that report's work order instead of opening its own. The store finds those among stored
reports (one look-up for the batch); reports in the same batch are matched here, in the
order they were accepted, so the second of two duplicates in one batch joins the first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

EARTH_RADIUS_M = 6_371_008.8
METRES_PER_DEGREE = math.pi * EARTH_RADIUS_M / 180


@dataclass(frozen=True)
class NewReport:
    order_id: str  # the order it opens unless it joins one
    service_code: str
    lat: float
    lon: float
    at: datetime


@dataclass(frozen=True)
class Stored:
    """What the store found near a new report."""

    open_order: str | None  # the earliest open order it duplicates, if any
    repeated: bool  # an earlier report on another order within the repeat window


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def box(lat: float, radius_m: float) -> tuple[float, float]:
    """Half the height and width, in degrees, of a box that holds the circle of `radius_m`
    around a point at `lat`: the index narrows to the box, the distance decides."""
    dlat = radius_m / METRES_PER_DEGREE
    dlon = dlat / max(math.cos(math.radians(min(abs(lat), 89.0))), 1e-6)
    return dlat, dlon


# The place look-up reads a grid of cells, 1/200 of a degree on a side (about 555 m north
# to south; 470 m west to east at 32° N), by category and time: the cells that hold a
# report's box, each an index range of the reports received within the window. It reads
# what lies near in time and place, not every report ever made in a band of latitude.
# The same numbering is the index's expression in SQL (adapters/store.py cell_sql,
# migrations 0013 and 0014): IEEE multiplication and floor give both the same cell for a point.
CELLS_PER_DEGREE = 200
CELL_ROW = 100_000  # cell numbers per row of latitude: more than 360 * CELLS_PER_DEGREE


def _number(y: int, x: int) -> int:
    return (y + 90 * CELLS_PER_DEGREE) * CELL_ROW + x + 180 * CELLS_PER_DEGREE


def cell_of(lat: float, lon: float) -> int:
    """The number of the cell that holds a point (what cell_sql computes for it)."""
    return _number(math.floor(lat * CELLS_PER_DEGREE), math.floor(lon * CELLS_PER_DEGREE))


def cells_around(lat: float, lon: float, radius_m: float) -> list[int]:
    """The cells that the box of the circle of `radius_m` around a point overlaps: every
    point within the radius lies in one of them."""
    return cells_in_box(lat, lon, *box(lat, radius_m))


def cells_in_box(lat: float, lon: float, dlat: float, dlon: float) -> list[int]:
    """The cells that the box of half-sides `dlat`, `dlon` (degrees) around a point
    overlaps (`box` gives them for a radius)."""
    rows = range(
        math.floor((lat - dlat) * CELLS_PER_DEGREE), math.floor((lat + dlat) * CELLS_PER_DEGREE) + 1
    )
    columns = range(
        math.floor((lon - dlon) * CELLS_PER_DEGREE), math.floor((lon + dlon) * CELLS_PER_DEGREE) + 1
    )
    return [_number(y, x) for y in rows for x in columns]


def link(
    batch: Sequence[NewReport],
    stored: Sequence[Stored],
    *,
    radius_m: float,
    window: timedelta,
) -> list[str | None]:
    """For each report of the batch, the order it joins (None: it opens its own). A stored
    open order wins; otherwise the first earlier report of the batch that it duplicates.

    Earlier reports are kept in buckets of a grid sized to the radius (`_Buckets`), and a
    report is compared only with those in the nine buckets around its own: a batch costs
    time in proportion to its size, not to its square (a storm's batch of 256 reports of
    one category would otherwise take 32,640 distance computations)."""
    buckets = _Buckets(batch, radius_m)
    joins: list[str | None] = []
    earlier: dict[tuple[str, int, int], list[int]] = {}  # bucket -> earlier reports
    for i, report in enumerate(batch):
        joined = stored[i].open_order
        y, x = buckets.of(report)
        if joined is None:
            near = sorted(
                j for key in buckets.around(report.service_code, y, x) for j in earlier.get(key, ())
            )
            for j in near:
                other = batch[j]
                if (
                    abs(report.at - other.at) <= window
                    and distance_m(report.lat, report.lon, other.lat, other.lon) <= radius_m
                ):
                    joined = joins[j] or other.order_id
                    break
        earlier.setdefault((report.service_code, y, x), []).append(i)
        joins.append(joined)
    return joins


class _Buckets:
    """A grid over the globe whose rows are at least as tall, and whose columns at least
    as wide, as the greatest difference of latitude and of longitude between two reports
    of the batch within `radius_m` of each other: two such reports lie in the same or in
    neighbouring buckets. Columns divide 360° evenly, so neighbours wrap round the
    antimeridian as distances do."""

    def __init__(self, batch: Sequence[NewReport], radius_m: float) -> None:
        angle = max(radius_m, 0.0) / EARTH_RADIUS_M  # the radius as an angle, radians
        # Along a meridian, a distance is its difference of latitude; no pair within the
        # radius differs by more.
        self.height = max(math.degrees(angle) * (1 + 1e-9), 1e-9)
        # The widest difference of longitude within the radius of a point at latitude φ is
        # asin(sin(angle) / cos φ), greatest at the batch's highest latitude.
        furthest = max((abs(r.lat) for r in batch), default=0.0)
        reach = math.sin(angle) / max(math.cos(math.radians(furthest)), 1e-12)
        width = 360.0 if reach >= 1 else math.degrees(math.asin(reach)) * (1 + 1e-9)
        self.columns = max(1, math.floor(360.0 / max(width, 1e-9)))
        self.width = 360.0 / self.columns

    def of(self, report: NewReport) -> tuple[int, int]:
        y = math.floor(report.lat / self.height)
        x = math.floor((report.lon + 180.0) / self.width) % self.columns
        return y, x

    def around(self, service_code: str, y: int, x: int) -> set[tuple[str, int, int]]:
        return {
            (service_code, y + dy, (x + dx) % self.columns)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
        }
