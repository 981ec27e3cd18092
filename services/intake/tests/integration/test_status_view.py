"""Work-order events keep each request's Open311 view, on the real PostgreSQL: one batch
of mixed events applies the newest version of each order and ignores an older one."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gridline.common.clock import ManualClock
from gridline.common.consumer import Incoming
from gridline.common.events import (
    Assignment,
    EventData,
    WorkOrderAssigned,
    WorkOrderEscalated,
    WorkOrderResolved,
    envelope_for,
)
from gridline.common.pg import Pool
from gridline.intake.adapters.group_commit import GroupCommit
from gridline.intake.domain.submission import Accepted, Submission
from gridline.intake.handlers import Intake

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DUE = AT + timedelta(hours=4)
REF: dict[str, Any] = {
    "category": "illegal-parking",  # triage may correct the reported category
    "category_name_en": "Illegal parking",
    "category_name_zh": "违章停车",
    "street_id": "s1",
    "district_id": "d1",
    "policy_version": "p1",
}


def assignment(seq: int, tier: str, unit: str) -> Assignment:
    return Assignment(
        seq=seq,
        tier=tier,
        unit_id=unit,
        unit_name=unit,
        unit_level=tier,
        assigned_at=AT,
        due_at=DUE,
    )


def assigned(order: str) -> WorkOrderAssigned:
    return WorkOrderAssigned(
        work_order_id=order,
        report_id=order,
        version=1,
        **REF,
        source="citizen",
        grid_id="g1",
        community_id="c1",
        lat=31.78,
        lon=119.95,
        opened_at=AT,
        assignment=assignment(1, "grid", "Grid 7"),
    )


def escalated(order: str) -> WorkOrderEscalated:
    return WorkOrderEscalated(
        work_order_id=order,
        report_id=order,
        version=2,
        **REF,
        reason="whistle",
        from_tier="grid",
        from_unit_id="g1",
        assignment=assignment(2, "community", "Qinglong Community"),
    )


def resolved(order: str) -> WorkOrderResolved:
    return WorkOrderResolved(
        work_order_id=order,
        report_id=order,
        version=3,
        **REF,
        tier="grid",
        unit_id="g1",
        unit_name="Grid 7",
        resolved_by_unit_id="g1",
        opened_at=AT,
        resolved_at=AT,
        due_at=DUE,
        note="cleared",
    )


def incoming(event: EventData, minutes: int) -> Incoming[Any]:
    return Incoming(
        event, envelope_for(event, source="/test", time=AT + timedelta(minutes=minutes))
    )


async def reports(pool: Pool, intake: Intake, n: int) -> list[str]:
    commit: GroupCommit[Accepted] = GroupCommit(pool, intake.store_accepted, wait=0, max_rows=64)
    writer = asyncio.create_task(commit.run())
    submission = Submission("exposed-garbage", 31.78, 119.95, "", None, None, *[None] * 6)
    try:
        accepted = [await intake.submit(commit, submission, "citizen") for _ in range(n)]
    finally:
        writer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writer
    return [a.request_id for a in accepted]


async def view(pool: Pool, order: str) -> dict[str, Any]:
    row = await pool.fetchrow(
        "SELECT status, agency_responsible, status_notes, event_version, service_code,"
        " updated_datetime, expected_datetime FROM requests WHERE work_order_id=$1",
        order,
    )
    assert row is not None
    return dict(row)


async def test_a_batch_applies_the_newest_version_and_an_older_one_changes_nothing(
    pool: Pool,
) -> None:
    intake = Intake(ManualClock(AT), "/gridline/intake")
    a, b, c = await reports(pool, intake, 3)

    async with pool.acquire() as conn, conn.transaction():
        await intake.on_work_order(
            conn, [incoming(resolved(a), 30), incoming(assigned(b), 1), incoming(assigned(c), 1)]
        )
    # A late, older event of `a` arrives with newer ones of `b` (mixed types, one call).
    async with pool.acquire() as conn, conn.transaction():
        await intake.on_work_order(conn, [incoming(escalated(a), 20), incoming(escalated(b), 10)])

    closed = await view(pool, a)
    assert closed["status"] == "closed"
    assert closed["event_version"] == 3
    assert closed["status_notes"] == "Resolved at tier grid (网格) by Grid 7. Note: cleared"
    assert closed["updated_datetime"] == AT + timedelta(minutes=30)
    assert closed["service_code"] == "illegal-parking"

    moved = await view(pool, b)
    assert (moved["status"], moved["event_version"]) == ("open", 2)
    assert moved["agency_responsible"] == "Qinglong Community"
    assert moved["status_notes"].startswith(
        "Escalated from tier grid (网格) to tier community (社区), Qinglong Community"
    )
    assert moved["expected_datetime"] == DUE

    first = await view(pool, c)
    assert (first["status"], first["event_version"], first["agency_responsible"]) == (
        "open",
        1,
        "Grid 7",
    )
    assert first["status_notes"] == (
        "Assigned at tier grid (网格) to Grid 7; due 2026-11-02T21:00+08:00."
    )


async def test_events_of_an_order_not_reported_here_change_nothing(pool: Pool) -> None:
    intake = Intake(ManualClock(AT), "/gridline/intake")
    (mine,) = await reports(pool, intake, 1)
    async with pool.acquire() as conn, conn.transaction():
        await intake.on_work_order(
            conn, [incoming(assigned("elsewhere"), 1), incoming(assigned(mine), 1)]
        )
    assert (await view(pool, mine))["event_version"] == 1
    assert await pool.fetchval("SELECT count(*) FROM requests") == 1


async def test_a_batch_of_first_assignments_updates_the_requests_in_place(pool: Pool) -> None:
    """The view's updates are heap-only (HOT): a new row version on the row's own page and
    no index entries. A poll's first assignments update every request stored beside each
    other in one statement, so each page must keep room for a new version of every row on
    it (migrations/0015: with 30 % free, about half of them went to other pages and wrote
    an entry in each of the table's indexes)."""
    intake = Intake(ManualClock(AT), "/gridline/intake")
    orders = await reports(pool, intake, 120)
    # The reported category kept (a corrected one changes an indexed column: never HOT).
    kept = [assigned(o).model_copy(update={"category": "exposed-garbage"}) for o in orders]
    async with pool.acquire() as conn, conn.transaction():
        await intake.on_work_order(conn, [incoming(event, 1) for event in kept])
        updated, hot = await conn.fetchrow(
            "SELECT pg_stat_get_xact_tuples_updated('requests'::regclass),"
            " pg_stat_get_xact_tuples_hot_updated('requests'::regclass)"
        )
    assert updated == len(orders)
    assert hot >= 0.9 * updated, f"{hot} of {updated} updates were heap-only"
