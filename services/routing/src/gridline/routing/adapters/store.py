"""Work orders, their history, policy versions and handler keys in PostgreSQL (schema
`routing`). Every write takes a list and is one statement, whatever its length."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gridline.common.pg import Connection, rows_affected
from gridline.routing.adapters.records import COLUMNS, NAMES, as_columns, from_record
from gridline.routing.domain.workorder import WorkOrder

if TYPE_CHECKING:
    from gridline.routing.adapters.events import Change

_SELECT = f"SELECT {', '.join(NAMES)} FROM work_orders"
_ARRAYS = ", ".join(f"${i}::{typ}[]" for i, (_, typ) in enumerate(COLUMNS, 1))
_INSERT = (
    f"INSERT INTO work_orders ({', '.join(NAMES)}, description)"
    f" SELECT * FROM unnest({_ARRAYS}, ${len(COLUMNS) + 1}::text[])"
)
# Every column but the id; those a transition never changes are written back unchanged.
_UPDATE = (
    "UPDATE work_orders w SET "
    + ", ".join(f"{name} = u.{name}" for name in NAMES[1:])
    + f" FROM unnest({_ARRAYS}) AS u({', '.join(NAMES)}) WHERE w.id = u.id"
)


async def get(conn: Connection, order_id: str) -> WorkOrder | None:
    row = await conn.fetchrow(f"{_SELECT} WHERE id = $1", order_id)
    return from_record(row) if row else None


async def lock(conn: Connection, order_ids: Sequence[str]) -> dict[str, WorkOrder]:
    """The named orders that exist, locked until the transaction ends. Locks are taken in
    id order so that two transactions locking overlapping sets cannot deadlock."""
    rows = await conn.fetch(
        f"{_SELECT} WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE", list(order_ids)
    )
    return {row["id"]: from_record(row) for row in rows}


async def reports_with_orders(conn: Connection, report_ids: Sequence[str]) -> set[str]:
    """Which of these reports already have a work order (opened under another event id)."""
    rows = await conn.fetch(
        "SELECT report_id FROM work_orders WHERE report_id = ANY($1::text[])", list(report_ids)
    )
    return {row["report_id"] for row in rows}


async def existing(conn: Connection, order_ids: Sequence[str]) -> set[str]:
    """Which of these work orders exist."""
    rows = await conn.fetch(
        "SELECT id FROM work_orders WHERE id = ANY($1::text[])", list(order_ids)
    )
    return {row["id"] for row in rows}


async def merge_reports(conn: Connection, merged: Sequence[tuple[str, str, str, datetime]]) -> int:
    """Record (report_id, work_order_id, source, at) of reports merged into open orders;
    one already recorded (a re-delivery) is skipped. Returns how many were new."""
    if not merged:
        return 0
    result = await conn.execute(
        "INSERT INTO merged_reports (report_id, work_order_id, source, at)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])"
        " ON CONFLICT (report_id) DO NOTHING",
        [m[0] for m in merged],
        [m[1] for m in merged],
        [m[2] for m in merged],
        [m[3] for m in merged],
    )
    return rows_affected(result)


async def report_count(conn: Connection, order_id: str) -> int:
    """How many reports share the order: its own and those merged into it."""
    merged = await conn.fetchval(
        "SELECT count(*) FROM merged_reports WHERE work_order_id = $1", order_id
    )
    return 1 + int(merged)


async def insert(conn: Connection, orders: Sequence[tuple[WorkOrder, str]]) -> None:
    """New orders, each with its report's description."""
    if orders:
        await conn.execute(_INSERT, *as_columns([o for o, _ in orders]), [d for _, d in orders])


async def update(conn: Connection, orders: Sequence[WorkOrder]) -> None:
    if orders:
        await conn.execute(_UPDATE, *as_columns(list(orders)))


async def record_history(conn: Connection, changes: Sequence[Change]) -> None:
    """One history row per change, at the time of the move, with who made it."""
    if not changes:
        return
    orders = [c.order for c in changes]
    await conn.execute(
        "INSERT INTO work_order_history (work_order_id, version, event_type, at, detail)"
        " SELECT i, v, t, a, d::jsonb"
        " FROM unnest($1::text[], $2::int4[], $3::text[], $4::timestamptz[], $5::text[])"
        " AS u(i, v, t, a, d)",
        [o.id for o in orders],
        [o.version for o in orders],
        [c.event.TYPE for c in changes],
        [c.at for c in changes],
        # Who moved it: a unit, 'reporter', 'sla' (a deadline) or 'routing' (a new report's
        # assignment, a rule, a sweep); queries.actor_of reads it.
        [json.dumps({"actor": "routing", **c.detail, "unit_id": c.order.unit_id}) for c in changes],
    )


async def history(conn: Connection, order_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT version, event_type, at, detail FROM work_order_history"
        " WHERE work_order_id = $1 ORDER BY version",
        order_id,
    )
    return [dict(r) for r in rows]


async def list_open(
    conn: Connection, units: list[str] | None, limit: int, state: str | None = None
) -> list[WorkOrder]:
    """Unresolved orders held by `units` (every one when None), soonest due first; only
    those in `state` when given."""
    where = ["state IN ('open', 'accepted', 'triage')" if state is None else "state = $1"]
    args: list[Any] = [] if state is None else [state]
    if units is not None:
        args.append(units)
        where.append(f"unit_id = ANY(${len(args)}::text[])")
    args.append(limit)
    rows = await conn.fetch(
        f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY due_at NULLS LAST, id LIMIT ${len(args)}",
        *args,
    )
    return [from_record(r) for r in rows]


async def save_policy(conn: Connection, kind: str, version: str, document: Any, at: Any) -> None:
    await conn.execute(
        "INSERT INTO policy_versions (kind, version, document, activated_at) VALUES ($1,$2,$3,$4)",
        kind,
        version,
        document,
        at,
    )


async def latest_version(conn: Connection, kind: str) -> str | None:
    value = await conn.fetchval(
        "SELECT version FROM policy_versions WHERE kind = $1 ORDER BY id DESC LIMIT 1", kind
    )
    return str(value) if value is not None else None


async def latest_policy(conn: Connection, kind: str) -> Any | None:
    return await conn.fetchval(
        "SELECT document FROM policy_versions WHERE kind = $1 ORDER BY id DESC LIMIT 1", kind
    )


async def lock_resolved_before(conn: Connection, before: datetime, limit: int) -> list[WorkOrder]:
    """Resolved orders resolved at or before `before`, locked; other sweepers skip them."""
    rows = await conn.fetch(
        f"{_SELECT} WHERE state = 'resolved' AND resolved_at <= $1 ORDER BY resolved_at, id"
        " LIMIT $2 FOR UPDATE SKIP LOCKED",
        before,
        limit,
    )
    return [from_record(r) for r in rows]
