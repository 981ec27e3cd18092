"""A report's timeline: the entries events leave, their order, and the summary of a report
(state, tier, tags and counts) that GET /v1/reports/{id} shows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from gridline.common.events import (
    DepartmentCalledIn,
    DepartmentReportedIn,
    LifecycleEvent,
    ReportSubmitted,
    WorkOrderAccepted,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderClosed,
    WorkOrderEscalated,
    WorkOrderReopened,
    WorkOrderReturned,
)
from gridline.intake.domain.status import WorkOrderEvent

# Ranks order entries by cause, not by clock: a report is received and tagged before its
# order's first event; feedback on a resolution (version v) comes after it and before the
# reopening it causes (version v + 1).
RECEIVED_RANK = -2
TAGGED_RANK = -1


def work_order_rank(version: int) -> int:
    return 2 * version


def feedback_rank(resolved_version: int) -> int:
    return 2 * resolved_version + 1


# Every kind of entry; the migrations' CHECK and the API's schema list the same.
Kind = Literal[
    "received",
    "tagged",
    "assigned",
    "escalated",
    "resolved",
    "reopened",
    "feedback",
    "accepted",
    "returned",
    "cancelled",
    "closed",
    "called_in",
    "reported_in",
    "call_escalated",
]
KINDS: tuple[str, ...] = get_args(Kind)


@dataclass(frozen=True)
class Entry:
    """One row of a timeline; `entry_id` is the id of the event it comes from."""

    entry_id: str
    work_order_id: str
    report_id: str | None  # None: an entry of the work order, shared by its reports
    kind: str
    rank: int
    at: datetime
    detail: dict[str, Any]


def of_report(event: ReportSubmitted, event_id: str) -> list[Entry]:
    """Received, at acceptance, and tagged, with what intake read off the report."""
    wo, rid = event.work_order_id, event.report_id
    received = {"source": event.source, "service_code": event.service_code}
    if event.duplicate_of:
        received["duplicate_of"] = event.duplicate_of
    return [
        Entry(
            f"{event_id}:received", wo, rid, "received", RECEIVED_RANK, event.submitted_at, received
        ),
        Entry(
            f"{event_id}:tagged",
            wo,
            rid,
            "tagged",
            TAGGED_RANK,
            event.submitted_at,
            event.tags.model_dump(mode="json"),
        ),
    ]


def _due(at: datetime) -> str:
    return at.isoformat()


def of_work_order(event: WorkOrderEvent, event_id: str, at: datetime) -> Entry:
    """The entry a work-order event leaves, at the time the event happened."""
    detail: dict[str, Any]
    if isinstance(event, WorkOrderAssigned):
        kind = "assigned"
        a = event.assignment
        if a is None:
            detail = {
                "state": "triage",
                "unit_id": event.triage_unit_id,
                "unit_name": event.triage_unit_name,
                "reason": event.triage_reason,
            }
        else:
            detail = {
                "state": "open",
                "tier": a.tier,
                "unit_id": a.unit_id,
                "unit_name": a.unit_name,
                "due_at": _due(a.due_at),
            }
    elif isinstance(event, WorkOrderEscalated):
        kind = "escalated"
        a = event.assignment
        detail = {
            "state": "open",
            "reason": event.reason,
            "note": event.note,
            "from_tier": event.from_tier,
            "tier": a.tier,
            "unit_id": a.unit_id,
            "unit_name": a.unit_name,
            "due_at": _due(a.due_at),
        }
    elif isinstance(event, WorkOrderReopened):
        kind = "reopened"
        a = event.assignment
        detail = {
            "state": "open",
            "reason": event.reason,
            "feedback_id": event.feedback_id,
            "tier": a.tier,
            "unit_id": a.unit_id,
            "unit_name": a.unit_name,
            "due_at": _due(a.due_at),
        }
    else:
        kind = "resolved"
        detail = {
            "state": "resolved",
            "tier": event.tier,
            "unit_id": event.unit_id,
            "unit_name": event.unit_name,
            "note": event.note,
        }
    detail["version"] = event.version
    return Entry(
        event_id, event.work_order_id, None, kind, work_order_rank(event.version), at, detail
    )


def of_lifecycle(event: LifecycleEvent, event_id: str, at: datetime) -> Entry:
    """The entry one of the lifecycle's further moves leaves; those that change the
    order's state say so (a call-in's entries leave it as it was)."""
    detail: dict[str, Any]
    if isinstance(event, WorkOrderAccepted):
        kind = "accepted"
        detail = {"state": "accepted", "tier": event.tier, "unit_id": event.unit_id}
    elif isinstance(event, WorkOrderReturned):
        kind = "returned"
        a = event.assignment
        detail = {"reason": event.reason, "from_unit_id": event.from_unit_id}
        if a is None:
            detail |= {"state": "triage", "unit_id": event.triage_unit_id}
        else:
            detail |= {
                "state": "open",
                "tier": a.tier,
                "unit_id": a.unit_id,
                "due_at": _due(a.due_at),
            }
    elif isinstance(event, WorkOrderCancelled):
        kind = "cancelled"
        detail = {"state": "cancelled", "reason": event.reason, "note": event.note}
    elif isinstance(event, WorkOrderClosed):
        kind = "closed"
        detail = {"state": "closed", "reason": event.reason}
    elif isinstance(event, DepartmentCalledIn):
        kind = "called_in"
        detail = {
            "department_id": event.department_id,
            "report_in_due_at": _due(event.report_in_due_at),
        }
    elif isinstance(event, DepartmentReportedIn):
        kind = "reported_in"
        detail = {"department_id": event.department_id, "late": event.late}
    else:
        kind = "call_escalated"
        detail = {"department_id": event.department_id, "to_unit_id": event.to_unit_id}
    detail["version"] = event.version
    return Entry(
        event_id, event.work_order_id, None, kind, work_order_rank(event.version), at, detail
    )


def of_feedback(
    feedback_id: str,
    work_order_id: str,
    report_id: str,
    resolved_version: int,
    at: datetime,
    detail: dict[str, Any],
) -> Entry:
    return Entry(
        feedback_id,
        work_order_id,
        report_id,
        "feedback",
        feedback_rank(resolved_version),
        at,
        detail,
    )


def in_order(entries: Iterable[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: (e.rank, e.at, e.entry_id))


@dataclass(frozen=True)
class Summary:
    """What a report's timeline says about it now."""

    state: str  # received | open | accepted | triage | resolved | closed | cancelled
    tier: str | None
    tags: dict[str, Any] | None
    counts: dict[str, int]


WORK_ORDER_KINDS = (
    "assigned",
    "escalated",
    "resolved",
    "reopened",
    "accepted",
    "returned",
    "cancelled",
    "closed",
)


def summary(entries: Sequence[Entry]) -> Summary:
    ordered = in_order(entries)
    moves = [e for e in ordered if e.kind in WORK_ORDER_KINDS]
    latest = moves[-1] if moves else None
    state = str(latest.detail.get("state", "open")) if latest else "received"
    tier = latest.detail.get("tier") if latest else None
    tagged = next((e.detail for e in ordered if e.kind == "tagged"), None)
    kinds = Counter(e.kind for e in ordered)
    counts = {
        "escalations": kinds["escalated"],
        "resolutions": kinds["resolved"],
        "reopenings": kinds["reopened"],
        "feedback": kinds["feedback"],
    }
    return Summary(state, tier, tagged, counts)
