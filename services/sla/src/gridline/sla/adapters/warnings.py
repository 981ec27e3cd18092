"""Yellow and red warnings of assignments, in PostgreSQL (schema `sla`, table `warnings`).

One row per work order and level, for the order's current assignment only. The
scheduler claims passed rows and marks them fired in one statement, inside the
transaction that writes their DeadlineWarning events to the outbox."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from gridline.common.events import Assignment, DeadlineWarning, WorkOrderRef
from gridline.common.ids import stable_id
from gridline.common.pg import Connection, Outgoing
from gridline.sla.adapters import sql

REF_FIELDS = frozenset(WorkOrderRef.model_fields)


class PendingWarning(NamedTuple):
    work_order_id: str
    level: str  # yellow | red
    assignment_seq: int
    warn_at: datetime
    tier: str
    unit_id: str
    unit_name: str
    supervisor_id: str | None
    due_at: datetime
    ref: dict[str, Any]  # the WorkOrderRef fields of the event that made the assignment


def warning_event_id(order_id: str, seq: int, level: str) -> str:
    """One id per order, assignment and level: a warning fired again is applied once."""
    return stable_id("warning", order_id, seq, level)


def of_assignment(event: WorkOrderRef, a: Assignment) -> list[PendingWarning]:
    """The warnings an assignment carries (none from events older than its yellow_at and
    red_at). Only red names the supervisor."""
    ref = event.model_dump(mode="json", include=set(REF_FIELDS))
    points = [("yellow", a.yellow_at, None), ("red", a.red_at, a.supervisor_id)]
    return [
        PendingWarning(
            event.work_order_id,
            level,
            a.seq,
            at,
            a.tier,
            a.unit_id,
            a.unit_name,
            supervisor,
            a.due_at,
            ref,
        )
        for level, at, supervisor in points
        if at is not None
    ]


def event_of(row: Any, now: datetime) -> Outgoing:
    """The DeadlineWarning of a claimed row; `warned_at` is when its point passed."""
    event = DeadlineWarning(
        **row["ref"],
        level=row["level"],
        assignment_seq=row["assignment_seq"],
        tier=row["tier"],
        unit_id=row["unit_id"],
        unit_name=row["unit_name"],
        supervisor_id=row["supervisor_id"] if row["level"] == "red" else None,
        due_at=row["due_at"],
        warned_at=row["warn_at"],
    )
    return Outgoing(
        event, now, warning_event_id(row["work_order_id"], row["assignment_seq"], row["level"])
    )


async def arm(
    conn: Connection, assignments: Sequence[tuple[str, int]], warnings: Sequence[PendingWarning]
) -> None:
    """Follow the orders' new assignments (work order, seq): older assignments' warnings
    stop, and `warnings` are armed for the assignment that holds the order's deadline
    now (a late, older assignment arms nothing). A redelivered assignment leaves its rows
    as they are, fired or not."""
    # An order's first assignment has no older one to stop: most assignments are firsts.
    later = [a for a in assignments if a[1] > 1]
    if later:
        await conn.execute(
            "DELETE FROM warnings w USING unnest($1::text[], $2::int[]) AS u(id, seq)"
            " WHERE w.work_order_id = u.id AND w.assignment_seq < u.seq",
            [a[0] for a in later],
            [a[1] for a in later],
        )
    if not warnings:
        return
    await conn.execute(
        "INSERT INTO warnings (work_order_id, level, assignment_seq, warn_at, tier, unit_id,"
        " unit_name, supervisor_id, due_at, ref)"
        " SELECT u.id, u.level, u.seq, u.warn_at, u.tier, u.unit_id, u.unit_name,"
        "  u.supervisor_id, u.due_at, u.ref::jsonb"
        " FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[], $5::text[],"
        "  $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::text[])"
        "  AS u(id, level, seq, warn_at, tier, unit_id, unit_name, supervisor_id, due_at, ref)"
        " JOIN deadlines d ON d.work_order_id = u.id AND d.assignment_seq = u.seq"
        " ON CONFLICT (work_order_id, level) DO NOTHING",
        *sql.columns(warnings, 9),
        [json.dumps(w.ref, sort_keys=True) for w in warnings],
    )


async def disarm(conn: Connection, order_ids: Sequence[str]) -> None:
    """Stop every pending warning of these orders (resolved, cancelled, closed, or
    returned for triage)."""
    if order_ids:
        await conn.execute("DELETE FROM warnings WHERE work_order_id = ANY($1::text[])", order_ids)


async def claim_due(
    conn: Connection, now: datetime, limit: int, after: datetime | None = None
) -> list[Any]:
    """Take up to `limit` passed, unfired warnings, oldest first, and mark them fired;
    rows another scheduler holds are skipped (its transaction fires them)."""
    return list(
        await conn.fetch(
            "UPDATE warnings w SET fired_at = $1 FROM (SELECT work_order_id, level"
            "  FROM warnings WHERE fired_at IS NULL AND warn_at <= $1"
            "  AND warn_at >= coalesce($3::timestamptz, '-infinity') ORDER BY warn_at"
            "  LIMIT $2 FOR UPDATE SKIP LOCKED) c"
            " WHERE w.work_order_id = c.work_order_id AND w.level = c.level"
            " RETURNING w.work_order_id, w.level, w.assignment_seq, w.tier, w.unit_id,"
            " w.unit_name, w.supervisor_id, w.due_at, w.warn_at, w.ref",
            now,
            limit,
            after,
        )
    )
