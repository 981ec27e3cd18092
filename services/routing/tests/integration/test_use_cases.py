"""Routing's use cases against the real PostgreSQL: what each batch of events and each
command leaves in the work orders, their history and the outbox."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from gridline.common.clock import ManualClock
from gridline.common.consumer import Incoming, Rejected
from gridline.common.events import (
    DeadlineBreached,
    EventData,
    FeedbackGiven,
    ReportSubmitted,
    ReportTags,
    TierName,
    WorkOrderAssigned,
    WorkOrderEscalated,
    WorkOrderReopened,
    WorkOrderResolved,
    envelope_for,
)
from gridline.common.pg import Pool, migrate, open_pool
from gridline.common.policy.catalogue import load_catalogue_text
from gridline.common.policy.tiers import Tier
from gridline.common.settings import PostgresSettings
from gridline.operator.citygen import generate_city
from gridline.routing.authorisation import Forbidden, key_digest
from gridline.routing.bootstrap import MIGRATIONS
from gridline.routing.commands import Commands, NotFound
from gridline.routing.domain.jurisdiction import parse_jurisdiction
from gridline.routing.domain.workorder import TransitionRefused
from gridline.routing.handlers import EventHandlers
from gridline.routing.metrics import RoutingMetrics
from gridline.routing.policy_cache import PolicyHolder

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SOURCE = "/gridline/routing"
CITY = generate_city(1)
JURISDICTION = parse_jurisdiction(CITY)
CATALOGUE = load_catalogue_text(
    (Path(__file__).resolve().parents[4] / "config" / "catalogue.yaml").read_text(encoding="utf-8")
)
GRIDS = sorted(
    (g for g in JURISDICTION.grids.values() if g.grid_kind != "special"), key=lambda g: g.grid_id
)
GAP = CITY["gridline:gaps"][0]  # inside the city, in no grid
# Enters at the grid tier, its limits in clock hours (exposed garbage counts working hours
# on the demo's office calendar: test_placement.py).
PILED = "piled-materials"


class Routing:
    """Routing's use cases wired as bootstrap wires them, on a scratch schema."""

    def __init__(self, pool: Pool, schema: str) -> None:
        self.pool = pool
        self.schema = schema
        self.clock = ManualClock(AT)
        metrics = RoutingMetrics(CollectorRegistry())
        policy = PolicyHolder(JURISDICTION, CATALOGUE)
        self.events = EventHandlers(self.clock, SOURCE, metrics, policy)
        self.commands = Commands(pool, self.clock, SOURCE, metrics, policy, "admin-key")

    async def reports(self, *reports: tuple[str, ReportSubmitted]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await self.events.reports_submitted(conn, incoming(reports))

    async def breaches(self, *breaches: tuple[str, DeadlineBreached]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await self.events.deadlines_breached(conn, incoming(breaches))

    async def outbox(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(topic, key, envelope) of every event written so far, in order."""
        rows = await self.pool.fetch("SELECT topic, key, payload FROM outbox ORDER BY id")
        return [(r["topic"], r["key"], json.loads(r["payload"])) for r in rows]

    async def order(self, order_id: str) -> dict[str, Any]:
        row = await self.pool.fetchrow("SELECT * FROM work_orders WHERE id = $1", order_id)
        assert row is not None
        return dict(row)

    async def history(self, order_id: str) -> list[tuple[int, str, dict[str, Any]]]:
        rows = await self.pool.fetch(
            "SELECT version, event_type, detail FROM work_order_history"
            " WHERE work_order_id = $1 ORDER BY version",
            order_id,
        )
        return [(r["version"], r["event_type"], r["detail"]) for r in rows]


def incoming(items: tuple[tuple[str, EventData], ...]) -> list[Incoming[Any]]:
    return [
        Incoming(data, envelope_for(data, source="/test", time=AT, event_id=event_id))
        for event_id, data in items
    ]


def report(n: int, *, at: tuple[float, float] | None = None) -> ReportSubmitted:
    """Report n, in grid n of the city unless placed elsewhere."""
    lon, lat = at or _inside(n)
    return ReportSubmitted(
        report_id=f"r{n}",
        work_order_id=f"wo{n}",
        service_code=PILED,
        description=f"piled {n}",
        lat=lat,
        lon=lon,
        source="citizen",
        submitted_at=AT,
    )


def _inside(n: int) -> tuple[float, float]:
    point = GRIDS[n].geometry.representative_point()
    return point.x, point.y


def breach(order_id: str, seq: int, tier: TierName, unit: str) -> DeadlineBreached:
    return DeadlineBreached(
        work_order_id=order_id,
        assignment_seq=seq,
        tier=tier,
        unit_id=unit,
        due_at=AT + timedelta(hours=8),
        breached_at=AT + timedelta(hours=8),
    )


@pytest.fixture
async def routing(pg_settings: PostgresSettings, scratch_schema: str) -> AsyncIterator[Routing]:
    async with open_pool(pg_settings, scratch_schema) as pool:
        await migrate(pool, scratch_schema, [MIGRATIONS])
        yield Routing(pool, scratch_schema)


async def test_a_batch_of_reports_opens_one_order_each_and_announces_each(
    routing: Routing,
) -> None:
    await routing.reports(("e1", report(1)), ("e2", report(2)), ("e3", report(3, at=GAP)))

    outbox = await routing.outbox()
    assert [(topic, key, env["type"]) for topic, key, env in outbox] == [
        ("gridline.workorders", f"wo{n}", WorkOrderAssigned.TYPE) for n in (1, 2, 3)
    ]
    first = WorkOrderAssigned.model_validate(outbox[0][2]["data"])
    assert first.assignment is not None
    assert (first.assignment.tier, first.assignment.unit_id) == ("grid", GRIDS[1].grid_id)
    assert first.assignment.due_at == AT + timedelta(hours=8)
    held = WorkOrderAssigned.model_validate(outbox[2][2]["data"])
    assert held.assignment is None
    assert held.triage_unit_id == "320402"
    assert held.triage_reason == "the location lies inside the city but in no grid"

    one = await routing.order("wo1")
    assert (one["state"], one["tier"], one["unit_id"], one["description"]) == (
        "open",
        "grid",
        GRIDS[1].grid_id,
        "piled 1",
    )
    assert (await routing.order("wo3"))["state"] == "triage"
    [(version, kind, detail)] = await routing.history("wo1")
    why = detail.pop("routing")  # no rule file: the category's entry tier, explained
    assert (why["rules"], why["grid"]["id"], why["tier"]) == ([], GRIDS[1].grid_id, "grid")
    assert (version, kind, detail) == (
        1,
        WorkOrderAssigned.TYPE,
        {
            "actor": "routing",
            "triage_reason": None,
            "severity": "normal",
            "flags": [],
            "unit_id": GRIDS[1].grid_id,
        },
    )


async def test_a_report_sent_again_under_another_event_id_opens_nothing(
    routing: Routing,
) -> None:
    await routing.reports(("e1", report(1)))
    await routing.reports(("e1-again", report(1)), ("e2", report(2)))
    await routing.reports(("e3", report(3)), ("e3-again", report(3)))  # twice in one batch

    outbox = await routing.outbox()
    assert [key for _, key, _ in outbox] == ["wo1", "wo2", "wo3"]
    count = await routing.pool.fetchval("SELECT count(*) FROM work_orders")
    assert count == 3


async def test_breaches_escalate_their_orders_and_a_stale_breach_changes_nothing(
    routing: Routing,
) -> None:
    await routing.reports(("e1", report(1)), ("e2", report(2)))
    routing.clock.advance(timedelta(hours=8))

    await routing.breaches(
        ("b1", breach("wo1", 1, "grid", GRIDS[1].grid_id)),
        ("b2", breach("wo2", 1, "grid", GRIDS[2].grid_id)),
    )
    escalated = [env for _, _, env in (await routing.outbox())[2:]]
    assert [(e["type"], e["subject"]) for e in escalated] == [
        (WorkOrderEscalated.TYPE, "wo1"),
        (WorkOrderEscalated.TYPE, "wo2"),
    ]
    event = WorkOrderEscalated.model_validate(escalated[0]["data"])
    assert (event.reason, event.from_tier, event.version) == ("timeout", "grid", 2)
    assert (event.assignment.seq, event.assignment.tier) == (2, "community")
    assert event.assignment.unit_id == GRIDS[1].community_id
    order = await routing.order("wo1")
    assert (order["tier"], order["assignment_seq"], order["version"]) == ("community", 2, 2)
    assert [h[1] for h in await routing.history("wo1")] == [
        WorkOrderAssigned.TYPE,
        WorkOrderEscalated.TYPE,
    ]

    # The breach of the first assignment again (as SLA might send it late): nothing moves.
    await routing.breaches(("b1-late", breach("wo1", 1, "grid", GRIDS[1].grid_id)))
    assert len(await routing.outbox()) == 4
    assert (await routing.order("wo1"))["assignment_seq"] == 2


async def test_a_breach_of_an_unknown_order_is_rejected_and_writes_nothing(
    routing: Routing,
) -> None:
    await routing.reports(("e1", report(1)))
    with pytest.raises(Rejected, match="unknown work order nope"):
        await routing.breaches(
            ("b1", breach("wo1", 1, "grid", GRIDS[1].grid_id)),
            ("b2", breach("nope", 1, "grid", GRIDS[2].grid_id)),
        )
    assert len(await routing.outbox()) == 1
    assert (await routing.order("wo1"))["assignment_seq"] == 1


async def bind(routing: Routing, key: str, unit: str) -> str | None:
    await routing.commands.bind_handler_keys([(key_digest(key), unit)], skip_unknown=False)
    return await routing.commands.identify(key)


async def test_a_resolution_is_stored_announced_and_explained(routing: Routing) -> None:
    await routing.reports(("e1", report(1)))
    grid = await bind(routing, "grid-key", GRIDS[1].grid_id)
    routing.clock.advance(timedelta(hours=1))

    done = await routing.commands.resolve("wo1", grid, "swept")

    assert done.state.value == "resolved"
    topic, key, env = (await routing.outbox())[-1]
    assert (topic, key, env["type"]) == ("gridline.workorders", "wo1", WorkOrderResolved.TYPE)
    event = WorkOrderResolved.model_validate(env["data"])
    assert (event.tier, event.unit_id, event.resolved_by_unit_id, event.note) == (
        "grid",
        GRIDS[1].grid_id,
        GRIDS[1].grid_id,
        "swept",
    )
    assert event.resolved_at == AT + timedelta(hours=1)
    assert (await routing.history("wo1"))[-1] == (
        2,
        WorkOrderResolved.TYPE,
        {
            "actor": GRIDS[1].grid_id,
            "by": GRIDS[1].grid_id,
            "note": "swept",
            "unit_id": GRIDS[1].grid_id,
        },
    )
    # Resolving again is refused and leaves no trace.
    with pytest.raises(TransitionRefused):
        await routing.commands.resolve("wo1", grid, None)
    assert len(await routing.outbox()) == 2


async def test_a_whistle_moves_the_order_up_and_announces_it(routing: Routing) -> None:
    await routing.reports(("e1", report(1)))
    grid = await bind(routing, "grid-key", GRIDS[1].grid_id)

    moved = await routing.commands.whistle("wo1", grid, "needs a truck")

    assert moved.unit_id == GRIDS[1].community_id
    _, key, env = (await routing.outbox())[-1]
    assert (key, env["type"]) == ("wo1", WorkOrderEscalated.TYPE)
    event = WorkOrderEscalated.model_validate(env["data"])
    assert (event.reason, event.note, event.from_unit_id) == (
        "whistle",
        "needs a truck",
        GRIDS[1].grid_id,
    )
    assert (await routing.history("wo1"))[-1][2] == {
        "reason": "whistle",
        "from": GRIDS[1].grid_id,
        "note": "needs a truck",
        "actor": GRIDS[1].grid_id,
        "unit_id": GRIDS[1].community_id,
    }
    assert (await routing.order("wo1"))["unit_id"] == GRIDS[1].community_id


async def test_commands_outside_the_keys_reach_are_refused_and_write_nothing(
    routing: Routing,
) -> None:
    await routing.reports(("e1", report(1)))
    other = await bind(routing, "other-key", GRIDS[2].grid_id)
    admin = await routing.commands.identify("admin-key")

    with pytest.raises(Forbidden):
        await routing.commands.resolve("wo1", other, None)
    with pytest.raises(Forbidden):
        await routing.commands.whistle("wo1", admin, None)
    with pytest.raises(NotFound):
        await routing.commands.resolve("nope", other, None)
    with pytest.raises(Forbidden):
        await routing.commands.identify("no-such-key")
    assert len(await routing.outbox()) == 1
    assert (await routing.order("wo1"))["version"] == 1


async def test_triage_places_a_held_order_in_a_grid_and_announces_its_assignment(
    routing: Routing,
) -> None:
    await routing.reports(("e1", report(1, at=GAP)))
    district = await bind(routing, "district-key", "320402")
    target = GRIDS[5]

    placed = await routing.commands.assign("wo1", district, target.grid_id, None)

    assert (placed.state.value, placed.unit_id, placed.assignment_seq) == (
        "open",
        target.grid_id,
        2,
    )
    _, key, env = (await routing.outbox())[-1]
    assert (key, env["type"]) == ("wo1", WorkOrderAssigned.TYPE)
    event = WorkOrderAssigned.model_validate(env["data"])
    assert event.assignment is not None
    assert (event.grid_id, event.assignment.unit_id, event.version) == (
        target.grid_id,
        target.grid_id,
        2,
    )
    assert [h[:2] for h in await routing.history("wo1")] == [
        (1, WorkOrderAssigned.TYPE),
        (2, WorkOrderAssigned.TYPE),
    ]
    with pytest.raises(TransitionRefused):
        await routing.commands.assign("wo1", district, "no-such-grid", None)


async def test_policy_loaded_by_another_instance_is_taken_up(routing: Routing) -> None:
    await routing.commands.activate_jurisdiction(JURISDICTION, CITY)
    await routing.commands.activate_catalogue(CATALOGUE)
    await routing.commands.activate_catalogue(CATALOGUE)  # the same again emits nothing
    kinds = [env["data"]["kind"] for _, _, env in await routing.outbox()]
    assert kinds == ["jurisdiction", "catalogue"]

    follower = PolicyHolder()
    async with routing.pool.acquire() as conn:
        await follower.load(conn)
    assert follower.require().version == routing.commands.policy.require().version


async def test_a_load_under_way_does_not_undo_an_activation_made_meanwhile(
    routing: Routing,
) -> None:
    """The follower read J2 (stored by another instance) and is still parsing it when this
    instance's admin API puts J3 into effect: J3 stays, not the older J2."""
    j2, j3 = generate_city(2), generate_city(3)
    await routing.commands.activate_jurisdiction(JURISDICTION, CITY)
    await routing.commands.activate_catalogue(CATALOGUE)
    metrics = RoutingMetrics(CollectorRegistry())
    other = Commands(routing.pool, routing.clock, SOURCE, metrics, PolicyHolder(), None)
    await other.activate_jurisdiction(parse_jurisdiction(j2), j2)
    read, go = asyncio.Event(), asyncio.Event()

    class Slow:  # hands over the document read only when `go` is set
        def __init__(self, conn: Any) -> None:
            self.conn = conn

        async def fetchval(self, sql: str, *args: Any) -> Any:
            value = await self.conn.fetchval(sql, *args)
            if sql.lstrip().startswith("SELECT document"):
                read.set()
                await go.wait()
            return value

    holder = routing.commands.policy
    async with routing.pool.acquire() as conn:
        load = asyncio.create_task(holder.load(Slow(conn)))  # type: ignore[arg-type]
        await read.wait()
        newest = parse_jurisdiction(j3)
        await routing.commands.activate_jurisdiction(newest, j3)
        go.set()
        await load
    assert holder.jurisdiction is newest
    async with routing.pool.acquire() as conn:
        await holder.load(conn)  # the next load agrees with what is stored
    assert holder.jurisdiction is newest


# -- tagged reports: duplicates, triage of an uncertain category, severity ---------------


def duplicate(n: int, of: int) -> ReportSubmitted:
    """Report n, which intake merged into report `of`'s open order."""
    return report(n, at=_inside(of)).model_copy(
        update={"work_order_id": f"wo{of}", "duplicate_of": f"wo{of}"}
    )


async def test_a_duplicate_opens_no_second_order_and_is_counted_on_the_first(
    routing: Routing,
) -> None:
    # The first and its duplicate in one batch, another duplicate later, and a re-delivery.
    await routing.reports(("e1", report(1)), ("e2", duplicate(2, of=1)))
    await routing.reports(("e3", duplicate(3, of=1)), ("e3-again", duplicate(3, of=1)))

    outbox = await routing.outbox()
    assert [(key, env["type"]) for _, key, env in outbox] == [("wo1", WorkOrderAssigned.TYPE)]
    orders = await routing.pool.fetch("SELECT id FROM work_orders")
    assert [o["id"] for o in orders] == ["wo1"]
    _, _, reports = await routing.commands.work_order("wo1", None)
    assert reports == 3


async def test_a_duplicate_of_an_unknown_order_is_rejected_alone(routing: Routing) -> None:
    with pytest.raises(Rejected, match="wo9"):
        await routing.reports(("e1", duplicate(1, of=9)))
    assert await routing.outbox() == []


async def test_an_uncertain_inferred_category_holds_the_order_for_triage_with_candidates(
    routing: Routing,
) -> None:
    tags = ReportTags(
        category_source="inferred",
        confidence=0.33,
        candidates=["noise-nuisance", "neighbour-dispute"],
        needs_triage=True,
    )
    uncertain = report(1).model_copy(update={"service_code": "noise-nuisance", "tags": tags})
    await routing.reports(("e1", uncertain))

    ((_, _, env),) = await routing.outbox()
    held = WorkOrderAssigned.model_validate(env["data"])
    assert held.assignment is None
    assert held.triage_unit_id == GRIDS[1].district_id
    assert held.triage_reason is not None
    assert "confidence 0.33" in held.triage_reason
    assert "candidates: noise-nuisance, neighbour-dispute" in held.triage_reason
    order = await routing.order("wo1")
    assert (order["state"], order["grid_id"]) == ("triage", GRIDS[1].grid_id)


async def test_severity_shortens_the_entry_tiers_time_limit(routing: Routing) -> None:
    urgent = report(1).model_copy(
        update={"tags": ReportTags(severity="urgent", flags=["safety_hazard"])}
    )
    critical = report(2).model_copy(update={"tags": ReportTags(severity="critical")})
    await routing.reports(("e1", urgent), ("e2", critical), ("e3", report(3)))

    due = {
        key: WorkOrderAssigned.model_validate(env["data"]).assignment
        for _, key, env in await routing.outbox()
    }
    limit = CATALOGUE.time_limit(PILED, Tier.GRID)  # 8 h
    factors = CATALOGUE.tagging.severity_factors
    assert due["wo1"] is not None and due["wo1"].due_at == AT + limit * factors["urgent"]
    assert due["wo2"] is not None and due["wo2"].due_at == AT + limit * factors["critical"]
    assert due["wo3"] is not None and due["wo3"].due_at == AT + limit
    assert due["wo1"].due_at < due["wo3"].due_at
    ((_, _, detail),) = await routing.history("wo1")
    assert (detail["severity"], detail["flags"]) == ("urgent", ["safety_hazard"])


def rejection(feedback_id: str, resolved_version: int, *, reopen: bool = True) -> FeedbackGiven:
    return FeedbackGiven(
        feedback_id=feedback_id,
        report_id="r1",
        work_order_id="wo1",
        resolved_version=resolved_version,
        outcome="reject",
        satisfaction=1,
        reopen=reopen,
        given_at=AT + timedelta(hours=2),
    )


async def test_a_rejection_in_time_reopens_the_order_once_at_the_tier_that_resolved_it(
    routing: Routing,
) -> None:
    await routing.reports(("e1", report(1)))
    grid = await bind(routing, "grid-key", GRIDS[1].grid_id)
    routing.clock.advance(timedelta(hours=1))
    await routing.commands.resolve("wo1", grid, "swept")
    routing.clock.advance(timedelta(hours=1))

    async def feedback(*items: tuple[str, FeedbackGiven]) -> None:
        async with routing.pool.acquire() as conn, conn.transaction():
            await routing.events.feedback_given(conn, incoming(items))

    # A rejection outside the window (reopen false) changes nothing.
    await feedback(("f0", rejection("fb0", 2, reopen=False)))
    assert (await routing.order("wo1"))["state"] == "resolved"
    assert len(await routing.outbox()) == 2

    # The same rejection twice in one batch (another event id) and again later.
    await feedback(("f1", rejection("fb1", 2)), ("f1-again", rejection("fb1", 2)))
    await feedback(("f1-later", rejection("fb1", 2)))

    order = await routing.order("wo1")
    now = AT + timedelta(hours=2)
    assert (order["state"], order["tier"], order["unit_id"]) == (
        "open",
        "grid",
        GRIDS[1].grid_id,
    )
    assert (order["assignment_seq"], order["version"], order["resolved_at"]) == (2, 3, None)
    assert order["assigned_at"] == now
    assert order["due_at"] == now + CATALOGUE.time_limit(PILED, Tier.GRID)
    events = await routing.outbox()
    assert [env["type"] for _, _, env in events] == [
        WorkOrderAssigned.TYPE,
        WorkOrderResolved.TYPE,
        WorkOrderReopened.TYPE,
    ]
    topic, key, env = events[-1]
    assert (topic, key) == ("gridline.workorders", "wo1")
    reopened = WorkOrderReopened.model_validate(env["data"])
    assert (reopened.version, reopened.feedback_id, reopened.resolved_tier) == (3, "fb1", "grid")
    assert reopened.resolved_at == AT + timedelta(hours=1)
    assert (reopened.assignment.seq, reopened.assignment.unit_id) == (2, GRIDS[1].grid_id)
    assert reopened.assignment.due_at == order["due_at"]
    assert (await routing.history("wo1"))[-1] == (
        3,
        WorkOrderReopened.TYPE,
        {
            "reason": "feedback",
            "feedback_id": "fb1",
            "from": GRIDS[1].grid_id,
            "actor": "reporter",
            "unit_id": GRIDS[1].grid_id,
        },
    )
    # Open again: the holder can resolve it anew.
    again = await routing.commands.resolve("wo1", grid, "swept properly")
    assert (again.state.value, again.version) == ("resolved", 4)


async def test_feedback_on_an_unknown_order_is_rejected(routing: Routing) -> None:
    with pytest.raises(Rejected):
        async with routing.pool.acquire() as conn, conn.transaction():
            await routing.events.feedback_given(conn, incoming((("f9", rejection("fb9", 2)),)))
    assert await routing.outbox() == []
