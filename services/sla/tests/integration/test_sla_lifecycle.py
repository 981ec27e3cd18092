"""sla follows the lifecycle against the real PostgreSQL: cancel, close and return stop
an assignment's deadline (a return's new assignment arms one), a department called in
gets a report-in deadline that fires once unless it reports in, and a resolution counts
for the tier of the unit that resolved it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from gridline.common.clock import ManualClock
from gridline.common.events import (
    DepartmentCalledIn,
    DepartmentReportedIn,
    ReportInBreached,
    WorkOrderCancelled,
    WorkOrderClosed,
    WorkOrderReturned,
)
from gridline.common.pg import Pool
from gridline.sla.handlers import Sla

from .test_sla_batches import (
    AT,
    assigned,
    assignment,
    counters,
    deadlines,
    incoming,
    key,
    ref,
    resolved,
)

pytestmark = pytest.mark.integration


def returned(order: str, version: int, seq: int | None) -> WorkOrderReturned:
    return WorkOrderReturned(
        **ref(order, version),
        reason="wrong grid",
        by_unit_id="grid-unit",
        from_tier="grid",
        from_unit_id="grid-unit",
        grid_id="g2",
        community_id="c2",
        assignment=None if seq is None else assignment(seq, "grid", 6),
        triage_unit_id="d1" if seq is None else None,
        returned_at=AT,
    )


def called(order: str, version: int, seq: int, due_in_hours: float) -> DepartmentCalledIn:
    return DepartmentCalledIn(
        **ref(order, version),
        call_seq=seq,
        department_id="dept-water",
        department_name_zh="水务局",
        department_name_en="Water Authority",
        called_by_unit_id="s1",
        called_at=AT,
        report_in_due_at=AT + timedelta(hours=due_in_hours),
    )


async def test_cancel_close_and_return_stop_deadlines_and_a_return_arms_its_new_one(
    pool: Pool, sla: Sla
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await sla.on_assignments(conn, incoming(*(assigned(o) for o in ("o1", "o2", "o3", "o4"))))
        await sla.on_lifecycle(
            conn,
            incoming(
                WorkOrderCancelled(
                    **ref("o1", 2),
                    reason="duplicate",
                    by_unit_id="grid-unit",
                    unit_id="grid-unit",
                    unit_name="grid",
                    cancelled_at=AT,
                ),
                returned("o2", 2, None),
                returned("o3", 2, 2),
            ),
        )
        await sla.on_resolutions(conn, incoming(resolved("o4", 2, "grid", 1)))
        await sla.on_lifecycle(
            conn,
            incoming(
                WorkOrderClosed(
                    **ref("o4", 3),
                    reason="feedback_window",
                    unit_id="grid-unit",
                    unit_name="grid",
                    resolved_at=AT,
                    closed_at=AT,
                )
            ),
        )

    assert await deadlines(pool) == {"o3": (2, "grid", AT + timedelta(hours=6), None)}


async def test_a_missed_report_in_fires_once_and_a_report_in_stops_it(
    pool: Pool, sla: Sla, clock: ManualClock
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await sla.on_lifecycle(conn, incoming(called("o1", 2, 1, 2), called("o2", 2, 1, 2)))
        await sla.on_lifecycle(
            conn,
            incoming(
                DepartmentReportedIn(
                    **ref("o2", 3),
                    call_seq=1,
                    department_id="dept-water",
                    department_name_zh="水务局",
                    department_name_en="Water Authority",
                    reported_in_at=AT,
                    late=False,
                )
            ),
        )
    clock.advance(timedelta(hours=2) - timedelta(seconds=1))
    assert await sla.fire_due_report_ins(pool) == 0
    clock.advance(timedelta(seconds=1))
    assert await sla.fire_due_report_ins(pool) == 1
    assert await sla.fire_due_report_ins(pool) == 0

    rows = await pool.fetch("SELECT key, payload FROM outbox ORDER BY id")
    assert [r["key"] for r in rows] == ["o1"]
    envelope = json.loads(rows[0]["payload"])
    assert envelope["type"] == ReportInBreached.TYPE
    breach = ReportInBreached.model_validate(envelope["data"])
    assert (breach.call_seq, breach.department_id) == (1, "dept-water")
    assert breach.due_at == AT + timedelta(hours=2)


async def test_a_street_resolving_its_grids_order_counts_as_a_street_resolution(
    pool: Pool, sla: Sla
) -> None:
    event = resolved("o1", 2, "grid", 1).model_copy(update={"resolved_by_tier": "street"})
    async with pool.acquire() as conn, conn.transaction():
        await sla.on_resolutions(conn, incoming(event))
    tiers = {
        labels
        for (metric, labels) in await counters(pool)
        if metric == "gridline_workorders_resolved_total"
    }
    assert tiers == {
        key(
            "gridline_workorders_resolved_total", street_id="s1", tier="street", category="garbage"
        )[1]
    }
    assert (
        await pool.fetchval("SELECT tier FROM resolutions WHERE work_order_id = 'o1'") == "street"
    )
