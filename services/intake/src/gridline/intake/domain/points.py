"""Partners' tips as their work orders move: the status a partner is told of, and the
points a rider earns ("discover → handle → feed back → reward").

Rules: a tip earns its category's points (the catalogue in effect) when the work order it
opened is resolved, once per tip whatever happens after; a tip merged into an order
another report opened (a duplicate, 并单) earns nothing, nor does a tip without a rider,
nor a category worth zero points. Months are the catalogue's time zone's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from gridline.common.events import (
    TierName,
    TipStatus,
    TipStatusChanged,
    WorkOrderAccepted,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderClosed,
    WorkOrderEscalated,
    WorkOrderReopened,
    WorkOrderResolved,
    WorkOrderReturned,
)
from gridline.common.policy.catalogue import Catalogue

# Every move a tip's partner is told of (status callbacks).
WorkOrderEvent = (
    WorkOrderAssigned
    | WorkOrderEscalated
    | WorkOrderResolved
    | WorkOrderReopened
    | WorkOrderAccepted
    | WorkOrderReturned
    | WorkOrderCancelled
    | WorkOrderClosed
)
TipEvent = WorkOrderEvent
# The lifecycle's moves beyond the four intake's status view follows in one handler.
TIP_MOVES = (WorkOrderAccepted, WorkOrderReturned, WorkOrderCancelled, WorkOrderClosed)
STATUS: dict[type, TipStatus] = {
    WorkOrderEscalated: "escalated",
    WorkOrderResolved: "resolved",
    WorkOrderReopened: "reopened",
    WorkOrderAccepted: "accepted",
    WorkOrderReturned: "returned",
    WorkOrderCancelled: "cancelled",
    WorkOrderClosed: "closed",
}

MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Tip:
    """A partner's report on a work order: the one that opened it, or one merged into it."""

    report_id: str
    partner_id: str
    rider_id: str | None
    work_order_id: str
    duplicate: bool
    # The partner's record as intake holds it now: its callbacks wait at notify until
    # notify has followed the partner that far (TipStatusChanged.partner_updated_at).
    partner_updated_at: datetime | None = None


@dataclass(frozen=True)
class Credit:
    """Points earned by a tip; written to the ledger once per tip."""

    report_id: str
    partner_id: str
    rider_id: str
    work_order_id: str
    category: str
    points: int
    street_id: str | None
    credited_at: datetime
    month: str
    event_id: str  # the WorkOrderResolved that earned it


@dataclass(frozen=True)
class Happened:
    """A work-order event as the tips see it: the event, its id and its time."""

    event: WorkOrderEvent
    event_id: str
    at: datetime


def month_of(at: datetime, tz: ZoneInfo) -> str:
    """The ledger month ('YYYY-MM') of an instant, in the catalogue's zone."""
    return at.astimezone(tz).strftime("%Y-%m")


def is_month(text: str) -> bool:
    return MONTH.fullmatch(text) is not None


def status_of(event: WorkOrderEvent) -> TipStatus:
    if isinstance(event, WorkOrderAssigned):
        return "triage" if event.assignment is None else "assigned"
    return STATUS[type(event)]


def holder(event: WorkOrderEvent) -> tuple[TierName | None, str | None, datetime | None]:
    """Who holds (or resolved) the order after `event`, and until when: tier, unit, due."""
    if isinstance(event, WorkOrderResolved):
        return event.tier, event.unit_name, event.due_at
    if isinstance(event, WorkOrderAccepted):
        return event.tier, event.unit_name, event.due_at
    if isinstance(event, WorkOrderCancelled | WorkOrderClosed):  # over: nobody holds it
        return None, event.unit_name, None
    if event.assignment is None:  # held for triage at the district: no tier, no due time
        assert isinstance(event, WorkOrderAssigned | WorkOrderReturned)
        return None, event.triage_unit_name or event.triage_unit_id, None
    a = event.assignment
    return a.tier, a.unit_name, a.due_at


def credits(
    happened: Iterable[Happened],
    tips: Sequence[Tip],
    catalogue: Catalogue,
    tz: ZoneInfo,
) -> list[Credit]:
    """The credits the resolutions in `happened` may earn: one per root tip with a rider,
    at its order's first resolution in the list (the ledger keeps only the first ever)."""
    roots = {t.work_order_id: t for t in tips if not t.duplicate and t.rider_id}
    found: dict[str, Credit] = {}
    for h in happened:
        event = h.event
        tip = roots.get(event.work_order_id)
        if not isinstance(event, WorkOrderResolved) or tip is None or tip.report_id in found:
            continue
        category = catalogue.categories_by_code.get(event.category)
        points = category.points if category is not None else 0
        if points <= 0 or tip.rider_id is None:
            continue
        found[tip.report_id] = Credit(
            report_id=tip.report_id,
            partner_id=tip.partner_id,
            rider_id=tip.rider_id,
            work_order_id=event.work_order_id,
            category=event.category,
            points=points,
            street_id=event.street_id,
            credited_at=h.at,
            month=month_of(h.at, tz),
            event_id=h.event_id,
        )
    return list(found.values())


def status_changes(
    happened: Iterable[Happened], tips: Sequence[Tip], credited: Iterable[Credit]
) -> list[tuple[Happened, TipStatusChanged]]:
    """One TipStatusChanged per tip of each event's order, with the points that event
    credited (only the credits the ledger took: `credited`)."""
    by_order: dict[str, list[Tip]] = {}
    for tip in tips:
        by_order.setdefault(tip.work_order_id, []).append(tip)
    earned = {(c.event_id, c.report_id): c.points for c in credited}
    changes = []
    for h in happened:
        event = h.event
        tier, unit_name, due_at = holder(event)
        for tip in by_order.get(event.work_order_id, ()):
            changes.append(
                (
                    h,
                    TipStatusChanged(
                        partner_id=tip.partner_id,
                        report_id=tip.report_id,
                        rider_id=tip.rider_id,
                        work_order_id=event.work_order_id,
                        version=event.version,
                        status=status_of(event),
                        duplicate=tip.duplicate,
                        category=event.category,
                        category_name_zh=event.category_name_zh,
                        category_name_en=event.category_name_en,
                        time_zone=event.time_zone,
                        tier=tier,
                        unit_name=unit_name,
                        due_at=due_at,
                        points=earned.get((h.event_id, tip.report_id), 0),
                        changed_at=h.at,
                        partner_updated_at=tip.partner_updated_at,
                    ),
                )
            )
    return changes
