"""What a work order's moves say to the world: the events built from a WorkOrder and the
names the policy gives its units and category, and their outbox and history writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, cast

from gridline.common.events import (
    Assignment,
    EscalationReason,
    LifecycleEvent,
    ReportSource,
    TierName,
    UnitLevel,
    WorkOrderAssigned,
    WorkOrderEscalated,
    WorkOrderEvent,
    WorkOrderReopened,
    WorkOrderResolved,
)
from gridline.common.pg import Connection, Outgoing, add_to_outbox
from gridline.routing.adapters import store
from gridline.routing.domain.policy import Policy
from gridline.routing.domain.workorder import State, WorkOrder, supervisor_of, warning_points


@dataclass(frozen=True)
class Change:
    """One move of a work order: its new state, the event that announces it, when it
    happened, and what its history row explains beyond the event's type."""

    order: WorkOrder
    event: WorkOrderEvent | LifecycleEvent
    at: datetime
    detail: dict[str, Any]


async def record(conn: Connection, source: str, changes: Sequence[Change]) -> None:
    """The changes' events into the outbox and their history rows: two statements for any
    number of changes, in the caller's transaction."""
    await add_to_outbox(conn, source, [Outgoing(c.event, c.at) for c in changes])
    await store.record_history(conn, changes)


class RefFields(TypedDict):
    """The fields every work-order event carries (WorkOrderRef), typed so that an event
    built with `**ref_fields(...)` is checked like one built field by field."""

    work_order_id: str
    report_id: str
    version: int
    category: str
    category_name_en: str
    category_name_zh: str
    street_id: str | None
    district_id: str | None
    grid_id: str | None
    community_id: str | None
    policy_version: str
    time_zone: str


def ref_fields(order: WorkOrder, policy: Policy) -> RefFields:
    """The order's reference fields, its category named as the policy names it."""
    category = policy.catalogue.categories_by_code.get(order.category)
    return RefFields(
        work_order_id=order.id,
        report_id=order.report_id,
        version=order.version,
        category=order.category,
        category_name_en=category.name_en if category else order.category,
        category_name_zh=category.name_zh if category else order.category,
        street_id=order.place.street_id,
        district_id=order.place.district_id,
        grid_id=order.place.grid_id,
        community_id=order.place.community_id,
        policy_version=order.policy_version,
        time_zone=policy.catalogue.timezone,
    )


def _tier(order: WorkOrder) -> TierName:
    assert order.tier is not None
    return order.tier.value


def _assignment(order: WorkOrder, policy: Policy) -> Assignment:
    assert order.due_at is not None and order.tier is not None
    zh, en = policy.unit_names(order.unit_id)
    shares = policy.catalogue.warnings
    yellow_at, red_at = warning_points(
        order.assigned_at,
        order.due_at,
        policy.calendar_of(order.category, order.rule_calendar),
        policy.catalogue.timezone,
        shares.yellow,
        shares.red,
    )
    return Assignment(
        seq=order.assignment_seq,
        tier=_tier(order),
        unit_id=order.unit_id,
        unit_name=policy.unit_name(order.unit_id),
        unit_name_zh=zh,
        unit_name_en=en,
        unit_level=cast(UnitLevel, policy.unit_level(order.unit_id)),
        assigned_at=order.assigned_at,
        due_at=order.due_at,
        yellow_at=yellow_at,
        red_at=red_at,
        supervisor_id=supervisor_of(order.tier, order.place, order.department_id),
    )


def assigned(order: WorkOrder, policy: Policy, *, triage_reason: str | None) -> Change:
    """Opened, or placed in a grid after triage: assigned to a unit, or held for triage."""
    triage = order.state is State.TRIAGE
    event = WorkOrderAssigned(
        **ref_fields(order, policy),
        source=cast(ReportSource, order.source),
        lat=order.lat,
        lon=order.lon,
        opened_at=order.opened_at,
        assignment=None if triage else _assignment(order, policy),
        triage_unit_id=order.unit_id if triage else None,
        triage_unit_name=policy.unit_name(order.unit_id) if triage else None,
        triage_reason=triage_reason,
    )
    return Change(order, event, order.assigned_at, {"triage_reason": triage_reason})


def escalated(
    before: WorkOrder,
    after: WorkOrder,
    policy: Policy,
    *,
    reason: EscalationReason,
    note: str | None,
    actor: str | None = None,
) -> Change:
    event = WorkOrderEscalated(
        **ref_fields(after, policy),
        reason=reason,
        note=note,
        from_tier=_tier(before),
        from_unit_id=before.unit_id,
        assignment=_assignment(after, policy),
    )
    # A whistle names its unit; a timeout is sla's move and a rule routing's (queries.actor_of).
    detail = {
        "reason": reason,
        "from": before.unit_id,
        "note": note,
        "actor": actor or _mover(reason),
    }
    return Change(after, event, after.assigned_at, detail)


def _mover(reason: EscalationReason) -> str:
    return "sla" if reason == "timeout" else "routing"


def resolved(
    before: WorkOrder, after: WorkOrder, policy: Policy, *, by_unit: str, note: str | None
) -> Change:
    """Resolved by `by_unit` while `before` held it."""
    assert before.due_at is not None and after.resolved_at is not None
    zh, en = policy.unit_names(before.unit_id)
    event = WorkOrderResolved(
        **ref_fields(after, policy),
        tier=_tier(before),
        unit_id=before.unit_id,
        unit_name=policy.unit_name(before.unit_id),
        unit_name_zh=zh,
        unit_name_en=en,
        resolved_by_unit_id=by_unit,
        opened_at=before.opened_at,
        resolved_at=after.resolved_at,
        due_at=before.due_at,
        note=note,
        resolved_by_tier=after.resolved_tier.value if after.resolved_tier else None,
    )
    detail = {"by": by_unit, "note": note, "actor": by_unit}
    return Change(after, event, after.resolved_at, detail)


def reopened(
    before: WorkOrder,
    after: WorkOrder,
    policy: Policy,
    *,
    feedback_id: str | None = None,
    recurred_by: str | None = None,
    note: str | None = None,
) -> Change:
    """`before`, resolved, reopened by the reporter's rejection `feedback_id`, or by the
    unit `recurred_by` that found the problem back: the event carries the new assignment,
    so sla arms its deadline and notify tells its holder."""
    assert before.resolved_at is not None
    event = WorkOrderReopened(
        **ref_fields(after, policy),
        reason="recurred" if recurred_by else "feedback",
        feedback_id=feedback_id,
        by_unit_id=recurred_by,
        note=note,
        resolved_tier=_tier(before),
        resolved_at=before.resolved_at,
        source=cast(ReportSource, after.source),
        opened_at=after.opened_at,
        assignment=_assignment(after, policy),
    )
    detail = {
        "reason": "recurred" if recurred_by else "feedback",
        "feedback_id": feedback_id,
        "from": before.unit_id,
        "actor": recurred_by or "reporter",
        **({"note": note} if note is not None else {}),
    }
    return Change(after, event, after.assigned_at, detail)
