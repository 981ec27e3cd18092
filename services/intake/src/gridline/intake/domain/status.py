"""What an Open311 client sees of a work order: status, agency and notes in words."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from gridline.common.events import (
    LifecycleEvent,
    WorkOrderAccepted,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderClosed,
    WorkOrderEscalated,
    WorkOrderReopened,
    WorkOrderResolved,
    WorkOrderReturned,
)

WorkOrderEvent = WorkOrderAssigned | WorkOrderEscalated | WorkOrderResolved | WorkOrderReopened

TIER_WORDS = {
    "grid": "grid (网格)",
    "community": "community (社区)",
    "street": "street (街道)",
    "department": "department (职能部门)",
}


def local(at: datetime, tz: ZoneInfo) -> str:
    """A due time as the city reads it: local time, to the minute, with its offset."""
    return at.astimezone(tz).isoformat(timespec="minutes")


@dataclass(frozen=True)
class RequestStatus:
    status: str  # open | closed
    agency_responsible: str
    expected_datetime: datetime | None
    status_notes: str


def assigned(unit_name: str, tier: str, due_at: datetime, tz: ZoneInfo) -> RequestStatus:
    return RequestStatus(
        "open",
        unit_name,
        due_at,
        f"Assigned at tier {TIER_WORDS[tier]} to {unit_name}; due {local(due_at, tz)}.",
    )


def held_for_triage(unit_name: str, reason: str | None) -> RequestStatus:
    why = f": {reason}" if reason else ""
    return RequestStatus(
        "open",
        unit_name,
        None,
        f"Held for manual triage at district {unit_name}{why}.",
    )


def escalated(
    unit_name: str, from_tier: str, tier: str, reason: str, due_at: datetime, tz: ZoneInfo
) -> RequestStatus:
    because = {
        "timeout": "the time limit passed",
        "whistle": "the handler called it beyond its authority (吹哨)",
        "rule": "a routing rule required it",
    }[reason]
    return RequestStatus(
        "open",
        unit_name,
        due_at,
        f"Escalated from tier {TIER_WORDS[from_tier]} to tier {TIER_WORDS[tier]}, {unit_name}, "
        f"because {because}; due {local(due_at, tz)}.",
    )


REOPENED_BECAUSE = {
    "feedback": "the reporter rejected the resolution",
    "recurred": "the problem came back",
}


def reopened(
    unit_name: str, tier: str, due_at: datetime, tz: ZoneInfo, reason: str = "feedback"
) -> RequestStatus:
    return RequestStatus(
        "open",
        unit_name,
        due_at,
        f"Reopened: {REOPENED_BECAUSE[reason]}. Assigned again at tier "
        f"{TIER_WORDS[tier]} to {unit_name}; due {local(due_at, tz)}.",
    )


def resolved(unit_name: str, tier: str, note: str | None, due_at: datetime) -> RequestStatus:
    extra = f" Note: {note}" if note else ""
    return RequestStatus(
        "closed", unit_name, due_at, f"Resolved at tier {TIER_WORDS[tier]} by {unit_name}.{extra}"
    )


@dataclass(frozen=True)
class StatusChange:
    """A request's view as one work-order event leaves it; a higher version wins."""

    work_order_id: str
    version: int
    view: RequestStatus
    at: datetime
    service_code: str  # the order's category: triage may correct the reported one


def view_of(event: WorkOrderEvent, tz: ZoneInfo) -> RequestStatus:
    """The status a client sees after `event`, due times in the city's zone `tz`."""
    if isinstance(event, WorkOrderAssigned):
        if event.assignment is None:
            return held_for_triage(
                event.triage_unit_name or event.triage_unit_id or "?", event.triage_reason
            )
        a = event.assignment
        return assigned(a.unit_name, a.tier, a.due_at, tz)
    if isinstance(event, WorkOrderEscalated):
        a = event.assignment
        return escalated(a.unit_name, event.from_tier, a.tier, event.reason, a.due_at, tz)
    if isinstance(event, WorkOrderReopened):
        a = event.assignment
        return reopened(a.unit_name, a.tier, a.due_at, tz, event.reason)
    return resolved(event.unit_name, event.tier, event.note, event.due_at)


def change_of(event: WorkOrderEvent, at: datetime, tz: ZoneInfo) -> StatusChange:
    return StatusChange(event.work_order_id, event.version, view_of(event, tz), at, event.category)


def lifecycle_view(event: LifecycleEvent, tz: ZoneInfo) -> RequestStatus | None:
    """The status after one of the lifecycle's further moves; None when the move leaves
    the request's view as it was (a department called in, reporting in, escalated)."""
    if isinstance(event, WorkOrderAccepted):
        return RequestStatus(
            "open",
            event.unit_name,
            event.due_at,
            f"Accepted (签收) at tier {TIER_WORDS[event.tier]} by {event.unit_name}; "
            f"due {local(event.due_at, tz)}.",
        )
    if isinstance(event, WorkOrderReturned):
        if event.assignment is None:
            unit = event.triage_unit_name or event.triage_unit_id or "?"
            return held_for_triage(unit, f"returned (退回): {event.reason}")
        a = event.assignment
        return RequestStatus(
            "open",
            a.unit_name,
            a.due_at,
            f"Returned (退回): {event.reason}. Assigned again at tier {TIER_WORDS[a.tier]} "
            f"to {a.unit_name}; due {local(a.due_at, tz)}.",
        )
    if isinstance(event, WorkOrderCancelled):
        note = f" Note: {event.note}" if event.note else ""
        return RequestStatus(
            "closed", event.unit_name, None, f"Cancelled (作废) as {event.reason}.{note}"
        )
    if isinstance(event, WorkOrderClosed):
        why = (
            "the reporter confirmed the resolution"
            if event.reason == "confirmed"
            else "the feedback window passed without a rejection"
        )
        return RequestStatus("closed", event.unit_name, None, f"Closed (结案): {why}.")
    return None


def newest(changes: Iterable[StatusChange]) -> list[StatusChange]:
    """One change per work order, the highest version: a set-based update must not touch a
    row twice, and an older state never overwrites a newer one."""
    best: dict[str, StatusChange] = {}
    for change in changes:
        held = best.get(change.work_order_id)
        if held is None or change.version > held.version:
            best[change.work_order_id] = change
    return list(best.values())


def received_notice(entry_tier: str, department_en: str, department_zh: str) -> str:
    """What a reporter is told on acceptance: who will handle it first (zh-CN and English)."""
    who = {
        "grid": ("the grid worker of the grid that holds this location", "所在网格的网格员"),
        "community": ("the community (社区) that holds this location", "所在社区"),
        "street": ("the street office (街道) that holds this location", "所在街道"),
        "department": (department_en, department_zh),
    }[entry_tier]
    return f"Received; it goes to {who[0]}. 已受理，将交{who[1]}处置。"
