"""A request's view from work-order events: one change per order, the newest wins."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gridline.intake.domain.status import RequestStatus, StatusChange, newest

pytestmark = pytest.mark.unit

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def change(order: str, version: int) -> StatusChange:
    view = RequestStatus("open", "unit", None, f"v{version}")
    return StatusChange(order, version, view, AT, "exposed-garbage")


def test_newest_keeps_the_highest_version_of_each_order_whatever_the_arrival_order() -> None:
    changes = [change("a", 2), change("b", 1), change("a", 3), change("a", 1), change("b", 2)]
    kept = {c.work_order_id: c.version for c in newest(changes)}
    assert kept == {"a": 3, "b": 2}


def test_newest_of_distinct_orders_keeps_them_all() -> None:
    assert [c.work_order_id for c in newest([change("a", 1), change("b", 5)])] == ["a", "b"]
