"""The work-order lifecycle as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridline.common.policy.calendar import WorkCalendar
from gridline.common.policy.tiers import Tier
from gridline.routing.domain.authority import may_act
from gridline.routing.domain.workorder import (
    Place,
    State,
    TimeLimits,
    TransitionRefused,
    WorkOrder,
    assign_from_triage,
    breach_applies,
    due_after,
    escalate,
    open_order,
    reopen,
    reopen_applies,
    resolve,
    supervisor_of,
    warning_points,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
LIMITS = {
    Tier.GRID: timedelta(hours=8),
    Tier.COMMUNITY: timedelta(hours=16),
    Tier.STREET: timedelta(hours=24),
    Tier.DEPARTMENT: timedelta(hours=48),
}
PLACE = Place("g1", "c1", "s1", "d1")


def new(entry: Tier = Tier.GRID, place: Place = PLACE) -> WorkOrder:
    return open_order(
        order_id="wo1",
        report_id="r1",
        category="exposed-garbage",
        department_id="dept-um",
        source="citizen",
        lat=31.7,
        lon=119.9,
        place=place,
        entry=entry,
        time_limit=LIMITS,
        now=NOW,
        policy_version="p1",
    )


def test_order_opens_at_its_entry_tier_with_that_tiers_time_limit() -> None:
    order = new(Tier.COMMUNITY)
    assert (order.state, order.tier, order.unit_id) == (State.OPEN, Tier.COMMUNITY, "c1")
    assert order.due_at == NOW + timedelta(hours=16)
    assert (order.assignment_seq, order.version) == (1, 1)


def test_point_in_no_grid_is_held_for_triage_at_its_district() -> None:
    order = new(place=Place(None, None, None, "d1"))
    assert (order.state, order.tier, order.unit_id, order.due_at) == (
        State.TRIAGE,
        None,
        "d1",
        None,
    )
    with pytest.raises(TransitionRefused, match="triage"):
        resolve(order, now=NOW)


def test_escalation_walks_grid_community_street_department_then_refuses() -> None:
    order = new()
    seen = [order.unit_id]
    for _ in range(3):
        order = escalate(order, time_limit=LIMITS, now=NOW + timedelta(hours=1))
        seen.append(order.unit_id)
    assert seen == ["g1", "c1", "s1", "dept-um"]
    assert order.tier is Tier.DEPARTMENT and order.assignment_seq == 4
    assert order.due_at == NOW + timedelta(hours=1) + LIMITS[Tier.DEPARTMENT]
    with pytest.raises(TransitionRefused, match="top"):
        escalate(order, time_limit=LIMITS, now=NOW)


def test_resolved_order_can_be_neither_resolved_again_nor_escalated() -> None:
    done = resolve(new(), now=NOW + timedelta(hours=2))
    assert done.state is State.RESOLVED and done.resolved_at == NOW + timedelta(hours=2)
    with pytest.raises(TransitionRefused):
        resolve(done, now=NOW)
    with pytest.raises(TransitionRefused):
        escalate(done, time_limit=LIMITS, now=NOW)


def test_breach_of_an_earlier_assignment_is_stale() -> None:
    order = new()
    assert breach_applies(order, 1)
    moved = escalate(order, time_limit=LIMITS, now=NOW)
    assert not breach_applies(moved, 1)
    assert breach_applies(moved, 2)
    assert not breach_applies(resolve(moved, now=NOW), 2)


def test_handler_key_acts_on_its_unit_and_below_only() -> None:
    tree = {"g1": ["c1", "s1", "d1"], "c1": ["s1", "d1"], "s1": ["d1"], "g2": ["c2", "s1", "d1"]}
    order = new()
    assert may_act("g1", order, lambda u: tree.get(u, []))
    assert may_act("s1", order, lambda u: tree.get(u, []))
    assert not may_act("g2", order, lambda u: tree.get(u, []))
    assert not may_act("dept-um", order, lambda u: tree.get(u, []))


actions = st.lists(
    st.sampled_from(["escalate", "resolve", "breach-current", "breach-stale"]), max_size=12
)


@given(actions)
def test_lifecycle_invariants_hold_for_any_sequence_of_moves(moves: list[str]) -> None:
    order = new()
    for move in moves:
        before = order
        try:
            if move == "escalate":
                order = escalate(order, time_limit=LIMITS, now=NOW)
            elif move == "resolve":
                order = resolve(order, now=NOW)
            elif move == "breach-current" and breach_applies(order, order.assignment_seq):
                order = escalate(order, time_limit=LIMITS, now=NOW)
            elif move == "breach-stale":
                assert not breach_applies(order, order.assignment_seq - 1)
        except TransitionRefused:
            assert order == before
        # Versions only grow, tiers never go down, nothing happens after resolution.
        assert order.version >= before.version
        assert order.tier is not None and before.tier is not None
        assert order.tier.rank >= before.tier.rank
        if before.state is State.RESOLVED:
            assert order == before
        assert order.assignment_seq == order.tier.rank - Tier.GRID.rank + 1


def test_triage_puts_the_order_into_the_chosen_grid_at_its_entry_tier() -> None:
    held = new(place=Place(None, None, None, "d1"))
    assigned = assign_from_triage(
        held,
        place=PLACE,
        category="illegal-construction",
        department_id="dept-housing",
        entry=Tier.STREET,
        time_limit=LIMITS,
        now=NOW,
    )
    assert (assigned.state, assigned.tier, assigned.unit_id) == (State.OPEN, Tier.STREET, "s1")
    assert (assigned.category, assigned.assignment_seq, assigned.version) == (
        "illegal-construction",
        2,
        2,
    )
    assert assigned.due_at == NOW + LIMITS[Tier.STREET]
    with pytest.raises(TransitionRefused, match="only orders held for triage"):
        assign_from_triage(
            assigned,
            place=PLACE,
            category="x",
            department_id="d",
            entry=Tier.GRID,
            time_limit=LIMITS,
            now=NOW,
        )


def test_a_reopened_order_is_open_again_at_the_tier_that_resolved_it_with_a_new_assignment() -> (
    None
):
    moved = escalate(new(), time_limit=LIMITS, now=NOW)  # held by the community
    done = resolve(moved, now=NOW + timedelta(hours=1))
    later = NOW + timedelta(hours=2)
    assert reopen_applies(done, done.version)
    again = reopen(done, time_limit=LIMITS, now=later)
    assert (again.state, again.tier, again.unit_id) == (State.OPEN, Tier.COMMUNITY, "c1")
    assert (again.assignment_seq, again.version) == (3, done.version + 1)
    assert (again.assigned_at, again.due_at, again.resolved_at) == (
        later,
        later + LIMITS[Tier.COMMUNITY],
        None,
    )
    # The same feedback again finds the order moved on; an open order cannot reopen.
    assert not reopen_applies(again, done.version)
    with pytest.raises(TransitionRefused, match="only resolved orders reopen"):
        reopen(again, time_limit=LIMITS, now=later)


def test_warning_points_are_shares_of_the_limit_on_its_calendar() -> None:
    start = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert warning_points(start, start + timedelta(hours=10), None, "UTC", 0.8, 1.0) == (
        start + timedelta(hours=8),
        start + timedelta(hours=10),
    )
    office = WorkCalendar(hours=["08:30-12:00", "13:30-17:30"])
    limits = TimeLimits({Tier.GRID: timedelta(hours=4)}, office, "Asia/Shanghai")
    friday = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)  # 16:00 in Shanghai
    due = due_after(limits, Tier.GRID, friday)
    yellow, red = warning_points(friday, due, office, "Asia/Shanghai", 0.8, 1.0)
    assert red == due == datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # Monday 11:00
    assert yellow == datetime(2026, 11, 30, 2, 12, tzinfo=UTC)  # Monday 10:12, not 05:00


def test_a_red_warning_goes_to_the_tier_above_and_from_a_department_to_the_district() -> None:
    assert supervisor_of(Tier.GRID, PLACE, "dept-x") == "c1"
    assert supervisor_of(Tier.STREET, PLACE, "dept-x") == "dept-x"
    assert supervisor_of(Tier.DEPARTMENT, PLACE, "dept-x") == "d1"
    no_community = Place("g1", None, "s1", "d1")
    assert supervisor_of(Tier.GRID, no_community, "dept-x") == "s1"
