"""The points rules, pure: months in the catalogue's zone, and which tips earn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gridline.intake.domain.points import is_month, month_of

pytestmark = pytest.mark.unit

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_a_month_is_cut_at_midnight_in_the_catalogues_zone_not_utc() -> None:
    midnight = datetime(2026, 10, 31, 16, 0, tzinfo=UTC)  # 1 November 00:00 in Shanghai
    assert month_of(midnight, SHANGHAI) == "2026-11"
    assert month_of(midnight - timedelta(seconds=1), SHANGHAI) == "2026-10"
    assert month_of(midnight, ZoneInfo("UTC")) == "2026-10"
    new_year = datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
    assert month_of(new_year, SHANGHAI) == "2027-01"


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("2026-11", True),
        ("2026-01", True),
        ("2026-13", False),
        ("2026-00", False),
        ("2026-1", False),
        ("26-11", False),
        ("2026-11-01", False),
        ("2026-11\n", False),
    ],
)
def test_a_month_is_yyyy_mm(text: str, valid: bool) -> None:
    assert is_month(text) is valid
