"""The work order's lifecycle beyond open, escalate and resolve, as pure moves.

assigned (open) → accepted → resolved → closed, with escalate, return, reopen, cancel and
a department's call-in and report-in along the way (docs/architecture.md draws it). Each
move takes the order and returns the next one with its version one higher, or raises
TransitionRefused naming the state and what it allows; closed and cancelled are terminal.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Literal

from gridline.common.policy.tiers import Tier
from gridline.routing.domain.workorder import (
    HELD,
    TERMINAL,
    CallIn,
    Place,
    State,
    TransitionRefused,
    WorkOrder,
    assign_from_triage,
)

CancelReason = Literal["duplicate", "invalid"]
CloseReason = Literal["confirmed", "feedback_window"]

# What each state allows, for the refusals' messages (and the docs' diagram).
ALLOWED: dict[State, tuple[str, ...]] = {
    State.TRIAGE: ("assign", "cancel"),
    State.OPEN: ("accept", "resolve", "escalate", "return", "cancel", "call-in", "report-in"),
    State.ACCEPTED: ("resolve", "escalate", "return", "cancel", "call-in", "report-in"),
    State.RESOLVED: ("close", "reopen"),
    State.CLOSED: (),
    State.CANCELLED: (),
}
# Levels of the units that may call a department in: a street or above (吹哨).
CALLERS = ("street", "district")


def tier_of_level(level: str) -> Tier:
    """The tier a unit of `level` resolves at: its own; a district, above every street,
    counts as the department tier (beyond the street's 95 %)."""
    return Tier.DEPARTMENT if level == "district" else Tier(level)


def refused(order: WorkOrder, move: str) -> TransitionRefused:
    allowed = ", ".join(ALLOWED[order.state]) or "nothing (it is final)"
    return TransitionRefused(
        f"work order {order.id} is {order.state.value}: cannot {move}; {order.state.value}"
        f" allows {allowed}"
    )


def _bump(order: WorkOrder) -> int:
    return order.version + 1


def accept(order: WorkOrder, *, by_unit: str, now: datetime) -> WorkOrder:
    """The holder acknowledges the order (签收). Its due time runs on unchanged."""
    if order.state is not State.OPEN:
        raise refused(order, "accept")
    if by_unit != order.unit_id:
        raise TransitionRefused(
            f"work order {order.id} is held by {order.unit_id}; only its holder accepts it"
        )
    return replace(order, state=State.ACCEPTED, accepted_at=now, version=_bump(order))


def cancel(order: WorkOrder, *, reason: CancelReason, now: datetime) -> WorkOrder:
    """A duplicate or invalid report (作废): final, its deadlines stop."""
    if order.state not in (*HELD, State.TRIAGE):
        raise refused(order, "cancel")
    return replace(
        order,
        state=State.CANCELLED,
        ended_at=now,
        end_reason=reason,
        due_at=None,
        version=_bump(order),
    )


def close(order: WorkOrder, *, reason: CloseReason, now: datetime) -> WorkOrder:
    """A resolution confirmed by its reporter, or left unrejected for the feedback
    window (结案): final."""
    if order.state is not State.RESOLVED:
        raise refused(order, "close")
    return replace(order, state=State.CLOSED, ended_at=now, end_reason=reason, version=_bump(order))


def close_due(order: WorkOrder, *, window: timedelta, now: datetime) -> bool:
    """The feedback window of a resolved order has passed without a rejection."""
    return (
        order.state is State.RESOLVED
        and order.resolved_at is not None
        and order.resolved_at + window <= now
    )


def return_to_triage(order: WorkOrder, *, district_id: str, now: datetime) -> WorkOrder:
    """Returned (退回) without a target: held for triage at its district, never lost; the
    old assignment ends (a new number, no due time)."""
    if order.state not in HELD:
        raise refused(order, "return")
    return replace(
        order,
        state=State.TRIAGE,
        tier=None,
        unit_id=district_id,
        assignment_seq=order.assignment_seq + 1,
        assigned_at=now,
        due_at=None,
        accepted_at=None,
        version=_bump(order),
    )


def return_to(
    order: WorkOrder,
    *,
    place: Place,
    category: str,
    department_id: str,
    entry: Tier,
    time_limit: dict[Tier, timedelta],
    now: datetime,
) -> WorkOrder:
    """Returned (退回) as in the wrong place or category: placed again, as triage places
    an order, at the entry tier of `category` in `place`'s grid, with a fresh due time."""
    if order.state not in HELD:
        raise refused(order, "return")
    held = replace(order, state=State.TRIAGE, accepted_at=None)
    return assign_from_triage(
        held,
        place=place,
        category=category,
        department_id=department_id,
        entry=entry,
        time_limit=time_limit,
        now=now,
    )


def call_in(
    order: WorkOrder,
    *,
    department_id: str,
    by_unit: str,
    by_level: str,
    report_in_limit: timedelta,
    now: datetime,
) -> WorkOrder:
    """A street (or above) calls a department in (吹哨); it must report in by the limit.
    The order stays with its holder; one call at a time awaits its report-in."""
    if order.state not in HELD:
        raise refused(order, "call a department in")
    if by_level not in CALLERS:
        raise TransitionRefused(
            f"a {by_level} cannot call a department in; a street or district calls (吹哨)"
        )
    if order.call_in is not None and order.call_in.pending:
        raise TransitionRefused(
            f"work order {order.id} already awaits department {order.call_in.department_id}"
            " reporting in; one call at a time"
        )
    seq = order.call_in.seq + 1 if order.call_in else 1
    call = CallIn(seq, department_id, by_unit, now, now + report_in_limit)
    return replace(order, call_in=call, version=_bump(order))


def report_in(order: WorkOrder, *, by_unit: str, now: datetime) -> WorkOrder:
    """The called department reports in (报到), late or on time."""
    if order.state not in HELD:
        raise refused(order, "report in")
    call = order.call_in
    if call is None or not call.pending:
        raise TransitionRefused(f"work order {order.id} has no call-in awaiting a report-in")
    if by_unit != call.department_id:
        raise TransitionRefused(
            f"department {call.department_id} was called in to work order {order.id}, not {by_unit}"
        )
    return replace(order, call_in=replace(call, reported_in_at=now), version=_bump(order))


def call_overdue_applies(order: WorkOrder, call_seq: int) -> bool:
    """A report-in deadline counts only for the call it was set for, once, while the
    department has not reported in and the order is still worked on."""
    call = order.call_in
    return (
        order.state in HELD
        and call is not None
        and call.seq == call_seq
        and call.pending
        and call.escalated_at is None
    )


def escalate_call(order: WorkOrder, *, now: datetime) -> WorkOrder:
    """The department did not report in by its limit: the call goes to the district."""
    call = order.call_in
    if order.state not in HELD or call is None or not call.pending or call.escalated_at:
        raise TransitionRefused(f"work order {order.id} has no overdue call-in to escalate")
    return replace(order, call_in=replace(call, escalated_at=now), version=_bump(order))


def is_terminal(order: WorkOrder) -> bool:
    return order.state in TERMINAL
