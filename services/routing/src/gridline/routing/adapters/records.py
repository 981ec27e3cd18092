"""The one flat form of a work order: the columns of its row and the fields of its view."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gridline.common.policy.tiers import Tier
from gridline.routing.domain.workorder import CallIn, Place, State, WorkOrder

# Column name and PostgreSQL type, in table order; the view takes the same names.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "text"),
    ("report_id", "text"),
    ("category", "text"),
    ("department_id", "text"),
    ("source", "text"),
    ("lat", "float8"),
    ("lon", "float8"),
    ("grid_id", "text"),
    ("community_id", "text"),
    ("street_id", "text"),
    ("district_id", "text"),
    ("state", "text"),
    ("tier", "text"),
    ("unit_id", "text"),
    ("assignment_seq", "int4"),
    ("assigned_at", "timestamptz"),
    ("due_at", "timestamptz"),
    ("opened_at", "timestamptz"),
    ("resolved_at", "timestamptz"),
    ("version", "int4"),
    ("policy_version", "text"),
    ("rule_terms", "jsonb"),
    # the lifecycle (migration 0005)
    ("accepted_at", "timestamptz"),
    ("ended_at", "timestamptz"),
    ("end_reason", "text"),
    ("resolved_tier", "text"),
    ("reopen_count", "int4"),
    ("call_seq", "int4"),
    ("call_department_id", "text"),
    ("call_by", "text"),
    ("called_at", "timestamptz"),
    ("call_due_at", "timestamptz"),
    ("reported_in_at", "timestamptz"),
    ("call_escalated_at", "timestamptz"),
)
NAMES = tuple(name for name, _ in COLUMNS)


def as_record(order: WorkOrder) -> dict[str, Any]:
    """The order flattened: its place spelled out, its state and tier as their values."""
    p = order.place
    return {
        "id": order.id,
        "report_id": order.report_id,
        "category": order.category,
        "department_id": order.department_id,
        "source": order.source,
        "lat": order.lat,
        "lon": order.lon,
        "grid_id": p.grid_id,
        "community_id": p.community_id,
        "street_id": p.street_id,
        "district_id": p.district_id,
        "state": order.state.value,
        "tier": order.tier.value if order.tier else None,
        "unit_id": order.unit_id,
        "assignment_seq": order.assignment_seq,
        "assigned_at": order.assigned_at,
        "due_at": order.due_at,
        "opened_at": order.opened_at,
        "resolved_at": order.resolved_at,
        "version": order.version,
        "policy_version": order.policy_version,
        "rule_terms": {
            "co_handlers": list(order.co_handlers),
            "time_limits_hours": {t.value: h for t, h in order.rule_limits},
            **({"calendar": order.rule_calendar} if order.rule_calendar else {}),
        },
        "accepted_at": order.accepted_at,
        "ended_at": order.ended_at,
        "end_reason": order.end_reason,
        "resolved_tier": order.resolved_tier.value if order.resolved_tier else None,
        "reopen_count": order.reopen_count,
        **_call_in_record(order.call_in),
    }


def _call_in_record(call: CallIn | None) -> dict[str, Any]:
    return {
        "call_seq": call.seq if call else None,
        "call_department_id": call.department_id if call else None,
        "call_by": call.called_by if call else None,
        "called_at": call.called_at if call else None,
        "call_due_at": call.due_at if call else None,
        "reported_in_at": call.reported_in_at if call else None,
        "call_escalated_at": call.escalated_at if call else None,
    }


def _call_in(row: Mapping[str, Any]) -> CallIn | None:
    if row["call_seq"] is None:
        return None
    return CallIn(
        row["call_seq"],
        row["call_department_id"],
        row["call_by"],
        row["called_at"],
        row["call_due_at"],
        row["reported_in_at"],
        row["call_escalated_at"],
    )


def from_record(row: Mapping[str, Any]) -> WorkOrder:
    terms = row["rule_terms"] or {}
    return WorkOrder(
        id=row["id"],
        report_id=row["report_id"],
        category=row["category"],
        department_id=row["department_id"],
        source=row["source"],
        lat=row["lat"],
        lon=row["lon"],
        place=Place(row["grid_id"], row["community_id"], row["street_id"], row["district_id"]),
        state=State(row["state"]),
        tier=Tier(row["tier"]) if row["tier"] else None,
        unit_id=row["unit_id"],
        assignment_seq=row["assignment_seq"],
        assigned_at=row["assigned_at"],
        due_at=row["due_at"],
        opened_at=row["opened_at"],
        resolved_at=row["resolved_at"],
        version=row["version"],
        policy_version=row["policy_version"],
        co_handlers=tuple(terms.get("co_handlers", ())),
        rule_limits=tuple((Tier(t), h) for t, h in terms.get("time_limits_hours", {}).items()),
        rule_calendar=terms.get("calendar"),
        accepted_at=row["accepted_at"],
        ended_at=row["ended_at"],
        end_reason=row["end_reason"],
        resolved_tier=Tier(row["resolved_tier"]) if row["resolved_tier"] else None,
        reopen_count=row["reopen_count"],
        call_in=_call_in(row),
    )


def as_columns(orders: list[WorkOrder]) -> list[list[Any]]:
    """The orders column by column, in COLUMNS order: the arrays an unnest() takes."""
    records = [as_record(o) for o in orders]
    return [[r[name] for r in records] for name in NAMES]
