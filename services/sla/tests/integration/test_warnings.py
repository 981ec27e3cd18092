"""Yellow and red warnings against the real PostgreSQL: each fires once per assignment
into the outbox, red names the supervisor (the district for a department), a redelivered
assignment does not arm a fired warning again, and a resolution, cancellation or newer
assignment stops the pending ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from gridline.common.clock import ManualClock
from gridline.common.events import (
    Assignment,
    DeadlineBreached,
    DeadlineWarning,
    WorkOrderCancelled,
    WorkOrderEscalated,
)
from gridline.common.pg import Pool
from gridline.sla.adapters.warnings import warning_event_id
from gridline.sla.handlers import Sla, breach_event_id

from .test_sla_batches import AT, assigned, escalated, incoming, outbox, ref, resolved

pytestmark = pytest.mark.integration

SUPERVISORS = {"grid": "c1", "community": "s1", "street": "d1", "department": "d1"}


def warned(seq: int, tier: str, due_in: float, *, supervisor: str | None = None) -> Assignment:
    """An assignment as routing makes it now: yellow at 80 %, red at 100 % of its limit."""
    return Assignment(
        seq=seq,
        tier=tier,
        unit_id=f"{tier}-unit",
        unit_name=f"{tier} office",
        unit_level=tier,
        assigned_at=AT,
        due_at=AT + timedelta(hours=due_in),
        yellow_at=AT + timedelta(hours=0.8 * due_in),
        red_at=AT + timedelta(hours=due_in),
        supervisor_id=supervisor or SUPERVISORS[tier],
    )


async def arm(pool: Pool, sla: Sla, *events: Any) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await sla.on_assignments(conn, incoming(*events))


async def fired_warnings(pool: Pool) -> list[tuple[str, DeadlineWarning]]:
    return [
        (event_id, DeadlineWarning.model_validate(env.data))
        for event_id, _, _, env in await outbox(pool)
        if env.type == DeadlineWarning.TYPE
    ]


async def test_yellow_then_red_fire_once_each_and_red_names_the_supervisor(
    pool: Pool, sla: Sla, clock: ManualClock
) -> None:
    await arm(pool, sla, assigned("o1", assignment=warned(1, "grid", 10)))
    clock.advance(timedelta(hours=7.9))
    assert await sla.fire_due_warnings(pool) == 0
    clock.advance(timedelta(hours=0.2))  # 8.1 h: past yellow (8 h)
    assert await sla.fire_due_warnings(pool) == 1
    assert await sla.fire_due_warnings(pool) == 0
    clock.advance(timedelta(hours=2))  # past red and the due time
    assert await sla.fire_due_warnings(pool) == 1
    assert await sla.fire_due_deadlines(pool) == 1
    assert await sla.fire_due_warnings(pool) == 0

    rows = await outbox(pool)
    assert [(event_id, topic, key) for event_id, topic, key, _ in rows] == [
        (warning_event_id("o1", 1, "yellow"), "gridline.sla", "o1"),
        (warning_event_id("o1", 1, "red"), "gridline.sla", "o1"),
        (breach_event_id("o1", 1), "gridline.sla", "o1"),
    ]
    yellow, red = (w for _, w in await fired_warnings(pool))
    expected = DeadlineWarning(
        **ref("o1", 1),
        grid_id="g1",
        community_id="c1",
        level="yellow",
        assignment_seq=1,
        tier="grid",
        unit_id="grid-unit",
        unit_name="grid office",
        supervisor_id=None,
        due_at=AT + timedelta(hours=10),
        warned_at=AT + timedelta(hours=8),
    )
    assert yellow == expected
    assert red == expected.model_copy(
        update={"level": "red", "supervisor_id": "c1", "warned_at": AT + timedelta(hours=10)}
    )
    assert rows[0][3].time == AT + timedelta(hours=8.1)  # the envelope: when it fired


async def test_at_the_department_the_red_warning_goes_to_the_district(
    pool: Pool, sla: Sla, clock: ManualClock
) -> None:
    to_department = WorkOrderEscalated(
        **ref("o1", 4),
        reason="timeout",
        from_tier="street",
        from_unit_id="street-unit",
        assignment=warned(4, "department", 5),
    )
    await arm(pool, sla, to_department)
    clock.advance(timedelta(hours=5))
    assert await sla.fire_due_warnings(pool) == 2
    assert await sla.fire_due_deadlines(pool) == 1  # a breach routing does not escalate
    by_level = {w.level: w for _, w in await fired_warnings(pool)}
    assert by_level["red"].supervisor_id == "d1"
    assert by_level["red"].tier == "department"
    assert by_level["red"].version == 4
    assert by_level["yellow"].supervisor_id is None
    breaches = [env for _, _, _, env in await outbox(pool) if env.type == DeadlineBreached.TYPE]
    assert [DeadlineBreached.model_validate(b.data).tier for b in breaches] == ["department"]


async def test_a_redelivered_assignment_does_not_arm_a_fired_warning_again(
    pool: Pool, sla: Sla, clock: ManualClock
) -> None:
    event = assigned("o1", assignment=warned(1, "grid", 10))
    await arm(pool, sla, event)
    clock.advance(timedelta(hours=9))
    assert await sla.fire_due_warnings(pool) == 1  # yellow
    await arm(pool, sla, event)  # the same assignment again, under a new event id
    assert await sla.fire_due_warnings(pool) == 0
    clock.advance(timedelta(hours=1))
    assert await sla.fire_due_warnings(pool) == 1  # red, still pending, fires
    await arm(pool, sla, event)
    clock.advance(timedelta(hours=1))
    assert await sla.fire_due_warnings(pool) == 0
    assert [w.level for _, w in await fired_warnings(pool)] == ["yellow", "red"]


async def test_resolution_cancellation_and_a_newer_assignment_stop_pending_warnings(
    pool: Pool, sla: Sla, clock: ManualClock
) -> None:
    await arm(
        pool,
        sla,
        *(assigned(o, assignment=warned(1, "grid", 10)) for o in ("o1", "o2", "o3", "o4")),
    )
    async with pool.acquire() as conn, conn.transaction():
        await sla.on_resolutions(conn, incoming(resolved("o1", 2, "grid", 1)))
        await sla.on_lifecycle(
            conn,
            incoming(
                WorkOrderCancelled(
                    **ref("o2", 2),
                    reason="duplicate",
                    by_unit_id="grid-unit",
                    unit_id="grid-unit",
                    unit_name="grid",
                    cancelled_at=AT,
                )
            ),
        )
    # o3 escalates by an event of before the warnings (no yellow_at, red_at): no warning
    # at all; o4 escalates with warnings, then its first assignment arrives late.
    await arm(pool, sla, escalated("o3", 2, 2, "whistle", 20))
    await arm(
        pool,
        sla,
        escalated("o4", 2, 2, "whistle", 20).model_copy(
            update={"assignment": warned(2, "community", 20)}
        ),
    )
    await arm(pool, sla, assigned("o4", assignment=warned(1, "grid", 10)))
    clock.advance(timedelta(hours=12))
    assert await sla.fire_due_warnings(pool) == 0
    clock.advance(timedelta(hours=4))  # 16 h: o4's community yellow
    assert await sla.fire_due_warnings(pool) == 1
    ((event_id, warning),) = await fired_warnings(pool)
    assert event_id == warning_event_id("o4", 2, "yellow")
    assert (warning.work_order_id, warning.tier, warning.version) == ("o4", "community", 2)
    assert await pool.fetchval("SELECT count(*) FROM warnings") == 2  # o4's two
