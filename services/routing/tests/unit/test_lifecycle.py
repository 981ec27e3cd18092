"""The work-order lifecycle as a pure state machine: each move, its refusals, and the
rules that hold for every sequence of moves (hypothesis)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridline.common.policy.tiers import Tier
from gridline.routing.domain import lifecycle
from gridline.routing.domain.workorder import (
    HELD,
    TERMINAL,
    Place,
    State,
    TransitionRefused,
    WorkOrder,
    assign_from_triage,
    escalate,
    open_order,
    reopen,
    resolve,
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
OTHER = Place("g9", "c9", "s9", "d1")
HOUR = timedelta(hours=1)


def new(place: Place = PLACE) -> WorkOrder:
    return open_order(
        order_id="wo1",
        report_id="r1",
        category="exposed-garbage",
        department_id="dept-um",
        source="citizen",
        lat=31.7,
        lon=119.9,
        place=place,
        entry=Tier.GRID,
        time_limit=LIMITS,
        now=NOW,
        policy_version="p1",
    )


# -- each move ------------------------------------------------------------------------


def test_the_holder_accepts_and_the_due_time_runs_on() -> None:
    order = new()
    done = lifecycle.accept(order, by_unit="g1", now=NOW + HOUR)
    assert (done.state, done.accepted_at, done.due_at) == (State.ACCEPTED, NOW + HOUR, order.due_at)
    assert done.version == order.version + 1


def test_only_the_holder_accepts_and_only_once() -> None:
    with pytest.raises(TransitionRefused, match="only its holder"):
        lifecycle.accept(new(), by_unit="s1", now=NOW)
    done = lifecycle.accept(new(), by_unit="g1", now=NOW)
    with pytest.raises(TransitionRefused, match="is accepted: cannot accept"):
        lifecycle.accept(done, by_unit="g1", now=NOW)


def test_escalating_an_accepted_order_needs_the_new_holder_to_accept_again() -> None:
    accepted = lifecycle.accept(new(), by_unit="g1", now=NOW)
    up = escalate(accepted, time_limit=LIMITS, now=NOW + HOUR)
    assert (up.state, up.tier, up.unit_id, up.accepted_at) == (
        State.OPEN,
        Tier.COMMUNITY,
        "c1",
        None,
    )


def test_a_street_resolving_its_grids_order_is_a_street_resolution() -> None:
    done = resolve(new(), now=NOW, by_tier=Tier.STREET)
    assert (done.tier, done.resolved_tier) == (Tier.GRID, Tier.STREET)
    assert resolve(new(), now=NOW).resolved_tier is Tier.GRID


def test_return_without_target_holds_for_triage_at_the_district() -> None:
    order = lifecycle.accept(new(), by_unit="g1", now=NOW)
    back = lifecycle.return_to_triage(order, district_id="d1", now=NOW + HOUR)
    assert (back.state, back.tier, back.unit_id, back.due_at) == (State.TRIAGE, None, "d1", None)
    assert back.assignment_seq == order.assignment_seq + 1


def test_return_with_a_target_places_the_order_again_with_a_fresh_due_time() -> None:
    back = lifecycle.return_to(
        new(),
        place=OTHER,
        category="dirty-road",
        department_id="dept-um",
        entry=Tier.COMMUNITY,
        time_limit=LIMITS,
        now=NOW + HOUR,
    )
    assert (back.state, back.unit_id, back.category, back.place) == (
        State.OPEN,
        "c9",
        "dirty-road",
        OTHER,
    )
    assert back.due_at == NOW + HOUR + LIMITS[Tier.COMMUNITY]
    assert back.assignment_seq == 2


def test_cancel_is_final_and_names_what_the_state_allows() -> None:
    gone = lifecycle.cancel(new(), reason="duplicate", now=NOW)
    assert (gone.state, gone.end_reason, gone.due_at) == (State.CANCELLED, "duplicate", None)
    with pytest.raises(
        TransitionRefused, match="cancelled; only open or accepted orders are resolved"
    ):
        resolve(gone, now=NOW)
    with pytest.raises(TransitionRefused, match=r"allows nothing \(it is final\)"):
        lifecycle.accept(gone, by_unit="g1", now=NOW)


def test_a_resolved_order_is_closed_on_confirmation_or_after_the_window() -> None:
    done = resolve(new(), now=NOW)
    window = timedelta(hours=72)
    assert not lifecycle.close_due(done, window=window, now=NOW + window - HOUR)
    assert lifecycle.close_due(done, window=window, now=NOW + window)
    closed = lifecycle.close(done, reason="feedback_window", now=NOW + window)
    assert (closed.state, closed.end_reason) == (State.CLOSED, "feedback_window")
    with pytest.raises(TransitionRefused, match="open: cannot close; open allows accept"):
        lifecycle.close(new(), reason="confirmed", now=NOW)
    with pytest.raises(TransitionRefused):
        reopen(closed, time_limit=LIMITS, now=NOW)


def test_reopen_counts_rework() -> None:
    again = reopen(resolve(new(), now=NOW), time_limit=LIMITS, now=NOW + HOUR)
    assert (again.state, again.reopen_count, again.resolved_tier) == (State.OPEN, 1, None)


def test_a_street_calls_a_department_which_reports_in() -> None:
    called = lifecycle.call_in(
        new(),
        department_id="dept-w",
        by_unit="s1",
        by_level="street",
        report_in_limit=2 * HOUR,
        now=NOW,
    )
    call = called.call_in
    assert call is not None and (call.seq, call.due_at, call.pending) == (1, NOW + 2 * HOUR, True)
    assert (called.unit_id, called.state) == ("g1", State.OPEN)  # the holder keeps it
    with pytest.raises(TransitionRefused, match="one call at a time"):
        lifecycle.call_in(
            called,
            department_id="dept-x",
            by_unit="s1",
            by_level="street",
            report_in_limit=HOUR,
            now=NOW,
        )
    with pytest.raises(TransitionRefused, match="not dept-x"):
        lifecycle.report_in(called, by_unit="dept-x", now=NOW)
    done = lifecycle.report_in(called, by_unit="dept-w", now=NOW + HOUR)
    assert done.call_in is not None and done.call_in.reported_in_at == NOW + HOUR
    assert not lifecycle.call_overdue_applies(done, 1)
    with pytest.raises(TransitionRefused, match="no call-in awaiting"):
        lifecycle.report_in(done, by_unit="dept-w", now=NOW)


def test_a_grid_or_community_cannot_call_a_department_in() -> None:
    for level in ("grid", "community", "department"):
        with pytest.raises(TransitionRefused, match="a street or district calls"):
            lifecycle.call_in(
                new(),
                department_id="dept-w",
                by_unit="x",
                by_level=level,
                report_in_limit=HOUR,
                now=NOW,
            )


def test_a_call_not_reported_in_escalates_to_the_district_once() -> None:
    called = lifecycle.call_in(
        new(),
        department_id="dept-w",
        by_unit="s1",
        by_level="street",
        report_in_limit=HOUR,
        now=NOW,
    )
    assert lifecycle.call_overdue_applies(called, 1)
    assert not lifecycle.call_overdue_applies(called, 2)
    up = lifecycle.escalate_call(called, now=NOW + HOUR)
    assert up.call_in is not None and up.call_in.escalated_at == NOW + HOUR
    assert not lifecycle.call_overdue_applies(up, 1)
    late = lifecycle.report_in(up, by_unit="dept-w", now=NOW + 2 * HOUR)
    assert late.call_in is not None and late.call_in.reported_in_at == NOW + 2 * HOUR


# -- every sequence of moves ----------------------------------------------------------

Move = Callable[[WorkOrder, datetime], WorkOrder]
MOVES: dict[str, Move] = {
    "accept": lambda o, t: lifecycle.accept(o, by_unit=o.unit_id, now=t),
    "accept_other": lambda o, t: lifecycle.accept(o, by_unit="stranger", now=t),
    "escalate": lambda o, t: escalate(o, time_limit=LIMITS, now=t),
    "resolve": lambda o, t: resolve(o, now=t),
    "resolve_by_street": lambda o, t: resolve(o, now=t, by_tier=Tier.STREET),
    "reopen": lambda o, t: reopen(o, time_limit=LIMITS, now=t),
    "return_triage": lambda o, t: lifecycle.return_to_triage(o, district_id="d1", now=t),
    "return_to": lambda o, t: lifecycle.return_to(
        o,
        place=OTHER,
        category="dirty-road",
        department_id="dept-um",
        entry=Tier.GRID,
        time_limit=LIMITS,
        now=t,
    ),
    "assign": lambda o, t: assign_from_triage(
        o,
        place=PLACE,
        category="exposed-garbage",
        department_id="dept-um",
        entry=Tier.GRID,
        time_limit=LIMITS,
        now=t,
    ),
    "cancel": lambda o, t: lifecycle.cancel(o, reason="invalid", now=t),
    "close": lambda o, t: lifecycle.close(o, reason="confirmed", now=t),
    "call_in": lambda o, t: lifecycle.call_in(
        o, department_id="dept-w", by_unit="s1", by_level="street", report_in_limit=HOUR, now=t
    ),
    "report_in": lambda o, t: lifecycle.report_in(o, by_unit="dept-w", now=t),
    "escalate_call": lambda o, t: lifecycle.escalate_call(o, now=t),
}


def check_valid(order: WorkOrder) -> None:
    """What every reachable order satisfies."""
    assert order.state in State
    if order.state in HELD:
        assert order.tier is not None and order.due_at is not None and order.unit_id
        assert order.resolved_at is None and order.ended_at is None
        assert (order.state is State.ACCEPTED) == (order.accepted_at is not None)
    if order.state is State.TRIAGE:
        assert order.tier is None and order.due_at is None and order.unit_id == "d1"
    if order.state is State.RESOLVED:
        assert order.resolved_at is not None and order.resolved_tier is not None
    if order.state in TERMINAL:
        assert order.ended_at is not None and order.end_reason is not None
    call = order.call_in
    if call is not None:
        assert call.due_at > call.called_at
        assert call.escalated_at is None or call.escalated_at >= call.due_at - HOUR


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(sorted(MOVES)), max_size=30))
def test_no_sequence_of_moves_leaves_an_invalid_order(moves: list[str]) -> None:
    order = new()
    now = NOW
    for name in moves:
        now += HOUR
        before = order
        try:
            after = MOVES[name](order, now)
        except TransitionRefused as refusal:
            assert str(refusal)
            continue
        if name == "assign":
            assert before.state is State.TRIAGE
        # a terminal state takes no move
        assert before.state not in TERMINAL, (name, before.state)
        check_valid(after)
        # versions strictly increase, assignments never go back
        assert after.version > before.version
        assert after.assignment_seq >= before.assignment_seq
        # escalation only goes up
        if name == "escalate":
            assert before.tier is not None and after.tier is not None
            assert after.tier.rank > before.tier.rank
        # rework is counted exactly on reopen
        assert after.reopen_count == before.reopen_count + (name == "reopen")
        order = after


@given(st.sampled_from(sorted(MOVES)), st.sampled_from(["cancel", "close"]))
def test_a_terminal_order_takes_no_move(move: str, end: str) -> None:
    resolved = resolve(new(), now=NOW)
    final = (
        lifecycle.close(resolved, reason="confirmed", now=NOW)
        if end == "close"
        else lifecycle.cancel(new(), reason="duplicate", now=NOW)
    )
    with pytest.raises(TransitionRefused):
        MOVES[move](final, NOW + HOUR)
