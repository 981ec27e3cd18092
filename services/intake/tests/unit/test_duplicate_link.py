"""Duplicates within one batch: `link` compares a report only with the earlier reports in
the buckets around it, and must decide exactly as comparing it with every earlier report
of its category would."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from gridline.intake.domain.duplicates import (
    METRES_PER_DEGREE,
    NewReport,
    Stored,
    distance_m,
    link,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def every_pair(
    batch: Sequence[NewReport], stored: Sequence[Stored], radius_m: float, window: timedelta
) -> list[str | None]:
    """The rule as written: the stored open order, else the first earlier report of the
    batch of the same category within the radius and the window."""
    joins: list[str | None] = []
    for i, report in enumerate(batch):
        joined = stored[i].open_order
        if joined is None:
            for j in range(i):
                other = batch[j]
                if (
                    other.service_code == report.service_code
                    and abs(report.at - other.at) <= window
                    and distance_m(report.lat, report.lon, other.lat, other.lon) <= radius_m
                ):
                    joined = joins[j] or other.order_id
                    break
        joins.append(joined)
    return joins


def batch_around(
    rng: random.Random, lat: float, lon: float, radius_m: float, n: int
) -> list[NewReport]:
    """Reports in clusters of a few radii, so that many pairs are near the radius."""
    spread = 3 * radius_m / 111_000
    centres = [(lat + rng.uniform(-spread, spread), lon) for _ in range(max(1, n // 8))]
    out = []
    for i in range(n):
        c_lat, c_lon = rng.choice(centres)
        p_lat = max(-90.0, min(90.0, c_lat + rng.gauss(0, spread / 3)))
        p_lon = c_lon + rng.gauss(0, spread / 3) * rng.choice([1, 5, 50])
        p_lon = (p_lon + 180.0) % 360.0 - 180.0
        out.append(
            NewReport(
                f"order-{i}",
                rng.choice(["garbage", "garbage", "lighting"]),
                p_lat,
                p_lon,
                T0 + timedelta(minutes=rng.uniform(0, 90)),
            )
        )
    return out


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        (31.78, 119.95),  # a city
        (-33.9, 151.2),
        (0.0, 179.9999),  # on the antimeridian: neighbours wrap
        (64.7, -180.0),
        (89.9999, 10.0),  # at the pole every longitude is near
        (-89.99, 0.0),
    ],
)
def test_link_decides_as_comparing_every_earlier_report(lat: float, lon: float) -> None:
    rng = random.Random(f"{lat},{lon}")
    window = timedelta(hours=1)
    joined = 0
    for radius in (0.05, 3.0, 50.0, 1_000.0, 20_000.0):
        for n in (1, 2, 17, 120):
            batch = batch_around(rng, lat, lon, radius, n)
            stored = [Stored(rng.choice([None] * 5 + ["stored-order"]), False) for _ in batch]
            expected = every_pair(batch, stored, radius, window)
            assert link(batch, stored, radius_m=radius, window=window) == expected
            joined += sum(1 for j in expected if j is not None and j != "stored-order")
    assert joined > 50  # the batches do hold duplicates within each other's radius


def test_a_report_just_inside_the_radius_joins_and_one_just_beyond_does_not() -> None:
    first = NewReport("o1", "garbage", 31.78, 119.95, T0)
    at = NewReport("o2", "garbage", 31.78 + 49.99 / METRES_PER_DEGREE, 119.95, T0)
    beyond = NewReport("o3", "garbage", 31.78 + 50.01 / METRES_PER_DEGREE, 119.95, T0)
    none = Stored(None, False)
    assert distance_m(first.lat, first.lon, at.lat, at.lon) < 50
    assert distance_m(first.lat, first.lon, beyond.lat, beyond.lon) > 50
    assert link([first, at], [none, none], radius_m=50, window=timedelta(hours=1)) == [None, "o1"]
    assert link([first, beyond], [none, none], radius_m=50, window=timedelta(hours=1)) == [
        None,
        None,
    ]
