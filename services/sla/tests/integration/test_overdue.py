"""The overdue gauge against the real PostgreSQL: open work orders past their due time, by
the tier holding them, as sla's /metrics serves them (gridline_workorders_overdue)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from gridline.common.pg import Pool, migrate, open_pool
from gridline.common.settings import PostgresSettings
from gridline.sla import metrics
from gridline.sla.adapters import store

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def pool(pg_settings: PostgresSettings, scratch_schema: str) -> AsyncIterator[Pool]:
    async with open_pool(pg_settings, scratch_schema) as pool:
        await migrate(pool, scratch_schema, [resources.files("gridline.sla") / "migrations"])
        yield pool


def deadline(order: str, tier: str, due_in_hours: float, seq: int = 1) -> store.Deadline:
    return store.Deadline(order, seq, tier, f"{tier}-unit", AT + timedelta(hours=due_in_hours))


async def test_orders_past_their_due_time_are_counted_by_tier_until_resolved(
    pool: Pool,
) -> None:
    async with pool.acquire() as conn:
        await store.set_deadlines(
            conn,
            [
                deadline("o1", "grid", -1),  # overdue, not yet fired
                deadline("o2", "grid", -2),  # overdue and fired: waits for its escalation
                deadline("o3", "grid", 3),  # not due yet
                deadline("o4", "department", -5),  # nothing escalates it
                deadline("o5", "department", 0),  # due this very moment: overdue
            ],
        )
        # The scheduler fires the two oldest: o4 and o2 (fired, both still overdue).
        fired = await store.claim_due(conn, AT, 2)
        assert {r["work_order_id"] for r in fired} == {"o4", "o2"}
        assert await store.overdue(conn, AT) == {"grid": 2, "department": 2}
        # The escalation of o2 gives it a new, later due time at the community: no longer
        # overdue; the resolution of o4 removes it.
        await store.set_deadlines(conn, [deadline("o2", "community", 4, seq=2)])
        await store.clear_deadlines(conn, ["o4"])
        assert await store.overdue(conn, AT) == {"grid": 1, "department": 1}
        assert await store.overdue(conn, AT + timedelta(hours=3.5)) == {
            "grid": 2,
            "department": 1,
        }
        overdue = await store.overdue(conn, AT)

    collector = metrics.SlaCollector([3600.0])
    collector.snapshot = metrics.Snapshot(overdue=overdue)
    registry = CollectorRegistry()
    metrics.register(registry, collector)
    text = generate_latest(registry).decode()
    assert "# TYPE gridline_workorders_overdue gauge" in text
    for tier, value in [("grid", 1), ("community", 0), ("street", 0), ("department", 1)]:
        assert f'gridline_workorders_overdue{{tier="{tier}"}} {value:.1f}' in text
