"""The one flat form of a work order: the columns of its row and the fields of its view."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gridline.common.policy.tiers import Tier
from gridline.routing.domain.workorder import Place, State, WorkOrder

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
        },
    }


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
    )


def as_columns(orders: list[WorkOrder]) -> list[list[Any]]:
    """The orders column by column, in COLUMNS order: the arrays an unnest() takes."""
    records = [as_record(o) for o in orders]
    return [[r[name] for r in records] for name in NAMES]
