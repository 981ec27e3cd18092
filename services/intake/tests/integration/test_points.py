"""Partners' tips on the real PostgreSQL: every work-order event tells each tip's partner
(TipStatusChanged in the outbox), and a resolution credits the rider of the tip that
opened the order its category's points exactly once, however the events are redelivered.

Tips are stored through intake's normal store path and then marked as a partner's with an
UPDATE (the partner write path is another part of this issue)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry

from gridline.common.clock import ManualClock
from gridline.common.consumer import EventConsumer, Incoming
from gridline.common.events import (
    Assignment,
    EventData,
    TipStatusChanged,
    WorkOrderAccepted,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderClosed,
    WorkOrderEscalated,
    WorkOrderReopened,
    WorkOrderResolved,
    envelope_for,
)
from gridline.common.pg import Pool
from gridline.common.policy.catalogue import load_catalogue_text
from gridline.common.settings import KafkaSettings
from gridline.intake.adapters.group_commit import GroupCommit
from gridline.intake.domain.submission import Accepted, Submission
from gridline.intake.handlers import Intake

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
CATALOGUE = Path(__file__).resolve().parents[4] / "config" / "catalogue.yaml"
GARBAGE = "exposed-garbage"  # 5 points in the demo catalogue
DISPUTE = "neighbour-dispute"  # 0 points
HERE = Submission(GARBAGE, 31.78, 119.95, "路边垃圾", None, None, *[None] * 6)


@pytest.fixture
async def intake(pool: Pool) -> Intake:
    intake = Intake(ManualClock(AT), "/gridline/intake")
    catalogue = load_catalogue_text(CATALOGUE.read_text("utf-8"))
    intake.policy.apply("catalogue", catalogue.version_hash, {"catalogue": catalogue.to_dict()})
    async with pool.acquire() as conn:
        await intake.load_reporter_key(conn)
    return intake


async def file(pool: Pool, intake: Intake, *submissions: Submission) -> list[Accepted]:
    """Store reports through intake's group commit, one after another (duplicates merge)."""
    commit: GroupCommit[Accepted] = GroupCommit(pool, intake.store_accepted, wait=0, max_rows=64)
    writer = asyncio.create_task(commit.run())
    try:
        return [await intake.submit(commit, s, "partner") for s in submissions]
    finally:
        writer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writer


async def as_tip(pool: Pool, report: Accepted, rider: str | None, partner: str = "p-fast") -> None:
    await pool.execute(
        "UPDATE requests SET partner_id = $2, rider_id = $3 WHERE service_request_id = $1",
        report.request_id,
        partner,
        rider,
    )


def place(n: int, code: str = GARBAGE) -> Submission:
    """Report n at its own place, ~1 km from the others: it opens its own order."""
    return replace(HERE, service_code=code, lat=HERE.lat + 0.01 * n)


def ref(order: str, version: int, code: str, street: str) -> dict[str, Any]:
    return {
        "work_order_id": order,
        "report_id": order,
        "version": version,
        "category": code,
        "category_name_en": code,
        "category_name_zh": code,
        "street_id": street,
        "district_id": "d1",
        "policy_version": "p1",
    }


def assignment(seq: int, at: datetime, tier: Any = "grid") -> Assignment:
    return Assignment(
        seq=seq,
        tier=tier,
        unit_id="g1",
        unit_name="Grid 7",
        unit_level=tier,
        assigned_at=at,
        due_at=at + timedelta(hours=8),
    )


def assigned(order: str, code: str = GARBAGE, street: str = "s1") -> WorkOrderAssigned:
    return WorkOrderAssigned(
        **ref(order, 1, code, street),
        source="partner",
        grid_id="g1",
        community_id="c1",
        lat=31.78,
        lon=119.95,
        opened_at=AT,
        assignment=assignment(1, AT),
    )


def triage(order: str) -> WorkOrderAssigned:
    return assigned(order).model_copy(
        update={"assignment": None, "triage_unit_id": "d1", "triage_unit_name": "District 1"}
    )


def escalated(order: str, version: int, at: datetime) -> WorkOrderEscalated:
    return WorkOrderEscalated(
        **ref(order, version, GARBAGE, "s1"),
        reason="timeout",
        from_tier="grid",
        from_unit_id="g1",
        assignment=assignment(2, at, "community"),
    )


def resolved(
    order: str, version: int, at: datetime, code: str = GARBAGE, street: str = "s1"
) -> WorkOrderResolved:
    return WorkOrderResolved(
        **ref(order, version, code, street),
        tier="grid",
        unit_id="g1",
        unit_name="Grid 7",
        resolved_by_unit_id="g1",
        opened_at=AT,
        resolved_at=at,
        due_at=AT + timedelta(hours=8),
    )


def reopened(order: str, version: int, at: datetime) -> WorkOrderReopened:
    return WorkOrderReopened(
        **ref(order, version, GARBAGE, "s1"),
        feedback_id="fb",
        resolved_tier="grid",
        resolved_at=at,
        source="partner",
        opened_at=AT,
        assignment=assignment(3, at),
    )


def incoming(event_id: str, event: EventData, at: datetime = AT) -> Incoming[Any]:
    return Incoming(event, envelope_for(event, source="/test", time=at, event_id=event_id))


async def apply(pool: Pool, intake: Intake, *events: Incoming[Any]) -> None:
    """As the consumer does: one transaction, one call for the mixed work-order events."""
    async with pool.acquire() as conn, conn.transaction():
        await intake.on_work_order(conn, list(events))


async def tip_events(pool: Pool) -> list[tuple[str, str, TipStatusChanged]]:
    """(event id, key, event) of every TipStatusChanged in the outbox, in order."""
    rows = await pool.fetch(
        "SELECT event_id, key, payload FROM outbox WHERE topic = 'gridline.tips' ORDER BY id"
    )
    return [
        (r["event_id"], r["key"], TipStatusChanged.model_validate(json.loads(r["payload"])["data"]))
        for r in rows
    ]


async def ledger(pool: Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT report_id, kind, partner_id, rider_id, work_order_id, category, points,"
        " street_id, credited_at, month FROM points_ledger ORDER BY credited_at, report_id"
    )
    return [dict(r) for r in rows]


async def test_a_resolution_credits_the_root_tip_once_and_every_tip_is_told(
    pool: Pool, intake: Intake
) -> None:
    root, merged = await file(pool, intake, HERE, replace(HERE, description="又是垃圾"))
    citizen, *_ = await file(pool, intake, place(3))  # not a tip: nothing for it
    order = root.request_id
    assert (
        await pool.fetchval(
            "SELECT duplicate_of FROM requests WHERE service_request_id = $1", merged.request_id
        )
        == order
    ), "the second report was merged into the first's order"
    await as_tip(pool, root, "rider-1")
    await as_tip(pool, merged, "rider-2")
    callback_set = AT - timedelta(seconds=1)  # the partner's last change before the tips
    await pool.execute(
        "INSERT INTO partners (partner_id, name, rate_per_s, burst, callback_url, created_at,"
        " updated_at) VALUES ('p-fast', 'Fast riders', 5, 5, 'https://p.example/cb', $1, $2)",
        AT - timedelta(days=1),
        callback_set,
    )
    done = AT + timedelta(hours=2)
    batch = [
        incoming("a1", assigned(order)),
        incoming("a2", assigned(citizen.request_id)),
        incoming("r1", resolved(order, 2, done), done),
        incoming("r2", resolved(citizen.request_id, 2, done), done),
    ]

    await apply(pool, intake, *batch)

    assert await ledger(pool) == [
        {
            "report_id": order,
            "kind": "credit",
            "partner_id": "p-fast",
            "rider_id": "rider-1",
            "work_order_id": order,
            "category": GARBAGE,
            "points": 5,
            "street_id": "s1",
            "credited_at": done,
            "month": "2026-11",
        }
    ]
    told = await tip_events(pool)
    assert [(e.report_id, e.status, e.version, e.duplicate, e.points) for _, _, e in told] == [
        (order, "assigned", 1, False, 0),
        (merged.request_id, "assigned", 1, True, 0),
        (order, "resolved", 2, False, 5),
        (merged.request_id, "resolved", 2, True, 0),
    ]
    assert {key for _, key, _ in told} == {order}
    first = told[0][2]
    assert (first.partner_id, first.rider_id, first.category) == ("p-fast", "rider-1", GARBAGE)
    assert (first.tier, first.unit_name, first.due_at) == (
        "grid",
        "Grid 7",
        AT + timedelta(hours=8),
    )
    assert (first.changed_at, told[2][2].changed_at) == (AT, done)
    # notify holds each callback until it has followed the partner this far.
    assert {e.partner_updated_at for _, _, e in told} == {callback_set}

    # The same batch again (a redelivery the inbox did not catch): nothing more.
    await apply(pool, intake, *batch)
    assert len(await ledger(pool)) == 1
    assert await tip_events(pool) == told


async def test_resolved_reopened_resolved_credits_once(pool: Pool, intake: Intake) -> None:
    (tip,) = await file(pool, intake, HERE)
    await as_tip(pool, tip, "rider-1")
    order = tip.request_id
    t1, t2, t3 = (AT + timedelta(hours=h) for h in (1, 2, 3))
    await apply(pool, intake, incoming("a1", assigned(order)))
    await apply(pool, intake, incoming("e1", escalated(order, 2, t1), t1))
    await apply(pool, intake, incoming("r1", resolved(order, 3, t1), t1))
    await apply(pool, intake, incoming("o1", reopened(order, 4, t2), t2))
    await apply(pool, intake, incoming("r2", resolved(order, 5, t3), t3))

    (entry,) = await ledger(pool)
    assert (entry["points"], entry["credited_at"]) == (5, t1)
    told = [(e.status, e.version, e.points, e.tier) for _, _, e in await tip_events(pool)]
    assert told == [
        ("assigned", 1, 0, "grid"),
        ("escalated", 2, 0, "community"),
        ("resolved", 3, 5, "grid"),
        ("reopened", 4, 0, "grid"),
        ("resolved", 5, 0, "grid"),
    ]


async def test_redelivery_through_the_consumer_credits_nothing_more_and_tells_the_same(
    pool: Pool, intake: Intake
) -> None:
    """The handler keeps no inbox row (it is idempotent by itself): a redelivered event is
    applied again and must change nothing, and announce exactly what it announced."""
    tips = await file(pool, intake, *(place(n) for n in range(4)))
    for n, tip in enumerate(tips):
        await as_tip(pool, tip, f"rider-{n % 2}")
    consumer = EventConsumer(
        group_id="intake",
        pool=pool,
        producer=cast(Any, None),  # nothing here is dead-lettered
        kafka=KafkaSettings(),
        handlers=dict.fromkeys(
            (WorkOrderAssigned, WorkOrderResolved, WorkOrderReopened), intake.on_work_order
        ),
        registry=CollectorRegistry(),
    )
    done = AT + timedelta(hours=1)
    events = [(f"a{n}", assigned(t.request_id), AT) for n, t in enumerate(tips)] + [
        (f"r{n}", resolved(t.request_id, 2, done), done) for n, t in enumerate(tips)
    ]
    records = [
        ConsumerRecord(
            topic="gridline.workorders",
            partition=0,
            offset=i,
            timestamp=0,
            timestamp_type=0,
            key=event.work_order_id.encode(),
            value=envelope_for(event, source="/routing", time=at, event_id=eid)
            .model_dump_json()
            .encode(),
            checksum=None,
            serialized_key_size=0,
            serialized_value_size=0,
            headers=(),
        )
        for i, (eid, event, at) in enumerate(events)
    ]

    await consumer.process(records)
    first = await tip_events(pool)
    # The relay published the announcements and removed them from the outbox; then the
    # events came again (a crash before the offset commit): the same announcements, with
    # the points the first application credited.
    await pool.execute("DELETE FROM outbox")
    await consumer.process(records)
    assert await tip_events(pool) == first
    await consumer.process(records[4:] + records[:4])  # and once more, in another poll shape

    assert sorted((e["rider_id"], e["points"]) for e in await ledger(pool)) == [
        ("rider-0", 5),
        ("rider-0", 5),
        ("rider-1", 5),
        ("rider-1", 5),
    ]
    told = await tip_events(pool)
    assert told == first
    assert len(told) == 8
    assert sum(e.points for _, _, e in told) == 20
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 0

    # A replay of the resolutions under new event ids (the inbox cannot tell): still once.
    await apply(
        pool,
        intake,
        *(incoming(f"again{n}", resolved(t.request_id, 2, done)) for n, t in enumerate(tips)),
    )
    assert len(await ledger(pool)) == 4
    again = await tip_events(pool)
    assert [e.points for _, _, e in again[8:]] == [0, 0, 0, 0]


async def test_no_points_for_a_zero_point_category_a_tip_without_rider_or_an_untipped_order(
    pool: Pool, intake: Intake
) -> None:
    dispute, riderless, plain = await file(pool, intake, place(0, DISPUTE), place(1), place(2))
    await as_tip(pool, dispute, "rider-1")
    await as_tip(pool, riderless, None)
    done = AT + timedelta(hours=1)
    await apply(
        pool,
        intake,
        incoming("t0", triage(dispute.request_id)),
        incoming("r0", resolved(dispute.request_id, 2, done, code=DISPUTE), done),
        incoming("r1", resolved(riderless.request_id, 2, done), done),
        incoming("r2", resolved(plain.request_id, 2, done), done),
    )

    assert await ledger(pool) == []
    told = [
        (e.report_id, e.status, e.tier, e.due_at, e.points) for _, _, e in await tip_events(pool)
    ]
    assert told == [
        (dispute.request_id, "triage", None, None, 0),
        (dispute.request_id, "resolved", "grid", AT + timedelta(hours=8), 0),
        (riderless.request_id, "resolved", "grid", AT + timedelta(hours=8), 0),
    ]


async def test_partners_hear_of_accept_cancel_and_close_and_a_cancelled_tip_earns_nothing(
    pool: Pool, intake: Intake
) -> None:
    kept, dropped = await file(pool, intake, HERE, place(5))
    await as_tip(pool, kept, "rider-1")
    await as_tip(pool, dropped, "rider-2")
    t1, t2 = AT + timedelta(hours=1), AT + timedelta(hours=2)
    await apply(pool, intake, incoming("a1", assigned(kept.request_id)))
    await apply(pool, intake, incoming("a2", assigned(dropped.request_id)))
    moves = [
        WorkOrderAccepted(
            **ref(kept.request_id, 2, GARBAGE, "s1"),
            tier="grid",
            unit_id="g1",
            unit_name="Grid 7",
            assignment_seq=1,
            accepted_at=t1,
            due_at=AT + timedelta(hours=8),
        ),
        WorkOrderCancelled(
            **ref(dropped.request_id, 2, GARBAGE, "s1"),
            reason="invalid",
            by_unit_id="g1",
            unit_id="g1",
            unit_name="Grid 7",
            cancelled_at=t1,
        ),
    ]
    async with pool.acquire() as conn, conn.transaction():
        await intake.on_lifecycle(conn, [incoming(f"m{i}", m, t1) for i, m in enumerate(moves)])
    await apply(pool, intake, incoming("r1", resolved(kept.request_id, 3, t2), t2))
    closed = WorkOrderClosed(
        **ref(kept.request_id, 4, GARBAGE, "s1"),
        reason="confirmed",
        feedback_id="fb",
        unit_id="g1",
        unit_name="Grid 7",
        resolved_at=t2,
        closed_at=t2,
    )
    async with pool.acquire() as conn, conn.transaction():
        await intake.on_lifecycle(conn, [incoming("c1", closed, t2)])

    told = [
        (e.report_id, e.status, e.points, e.tier, e.due_at) for _, _, e in await tip_events(pool)
    ]
    assert [(r, s, p) for r, s, p, _, _ in told] == [
        (kept.request_id, "assigned", 0),
        (dropped.request_id, "assigned", 0),
        (kept.request_id, "accepted", 0),
        (dropped.request_id, "cancelled", 0),
        (kept.request_id, "resolved", 5),
        (kept.request_id, "closed", 0),
    ]
    assert told[3][3:] == (None, None) and told[5][3:] == (None, None)  # nobody holds them
    assert [e["report_id"] for e in await ledger(pool)] == [kept.request_id]
