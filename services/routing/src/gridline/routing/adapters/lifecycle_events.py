"""What the lifecycle's further moves say to the world (accept, return, cancel, close,
call-in, report-in, the call's escalation): one Change each, with its event and the
history row's actor and reason. adapters/events.py builds the first four moves' events."""

from __future__ import annotations

from datetime import datetime

from gridline.common.events import (
    DepartmentCalledIn,
    DepartmentCallEscalated,
    DepartmentReportedIn,
    WorkOrderAccepted,
    WorkOrderCancelled,
    WorkOrderClosed,
    WorkOrderReturned,
)
from gridline.routing.adapters.events import Change, _assignment, _tier, ref_fields
from gridline.routing.domain.lifecycle import CancelReason, CloseReason
from gridline.routing.domain.policy import Policy
from gridline.routing.domain.workorder import CallIn, State, WorkOrder


def _department(call: CallIn, policy: Policy) -> dict[str, str]:
    zh, en = policy.unit_names(call.department_id)
    return {
        "department_id": call.department_id,
        "department_name_zh": zh,
        "department_name_en": en,
    }


def accepted(after: WorkOrder, policy: Policy, *, by_unit: str) -> Change:
    assert after.accepted_at is not None and after.due_at is not None
    event = WorkOrderAccepted(
        **ref_fields(after, policy),
        tier=_tier(after),
        unit_id=after.unit_id,
        unit_name=policy.unit_name(after.unit_id),
        assignment_seq=after.assignment_seq,
        accepted_at=after.accepted_at,
        due_at=after.due_at,
    )
    return Change(after, event, after.accepted_at, {"actor": by_unit})


def returned(
    before: WorkOrder, after: WorkOrder, policy: Policy, *, by_unit: str, reason: str
) -> Change:
    """Placed again (a new assignment) or held for triage at the district."""
    triage = after.state is State.TRIAGE
    event = WorkOrderReturned(
        **ref_fields(after, policy),
        reason=reason,
        by_unit_id=by_unit,
        from_tier=_tier(before),
        from_unit_id=before.unit_id,
        assignment=None if triage else _assignment(after, policy),
        triage_unit_id=after.unit_id if triage else None,
        triage_unit_name=policy.unit_name(after.unit_id) if triage else None,
        returned_at=after.assigned_at,
    )
    detail = {
        "actor": by_unit,
        "reason": reason,
        "from": before.unit_id,
        "category": after.category,
        "grid_id": after.place.grid_id,
    }
    return Change(after, event, after.assigned_at, detail)


def cancelled(
    after: WorkOrder, policy: Policy, *, by_unit: str, reason: CancelReason, note: str | None
) -> Change:
    assert after.ended_at is not None
    event = WorkOrderCancelled(
        **ref_fields(after, policy),
        reason=reason,
        note=note,
        by_unit_id=by_unit,
        unit_id=after.unit_id,
        unit_name=policy.unit_name(after.unit_id),
        cancelled_at=after.ended_at,
    )
    return Change(after, event, after.ended_at, {"actor": by_unit, "reason": reason, "note": note})


def closed(
    after: WorkOrder, policy: Policy, *, reason: CloseReason, feedback_id: str | None
) -> Change:
    """Closed on the reporter's confirmation (`feedback_id`) or by the window's sweep."""
    assert after.ended_at is not None and after.resolved_at is not None
    event = WorkOrderClosed(
        **ref_fields(after, policy),
        reason=reason,
        feedback_id=feedback_id,
        unit_id=after.unit_id,
        unit_name=policy.unit_name(after.unit_id),
        resolved_at=after.resolved_at,
        closed_at=after.ended_at,
    )
    actor = "reporter" if reason == "confirmed" else "routing"  # routing's window sweep
    detail = {"actor": actor, "reason": reason, "feedback_id": feedback_id}
    return Change(after, event, after.ended_at, detail)


def called_in(after: WorkOrder, policy: Policy, *, note: str | None) -> Change:
    call = after.call_in
    assert call is not None
    event = DepartmentCalledIn(
        **ref_fields(after, policy),
        **_department(call, policy),
        call_seq=call.seq,
        called_by_unit_id=call.called_by,
        called_at=call.called_at,
        report_in_due_at=call.due_at,
        note=note,
    )
    detail = {
        "actor": call.called_by,
        "department_id": call.department_id,
        "report_in_due_at": call.due_at.isoformat(),
        "note": note,
    }
    return Change(after, event, call.called_at, detail)


def reported_in(after: WorkOrder, policy: Policy) -> Change:
    call = after.call_in
    assert call is not None and call.reported_in_at is not None
    late = call.reported_in_at > call.due_at
    event = DepartmentReportedIn(
        **ref_fields(after, policy),
        **_department(call, policy),
        call_seq=call.seq,
        reported_in_at=call.reported_in_at,
        late=late,
    )
    detail = {"actor": call.department_id, "late": late}
    return Change(after, event, call.reported_in_at, detail)


def call_escalated(after: WorkOrder, policy: Policy, *, now: datetime) -> Change:
    """The call goes to the order's district (the city's first district when the order
    has none, as triage does)."""
    call = after.call_in
    assert call is not None
    district = after.place.district_id or policy.jurisdiction.default_district_id()
    event = DepartmentCallEscalated(
        **ref_fields(after, policy),
        **_department(call, policy),
        call_seq=call.seq,
        report_in_due_at=call.due_at,
        escalated_at=now,
        to_unit_id=district,
        to_unit_name=policy.unit_name(district),
    )
    detail = {
        "actor": "sla",  # the report-in deadline sla keeps
        "reason": "report-in overdue",
        "department_id": call.department_id,
        "to": district,
    }
    return Change(after, event, now, detail)
