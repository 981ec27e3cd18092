"""The lifecycle's moves against the real PostgreSQL: each move's order row, its event in
the outbox (keyed by work order) and its history row with actor and reason; each refusal
writes nothing."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

import pytest

from gridline.common.events import (
    DepartmentCalledIn,
    DepartmentCallEscalated,
    DepartmentReportedIn,
    FeedbackGiven,
    ReportInBreached,
    WorkOrderAccepted,
    WorkOrderCancelled,
    WorkOrderClosed,
    WorkOrderReopened,
    WorkOrderResolved,
    WorkOrderReturned,
)
from gridline.common.policy.tiers import Tier
from gridline.routing.authorisation import Forbidden
from gridline.routing.commands import NotFound
from gridline.routing.domain.workorder import TransitionRefused
from gridline.routing.moves import Moves

from .test_use_cases import AT, CATALOGUE, GRIDS, PILED, Routing, bind, incoming, report

pytestmark = pytest.mark.integration

GRID = GRIDS[1]
WATER = "dept-water"


async def last(routing: Routing) -> tuple[str, str, dict[str, object]]:
    return (await routing.outbox())[-1]


async def refused_and_unchanged(
    routing: Routing, call: Awaitable[Any], exc: type[Exception]
) -> None:
    before = len(await routing.outbox())
    with pytest.raises(exc) as info:
        await call
    assert str(info.value)
    assert len(await routing.outbox()) == before


async def test_the_holder_accepts_once_and_it_is_announced_and_recorded(routing: Routing) -> None:
    await routing.reports(("e1", report(1)))
    grid = await bind(routing, "grid-key", GRID.grid_id)
    street = await bind(routing, "street-key", GRID.street_id)
    moves = Moves(routing.commands)
    routing.clock.advance(timedelta(minutes=10))

    done = await moves.accept("wo1", grid)

    row = await routing.order("wo1")
    assert (row["state"], row["accepted_at"], row["version"]) == (
        "accepted",
        AT + timedelta(minutes=10),
        2,
    )
    topic, key, env = await last(routing)
    assert (topic, key, env["type"]) == ("gridline.workorders", "wo1", WorkOrderAccepted.TYPE)
    event = WorkOrderAccepted.model_validate(env["data"])
    assert (event.unit_id, event.tier, event.version) == (GRID.grid_id, "grid", 2)
    assert (await routing.history("wo1"))[-1][1:] == (
        WorkOrderAccepted.TYPE,
        {"actor": GRID.grid_id, "unit_id": GRID.grid_id},
    )
    assert done.due_at == row["due_at"]
    await refused_and_unchanged(routing, moves.accept("wo1", grid), TransitionRefused)
    await refused_and_unchanged(routing, moves.accept("nope", grid), NotFound)
    await routing.reports(("e2", report(2)))
    # The street sees its grid's order but only the holder acknowledges it.
    await refused_and_unchanged(routing, moves.accept("wo2", street), TransitionRefused)


async def test_a_return_with_a_target_places_the_order_again(routing: Routing) -> None:
    await routing.reports(("e1", report(1)))
    grid = await bind(routing, "grid-key", GRID.grid_id)
    moves = Moves(routing.commands)
    routing.clock.advance(timedelta(hours=1))

    moved = await moves.return_order("wo1", grid, "not ours", GRIDS[2].grid_id, "dirty-road")

    row = await routing.order("wo1")
    assert (row["state"], row["unit_id"], row["category"], row["assignment_seq"]) == (
        "open",
        GRIDS[2].grid_id,
        "dirty-road",
        2,
    )
    assert row["due_at"] == AT + timedelta(hours=1) + CATALOGUE.time_limit("dirty-road", Tier.GRID)
    _, key, env = await last(routing)
    event = WorkOrderReturned.model_validate(env["data"])
    assert (key, event.from_unit_id, event.by_unit_id, event.reason) == (
        "wo1",
        GRID.grid_id,
        GRID.grid_id,
        "not ours",
    )
    assert event.assignment is not None and event.assignment.unit_id == GRIDS[2].grid_id
    assert event.assignment.seq == moved.assignment_seq == 2
    history = (await routing.history("wo1"))[-1]
    assert history[2]["actor"] == GRID.grid_id and history[2]["reason"] == "not ours"
    # The grid no longer holds it.
    await refused_and_unchanged(routing, moves.accept("wo1", grid), Forbidden)


async def test_a_return_without_a_target_holds_it_for_triage_at_the_district(
    routing: Routing,
) -> None:
    await routing.reports(("e1", report(1)))
    grid = await bind(routing, "grid-key", GRID.grid_id)
    moves = Moves(routing.commands)

    await moves.return_order("wo1", grid, "wrong place", None, None)

    row = await routing.order("wo1")
    assert (row["state"], row["tier"], row["unit_id"], row["due_at"]) == (
        "triage",
        None,
        GRID.district_id,
        None,
    )
    event = WorkOrderReturned.model_validate((await last(routing))[2]["data"])
    assert (event.assignment, event.triage_unit_id) == (None, GRID.district_id)
    # Placed again by triage, as any held order.
    admin = await routing.commands.identify("admin-key")
    placed = await routing.commands.assign("wo1", admin, GRIDS[3].grid_id, None)
    assert (placed.state.value, placed.unit_id) == ("open", GRIDS[3].grid_id)
    await refused_and_unchanged(
        routing, moves.return_order("wo1", grid, "x", "no-such-grid", None), Forbidden
    )


async def test_a_return_to_an_unknown_grid_or_category_is_refused(routing: Routing) -> None:
    await routing.reports(("e1", report(1)))
    grid = await bind(routing, "grid-key", GRID.grid_id)
    moves = Moves(routing.commands)
    await refused_and_unchanged(
        routing, moves.return_order("wo1", grid, "x", "no-such-grid", None), TransitionRefused
    )
    await refused_and_unchanged(
        routing, moves.return_order("wo1", grid, "x", None, "no-such-code"), TransitionRefused
    )


async def test_cancel_is_final_with_its_reason(routing: Routing) -> None:
    await routing.reports(("e1", report(1)))
    grid = await bind(routing, "grid-key", GRID.grid_id)
    moves = Moves(routing.commands)

    await moves.cancel("wo1", grid, "duplicate", "same as wo0")

    row = await routing.order("wo1")
    assert (row["state"], row["end_reason"], row["due_at"]) == ("cancelled", "duplicate", None)
    _, key, env = await last(routing)
    event = WorkOrderCancelled.model_validate(env["data"])
    assert (key, event.reason, event.note, event.by_unit_id) == (
        "wo1",
        "duplicate",
        "same as wo0",
        GRID.grid_id,
    )
    assert (await routing.history("wo1"))[-1][2]["actor"] == GRID.grid_id
    await refused_and_unchanged(
        routing, routing.commands.resolve("wo1", grid, None), TransitionRefused
    )
    admin = await routing.commands.identify("admin-key")
    await refused_and_unchanged(
        routing, moves.cancel("wo1", admin, "invalid", None), TransitionRefused
    )
    assert list(await routing.commands.open_orders(admin, 10)) == []


async def test_a_street_resolving_its_grids_order_announces_a_street_resolution(
    routing: Routing,
) -> None:
    await routing.reports(("e1", report(1)))
    street = await bind(routing, "street-key", GRID.street_id)

    await routing.commands.resolve("wo1", street, "done by the street")

    event = WorkOrderResolved.model_validate((await last(routing))[2]["data"])
    assert (event.tier, event.resolved_by_tier, event.counted_tier) == ("grid", "street", "street")
    assert (await routing.order("wo1"))["resolved_tier"] == "street"


async def test_confirmation_closes_and_the_window_closes_the_rest(routing: Routing) -> None:
    await routing.reports(("e1", report(1)), ("e2", report(2)), ("e3", report(3)))
    moves = Moves(routing.commands)
    for n in (1, 2, 3):
        key = await bind(routing, f"grid-key-{n}", GRIDS[n].grid_id)
        await routing.commands.resolve(f"wo{n}", key, None)
    confirm = FeedbackGiven(
        feedback_id="fb1",
        report_id="r1",
        work_order_id="wo1",
        resolved_version=2,
        outcome="confirm",
        satisfaction=5,
        reopen=False,
        given_at=AT,
    )
    async with routing.pool.acquire() as conn, conn.transaction():
        await routing.events.feedback_given(conn, incoming((("f1", confirm),)))
    closed = WorkOrderClosed.model_validate((await last(routing))[2]["data"])
    assert (closed.work_order_id, closed.reason, closed.feedback_id) == ("wo1", "confirmed", "fb1")
    assert (await routing.history("wo1"))[-1][2]["actor"] == "reporter"

    window = timedelta(hours=CATALOGUE.model.feedback.reopen_window_hours)
    routing.clock.advance(window - timedelta(minutes=1))
    assert await moves.close_after_window() == 0
    routing.clock.advance(timedelta(minutes=1))
    assert await moves.close_after_window() == 2
    assert await moves.close_after_window() == 0
    rows = [await routing.order(f"wo{n}") for n in (1, 2, 3)]
    assert [(r["state"], r["end_reason"]) for r in rows] == [
        ("closed", "confirmed"),
        ("closed", "feedback_window"),
        ("closed", "feedback_window"),
    ]
    outbox = await routing.outbox()
    assert [(k, e["type"]) for _, k, e in outbox[-2:]] == [
        ("wo2", WorkOrderClosed.TYPE),
        ("wo3", WorkOrderClosed.TYPE),
    ]
    assert (await routing.history("wo2"))[-1][2]["actor"] == "routing"  # the window's sweep


async def test_a_call_in_is_reported_in_by_the_called_department(routing: Routing) -> None:
    await routing.reports(("e1", report(1)))
    street = await bind(routing, "street-key", GRID.street_id)
    grid = await bind(routing, "grid-key", GRID.grid_id)
    water = await bind(routing, "water-key", WATER)
    other = await bind(routing, "fire-key", "dept-fire")
    moves = Moves(routing.commands)

    await refused_and_unchanged(routing, moves.call_in("wo1", grid, WATER, None), TransitionRefused)
    await refused_and_unchanged(
        routing, moves.call_in("wo1", street, "dept-none", None), TransitionRefused
    )
    await moves.call_in("wo1", street, WATER, "pipe burst")

    row = await routing.order("wo1")
    assert (row["unit_id"], row["call_department_id"], row["call_due_at"]) == (
        GRID.grid_id,
        WATER,
        AT + timedelta(hours=2),
    )
    _, key, env = await last(routing)
    called = DepartmentCalledIn.model_validate(env["data"])
    assert (key, called.call_seq, called.called_by_unit_id, called.note) == (
        "wo1",
        1,
        GRID.street_id,
        "pipe burst",
    )
    await refused_and_unchanged(routing, moves.report_in("wo1", other), Forbidden)
    routing.clock.advance(timedelta(hours=1))
    await moves.report_in("wo1", water)
    reported = DepartmentReportedIn.model_validate((await last(routing))[2]["data"])
    assert (reported.department_id, reported.late) == (WATER, False)
    assert (await routing.history("wo1"))[-1][2]["actor"] == WATER
    await refused_and_unchanged(routing, moves.report_in("wo1", water), TransitionRefused)


async def test_a_missed_report_in_escalates_the_call_to_the_district_once(
    routing: Routing,
) -> None:
    await routing.reports(("e1", report(1)))
    street = await bind(routing, "street-key", GRID.street_id)
    moves = Moves(routing.commands)
    await moves.call_in("wo1", street, WATER, None)
    routing.clock.advance(timedelta(hours=2))
    breach = ReportInBreached(
        work_order_id="wo1",
        call_seq=1,
        department_id=WATER,
        due_at=AT + timedelta(hours=2),
        breached_at=AT + timedelta(hours=2),
    )

    async def breaches(*items: tuple[str, ReportInBreached]) -> None:
        async with routing.pool.acquire() as conn, conn.transaction():
            await moves.reports_in_breached(conn, incoming(items))

    await breaches(("b1", breach), ("b1-again", breach))
    await breaches(("b1-later", breach))

    escalations = [
        e for _, _, e in await routing.outbox() if e["type"] == DepartmentCallEscalated.TYPE
    ]
    assert len(escalations) == 1
    event = DepartmentCallEscalated.model_validate(escalations[0]["data"])
    assert (event.to_unit_id, event.department_id, event.call_seq) == (GRID.district_id, WATER, 1)
    row = await routing.order("wo1")
    assert row["call_escalated_at"] == AT + timedelta(hours=2)
    assert (await routing.history("wo1"))[-1][2]["to"] == GRID.district_id


async def test_a_recurrence_reopens_a_resolved_order_as_rework_and_a_closed_one_stays_closed(
    routing: Routing,
) -> None:
    await routing.reports(("e1", report(1)))
    grid = await bind(routing, "grid-key", GRID.grid_id)
    moves = Moves(routing.commands)
    await refused_and_unchanged(
        routing, moves.reopen_recurred("wo1", grid, None), TransitionRefused
    )
    await routing.commands.resolve("wo1", grid, "cleaned")
    routing.clock.advance(timedelta(hours=1))

    again = await moves.reopen_recurred("wo1", grid, "堆回来了 piled up again")

    row = await routing.order("wo1")
    assert (row["state"], row["reopen_count"], row["assignment_seq"]) == ("open", 1, 2)
    topic, key, env = await last(routing)
    assert (topic, key, env["type"]) == ("gridline.workorders", "wo1", WorkOrderReopened.TYPE)
    event = WorkOrderReopened.model_validate(env["data"])
    assert (event.reason, event.by_unit_id, event.feedback_id) == ("recurred", GRID.grid_id, None)
    assert (
        event.assignment.due_at
        == again.due_at
        == AT + timedelta(hours=1) + CATALOGUE.time_limit(PILED, Tier.GRID)
    )
    history = (await routing.history("wo1"))[-1][2]
    assert (history["reason"], history["actor"], history["note"]) == (
        "recurred",
        GRID.grid_id,
        "堆回来了 piled up again",
    )
    # Another grid's key may not (a closed order is final: the pure machine's tests).
    other = await bind(routing, "other-key", GRIDS[2].grid_id)
    await routing.commands.resolve("wo1", grid, None)
    await refused_and_unchanged(routing, moves.reopen_recurred("wo1", other, None), Forbidden)
