"""The order queries in SQL: filtered, in due order, paged by a keyset cursor.

Orders sort by (due time, id), orders without a due time (held for triage) last; the
indexes of migration 0006 follow the same expression."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gridline.common.pg import Connection
from gridline.routing.adapters.records import NAMES, from_record
from gridline.routing.domain.workorder import WorkOrder

DUE = "COALESCE(due_at, 'infinity'::timestamptz)"
# States in which an order no longer waits on anyone (the lifecycle may add more).
FINISHED = ("resolved", "closed", "cancelled")


@dataclass(frozen=True)
class OrderFilter:
    """What the caller asked for; None or empty means no restriction."""

    units: list[str] | None = None  # held by one of these units (the key's view, narrowed)
    department: str | None = None  # ... or of this department's categories (its key's view)
    states: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    due_before: datetime | None = None
    due_after: datetime | None = None
    overdue_at: datetime | None = None  # unfinished and due before this time
    unfinished: bool = False
    after: tuple[datetime | None, str] | None = None  # the cursor: (due, id) seen last


def _where(f: OrderFilter) -> tuple[str, list[Any]]:
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where: list[str] = []
    if f.units is not None:
        held = f"unit_id = ANY({arg(f.units)}::text[])"
        if f.department is not None:
            held = f"({held} OR department_id = {arg(f.department)})"
        where.append(held)
    if f.states:
        where.append(f"state = ANY({arg(f.states)}::text[])")
    if f.categories:
        where.append(f"category = ANY({arg(f.categories)}::text[])")
    if f.due_before is not None:
        where.append(f"due_at < {arg(f.due_before)}")
    if f.due_after is not None:
        where.append(f"due_at >= {arg(f.due_after)}")
    if f.unfinished or f.overdue_at is not None:
        where.append(f"state <> ALL({arg(list(FINISHED))}::text[])")
    if f.overdue_at is not None:
        where.append(f"due_at < {arg(f.overdue_at)}")
    if f.after is not None:
        due, order_id = f.after
        if due is None:  # past every order with a due time
            where.append(f"due_at IS NULL AND id > {arg(order_id)}")
        else:
            where.append(f"({DUE}, id) > ({arg(due)}::timestamptz, {arg(order_id)})")
    return (" WHERE " + " AND ".join(where)) if where else "", args


async def find(conn: Connection, f: OrderFilter, limit: int) -> list[WorkOrder]:
    """Up to `limit` orders matching the filter, soonest due first."""
    where, args = _where(f)
    args.append(limit)
    rows = await conn.fetch(
        f"SELECT {', '.join(NAMES)} FROM work_orders{where} ORDER BY {DUE}, id LIMIT ${len(args)}",
        *args,
    )
    return [from_record(r) for r in rows]
