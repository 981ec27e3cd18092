"""sla's use cases against the real PostgreSQL: a batch of work-order events moves deadlines,
counters and histogram buckets as the events would one by one, and passed deadlines become
one breach each in the outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest

from gridline.common.clock import ManualClock
from gridline.common.consumer import Incoming
from gridline.common.events import (
    Assignment,
    DeadlineBreached,
    Envelope,
    EventData,
    WorkOrderAssigned,
    WorkOrderEscalated,
    WorkOrderReopened,
    WorkOrderResolved,
    envelope_for,
)
from gridline.common.pg import Pool, migrate, open_pool
from gridline.common.settings import PostgresSettings
from gridline.sla.adapters import store
from gridline.sla.handlers import Sla, breach_event_id

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
HOUR = 3600.0
BUCKETS = [1 * HOUR, 2 * HOUR, 4 * HOUR]  # small on purpose: each bound is checked below
HIST = "gridline_workorder_resolution_seconds"


def ref(order: str, version: int, street: str | None = "s1", category: str = "garbage") -> Any:
    return {
        "work_order_id": order,
        "report_id": f"r-{order}",
        "version": version,
        "category": category,
        "category_name_en": category,
        "category_name_zh": category,
        "street_id": street,
        "district_id": "d1" if street else None,
        "policy_version": "p",
    }


def assignment(seq: int, tier: str, due_in_hours: float) -> Assignment:
    return Assignment(
        seq=seq,
        tier=tier,
        unit_id=f"{tier}-unit",
        unit_name=tier,
        unit_level=tier,
        assigned_at=AT,
        due_at=AT + timedelta(hours=due_in_hours),
    )


def assigned(order: str, **kw: Any) -> WorkOrderAssigned:
    version = kw.pop("version", 1)
    street = kw.pop("street", "s1")
    category = kw.pop("category", "garbage")
    fields: dict[str, Any] = {
        "source": "citizen",
        "grid_id": "g1",
        "community_id": "c1",
        "lat": 31.7,
        "lon": 119.9,
        "opened_at": AT,
        "assignment": assignment(1, "grid", 4),
    }
    fields.update(kw)
    return WorkOrderAssigned(**ref(order, version, street, category), **fields)


def escalated(order: str, version: int, seq: int, reason: str, due_in: float) -> WorkOrderEscalated:
    tiers = ["grid", "community", "street", "department"]
    return WorkOrderEscalated(
        **ref(order, version),
        reason=reason,
        from_tier=tiers[seq - 2],
        from_unit_id=f"{tiers[seq - 2]}-unit",
        assignment=assignment(seq, tiers[seq - 1], due_in),
    )


def resolved(order: str, version: int, tier: str, after_hours: float) -> WorkOrderResolved:
    return WorkOrderResolved(
        **ref(order, version),
        tier=tier,
        unit_id=f"{tier}-unit",
        unit_name=tier,
        resolved_by_unit_id=f"{tier}-unit",
        opened_at=AT,
        resolved_at=AT + timedelta(hours=after_hours),
        due_at=AT,
    )


def incoming(*events: EventData) -> list[Incoming[Any]]:
    return [Incoming(e, envelope_for(e, source="/test", time=AT)) for e in events]


@pytest.fixture
async def pool(pg_settings: PostgresSettings, scratch_schema: str) -> AsyncIterator[Pool]:
    async with open_pool(pg_settings, scratch_schema) as pool:
        await migrate(pool, scratch_schema, [resources.files("gridline.sla") / "migrations"])
        yield pool


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(AT)


@pytest.fixture
def sla(clock: ManualClock) -> Sla:
    return Sla(clock, "/gridline/sla", BUCKETS)


async def counters(pool: Pool) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with pool.acquire() as conn:
        return {
            (metric, tuple(sorted(labels.items()))): value
            for metric, labels, value in await store.counters(conn)
        }


def key(metric: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (metric, tuple(sorted(labels.items())))


async def deadlines(pool: Pool) -> dict[str, tuple[int, str, datetime, datetime | None]]:
    rows = await pool.fetch("SELECT * FROM deadlines")
    return {
        r["work_order_id"]: (r["assignment_seq"], r["tier"], r["due_at"], r["fired_at"])
        for r in rows
    }


async def test_a_batch_moves_deadlines_counters_and_buckets_as_each_event_would(
    pool: Pool, sla: Sla
) -> None:
    # The layers the consumer would hand over: each call has each order at most once.
    first = incoming(
        assigned("o1"),
        assigned("o2", category="pothole"),
        assigned("o3", source="hotline"),
        assigned("o4", street=None, assignment=None),  # held for triage: no deadline yet
        assigned("o5"),
    )
    second = incoming(
        escalated("o2", 2, 2, "whistle", 8),
        escalated("o3", 2, 2, "timeout", 8),
        assigned("o4", version=2, street=None, assignment=assignment(1, "grid", 4)),
        escalated("o5", 2, 2, "whistle", 8),
    )
    third = incoming(
        resolved("o1", 2, "grid", 0.5),  # fits every bucket
        resolved("o2", 3, "community", 1.5),  # fits 2 h and 4 h
        escalated("o3", 3, 3, "timeout", 16),
    )
    fourth = incoming(resolved("o3", 4, "street", 30))  # only +Inf
    async with pool.acquire() as conn, conn.transaction():
        await sla.on_assignments(conn, first)
        await sla.on_assignments(conn, second)
        await sla.on_resolutions(conn, [e for e in third if isinstance(e.data, WorkOrderResolved)])
        await sla.on_assignments(conn, [e for e in third if isinstance(e.data, WorkOrderEscalated)])
        await sla.on_resolutions(conn, fourth)

    assert await deadlines(pool) == {
        "o4": (1, "grid", AT + timedelta(hours=4), None),
        "o5": (2, "community", AT + timedelta(hours=8), None),
    }
    assert await counters(pool) == {
        key(
            "gridline_workorders_opened_total", street_id="s1", category="garbage", source="citizen"
        ): 2,
        key(
            "gridline_workorders_opened_total", street_id="s1", category="garbage", source="hotline"
        ): 1,
        key(
            "gridline_workorders_opened_total", street_id="s1", category="pothole", source="citizen"
        ): 1,
        key(
            "gridline_workorders_opened_total",
            street_id="none",
            category="garbage",
            source="citizen",
        ): 1,
        key(
            "gridline_escalations_total", from_tier="grid", to_tier="community", reason="whistle"
        ): 2,
        key(
            "gridline_escalations_total", from_tier="grid", to_tier="community", reason="timeout"
        ): 1,
        key(
            "gridline_escalations_total", from_tier="community", to_tier="street", reason="timeout"
        ): 1,
        key(
            "gridline_workorders_resolved_total", street_id="s1", tier="grid", category="garbage"
        ): 1,
        key(
            "gridline_workorders_resolved_total",
            street_id="s1",
            tier="community",
            category="garbage",
        ): 1,
        key(
            "gridline_workorders_resolved_total", street_id="s1", tier="street", category="garbage"
        ): 1,
        key(f"{HIST}_bucket", tier="grid", le="3600.0"): 1,
        key(f"{HIST}_bucket", tier="grid", le="7200.0"): 1,
        key(f"{HIST}_bucket", tier="grid", le="14400.0"): 1,
        key(f"{HIST}_bucket", tier="grid", le="+Inf"): 1,
        key(f"{HIST}_bucket", tier="community", le="7200.0"): 1,
        key(f"{HIST}_bucket", tier="community", le="14400.0"): 1,
        key(f"{HIST}_bucket", tier="community", le="+Inf"): 1,
        key(f"{HIST}_bucket", tier="street", le="+Inf"): 1,
        key(f"{HIST}_sum", tier="grid"): 0.5 * HOUR,
        key(f"{HIST}_sum", tier="community"): 1.5 * HOUR,
        key(f"{HIST}_sum", tier="street"): 30 * HOUR,
        key(f"{HIST}_count", tier="grid"): 1,
        key(f"{HIST}_count", tier="community"): 1,
        key(f"{HIST}_count", tier="street"): 1,
    }


async def test_many_resolutions_of_one_tier_add_up_in_one_batch(pool: Pool, sla: Sla) -> None:
    hours = [0.25, 0.5, 1.0, 1.5, 3.0, 5.0, 100.0]
    async with pool.acquire() as conn, conn.transaction():
        await sla.on_resolutions(
            conn, incoming(*(resolved(f"o{i}", 2, "grid", h) for i, h in enumerate(hours)))
        )
    got = await counters(pool)
    for bound, le in [(1, "3600.0"), (2, "7200.0"), (4, "14400.0")]:
        assert got[key(f"{HIST}_bucket", tier="grid", le=le)] == sum(h <= bound for h in hours)
    assert got[key(f"{HIST}_bucket", tier="grid", le="+Inf")] == len(hours)
    assert got[key(f"{HIST}_count", tier="grid")] == len(hours)
    assert got[key(f"{HIST}_sum", tier="grid")] == pytest.approx(sum(hours) * HOUR)
    label = {"street_id": "s1", "tier": "grid", "category": "garbage"}
    assert got[key("gridline_workorders_resolved_total", **label)] == len(hours)


async def test_a_resolution_redelivered_under_another_event_id_counts_once(
    pool: Pool, sla: Sla
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await sla.on_resolutions(conn, incoming(resolved("o1", 2, "grid", 0.5)))
    async with pool.acquire() as conn, conn.transaction():
        # incoming() gives the copy a new event id: the inbox cannot tell it is the same.
        await sla.on_resolutions(
            conn, incoming(resolved("o1", 2, "grid", 0.5), resolved("o2", 2, "grid", 0.5))
        )
    got = await counters(pool)
    label = {"street_id": "s1", "tier": "grid", "category": "garbage"}
    assert got[key("gridline_workorders_resolved_total", **label)] == 2  # o1 and o2
    assert got[key(f"{HIST}_count", tier="grid")] == 2
    assert got[key(f"{HIST}_sum", tier="grid")] == HOUR
    assert await pool.fetchval("SELECT count(*) FROM resolutions") == 2


async def test_an_older_assignment_does_not_replace_a_newer_deadline(pool: Pool, sla: Sla) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await sla.on_assignments(conn, incoming(escalated("o1", 2, 2, "whistle", 8)))
        await sla.on_assignments(conn, incoming(assigned("o1", version=3)))  # seq 1, late
    assert await deadlines(pool) == {"o1": (2, "community", AT + timedelta(hours=8), None)}


def reopened(order: str, version: int, due_in: float) -> WorkOrderReopened:
    return WorkOrderReopened(
        **ref(order, version),
        feedback_id="fb1",
        resolved_tier="grid",
        resolved_at=AT + timedelta(hours=1),
        source="citizen",
        opened_at=AT,
        assignment=assignment(2, "grid", due_in),
    )


async def test_a_reopened_order_gets_a_new_deadline_and_its_new_resolution_counts_again(
    pool: Pool, sla: Sla
) -> None:
    """Reopening restarts the clock of the new assignment and counts as rework; the order's
    second resolution counts once more and replaces the first for attainment."""
    steps = [
        (sla.on_assignments, assigned("o1")),
        (sla.on_resolutions, resolved("o1", 2, "grid", 1)),
        (sla.on_assignments, reopened("o1", 3, 10)),
    ]
    for handler, event in steps:
        async with pool.acquire() as conn, conn.transaction():
            await handler(conn, incoming(event))
    assert await deadlines(pool) == {"o1": (2, "grid", AT + timedelta(hours=10), None)}

    async with pool.acquire() as conn, conn.transaction():
        await sla.on_resolutions(conn, incoming(resolved("o1", 4, "community", 3)))
    async with pool.acquire() as conn, conn.transaction():
        # The first resolution again, under another event id, and the second again.
        await sla.on_resolutions(conn, incoming(resolved("o1", 2, "grid", 1)))
        await sla.on_resolutions(conn, incoming(resolved("o1", 4, "community", 3)))

    assert await deadlines(pool) == {}
    got = await counters(pool)
    labels = {"street_id": "s1", "category": "garbage"}
    assert got[key("gridline_workorders_reopened_total", tier="grid", **labels)] == 1
    assert got[key("gridline_workorders_resolved_total", tier="grid", **labels)] == 1
    assert got[key("gridline_workorders_resolved_total", tier="community", **labels)] == 1
    assert got[key(f"{HIST}_count", tier="community")] == 1
    row = await pool.fetchrow("SELECT tier, version, resolution_seconds FROM resolutions")
    assert dict(row) == {"tier": "community", "version": 4, "resolution_seconds": 3 * HOUR}


async def outbox(pool: Pool) -> list[tuple[str, str, str, Envelope]]:
    rows = await pool.fetch("SELECT event_id, topic, key, payload FROM outbox ORDER BY id")
    return [
        (r["event_id"], r["topic"], r["key"], Envelope.model_validate_json(bytes(r["payload"])))
        for r in rows
    ]


async def test_each_passed_deadline_fires_one_breach_into_the_outbox_once(
    pool: Pool, sla: Sla, clock: ManualClock
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await sla.on_assignments(
            conn,
            incoming(
                assigned("o1", assignment=assignment(1, "grid", 1)),
                assigned("o2", assignment=assignment(1, "grid", 2)),
                assigned("o3", assignment=assignment(1, "grid", 9)),
            ),
        )
    clock.advance(timedelta(hours=3))
    assert await sla.fire_due_deadlines(pool) == 2
    assert await sla.fire_due_deadlines(pool) == 0  # fired ones stay fired

    rows = await outbox(pool)
    assert [(event_id, topic, k) for event_id, topic, k, _ in rows] == [
        (breach_event_id("o1", 1), "gridline.sla", "o1"),
        (breach_event_id("o2", 1), "gridline.sla", "o2"),
    ]
    first = rows[0][3]
    assert first.type == DeadlineBreached.TYPE
    assert DeadlineBreached.model_validate(first.data) == DeadlineBreached(
        work_order_id="o1",
        assignment_seq=1,
        tier="grid",
        unit_id="grid-unit",
        due_at=AT + timedelta(hours=1),
        breached_at=AT + timedelta(hours=3),
    )

    # The escalation arms a new deadline for o1; when it passes, a second, distinct breach.
    async with pool.acquire() as conn, conn.transaction():
        await sla.on_assignments(conn, incoming(escalated("o1", 2, 2, "timeout", 4)))
    clock.advance(timedelta(hours=2))
    assert await sla.fire_due_deadlines(pool) == 1
    clock.advance(timedelta(hours=10))
    assert await sla.fire_due_deadlines(pool) == 1  # o3 at last
    assert await sla.fire_due_deadlines(pool) == 0
    ids = [event_id for event_id, *_ in await outbox(pool)]
    assert ids[2:] == [breach_event_id("o1", 2), breach_event_id("o3", 1)]
    assert len(set(ids)) == 4
