"""Report-in deadlines of departments called in, in PostgreSQL (schema `sla`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from gridline.common.pg import Connection


class ReportInDeadline(NamedTuple):
    work_order_id: str
    call_seq: int
    department_id: str
    due_at: datetime


async def arm(conn: Connection, deadlines: Sequence[ReportInDeadline]) -> None:
    """One pending call per order: a newer call replaces an older one, never the reverse."""
    if not deadlines:
        return
    await conn.execute(
        "INSERT INTO report_in_deadlines (work_order_id, call_seq, department_id, due_at)"
        " SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::timestamptz[])"
        " ON CONFLICT (work_order_id) DO UPDATE SET call_seq = EXCLUDED.call_seq,"
        " department_id = EXCLUDED.department_id, due_at = EXCLUDED.due_at, fired_at = NULL"
        " WHERE report_in_deadlines.call_seq < EXCLUDED.call_seq",
        [d.work_order_id for d in deadlines],
        [d.call_seq for d in deadlines],
        [d.department_id for d in deadlines],
        [d.due_at for d in deadlines],
    )


async def disarm(conn: Connection, calls: Sequence[tuple[str, int | None]]) -> None:
    """Stop (work_order_id, call_seq) deadlines; a None seq stops the order's call whatever
    its number (the order was resolved, closed or cancelled)."""
    if not calls:
        return
    await conn.execute(
        "DELETE FROM report_in_deadlines d USING unnest($1::text[], $2::int[]) AS u(id, seq)"
        " WHERE d.work_order_id = u.id AND (u.seq IS NULL OR d.call_seq = u.seq)",
        [c[0] for c in calls],
        [c[1] for c in calls],
    )


async def claim_due(
    conn: Connection, now: datetime, limit: int, after: datetime | None = None
) -> list[Any]:
    """Take passed, unfired calls and mark them fired (as store.claim_due does deadlines)."""
    return list(
        await conn.fetch(
            "UPDATE report_in_deadlines d SET fired_at = $1 FROM (SELECT work_order_id"
            "  FROM report_in_deadlines WHERE fired_at IS NULL AND due_at <= $1"
            "  AND due_at >= coalesce($3::timestamptz, '-infinity')"
            "  ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED) c"
            " WHERE d.work_order_id = c.work_order_id"
            " RETURNING d.work_order_id, d.call_seq, d.department_id, d.due_at",
            now,
            limit,
            after,
        )
    )
