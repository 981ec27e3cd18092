"""Timelines and feedback in PostgreSQL (schema `intake`): each write is one statement."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gridline.common.pg import Connection, rows_affected
from gridline.intake.domain.timeline import Entry

# The insert of timeline entries from seven arrays, placeholders `{0}`..`{6}` to fill in:
# a statement of its own (add_entries), or a writable CTE beside the reports it records
# (intake's group commit writes the received and tagged entries at acceptance).
TIMELINE_INSERT = (
    "INSERT INTO timeline (entry_id, work_order_id, report_id, kind, rank, at, detail)"
    " SELECT u.entry_id, u.work_order_id, u.report_id, u.kind, u.rank, u.at, u.detail::jsonb"
    " FROM unnest({0}::text[], {1}::text[], {2}::text[], {3}::text[], {4}::int[],"
    " {5}::timestamptz[], {6}::text[])"
    " AS u(entry_id, work_order_id, report_id, kind, rank, at, detail)"
)


def entry_columns(entries: Sequence[Entry]) -> list[list[Any]]:
    """The entries column by column, in TIMELINE_INSERT's order."""
    return [
        [e.entry_id for e in entries],
        [e.work_order_id for e in entries],
        [e.report_id for e in entries],
        [e.kind for e in entries],
        [e.rank for e in entries],
        [e.at for e in entries],
        [json.dumps(e.detail, ensure_ascii=False) for e in entries],
    ]


async def add_entries(conn: Connection, entries: Sequence[Entry]) -> int:
    """Add timeline entries in one statement. An entry already stored (a redelivered
    event) or one of an order not reported here adds nothing. Returns how many were new."""
    if not entries:
        return 0
    result = await conn.execute(
        TIMELINE_INSERT.format(*(f"${i}" for i in range(1, 8)))
        + " WHERE CASE WHEN u.report_id IS NULL"
        "  THEN EXISTS (SELECT 1 FROM requests r WHERE r.work_order_id = u.work_order_id)"
        "  ELSE EXISTS (SELECT 1 FROM requests r WHERE r.service_request_id = u.report_id) END"
        " ON CONFLICT (entry_id) DO NOTHING",
        *entry_columns(entries),
    )
    return rows_affected(result)


async def entries(conn: Connection, work_order_id: str, report_id: str) -> list[Entry]:
    """A report's own entries and its work order's."""
    rows = await conn.fetch(
        "SELECT entry_id, work_order_id, report_id, kind, rank, at, detail FROM timeline"
        " WHERE work_order_id = $1 AND (report_id IS NULL OR report_id = $2)"
        " ORDER BY rank, at, entry_id",
        work_order_id,
        report_id,
    )
    return [
        Entry(
            r["entry_id"],
            r["work_order_id"],
            r["report_id"],
            r["kind"],
            r["rank"],
            r["at"],
            r["detail"],
        )
        for r in rows
    ]


async def report(conn: Connection, request_id: str, *, lock: bool = False) -> Any:
    """The report's row as the native API reads it; locked for feedback when `lock`."""
    return await conn.fetchrow(
        "SELECT service_request_id, work_order_id, token, service_code, status, status_notes,"
        " agency_responsible, expected_datetime, requested_datetime, updated_datetime,"
        " event_version FROM requests WHERE service_request_id = $1"
        + (" FOR UPDATE" if lock else ""),
        request_id,
    )


async def resolved_at(conn: Connection, work_order_id: str, rank: int) -> datetime | None:
    """When the resolution of that rank (version) happened, from its timeline entry."""
    value = await conn.fetchval(
        "SELECT at FROM timeline WHERE work_order_id = $1 AND kind = 'resolved' AND rank = $2"
        " LIMIT 1",
        work_order_id,
        rank,
    )
    return value if isinstance(value, datetime) else None


async def add_feedback(
    conn: Connection,
    *,
    feedback_id: str,
    request_id: str,
    work_order_id: str,
    resolved_version: int,
    outcome: str,
    satisfaction: int,
    comment: str,
    reopens: bool,
    given_at: datetime,
) -> bool:
    """Store feedback unless this report already gave feedback on this resolution."""
    stored = await conn.fetchval(
        "INSERT INTO feedback (feedback_id, service_request_id, work_order_id,"
        " resolved_version, outcome, satisfaction, comment, reopens, given_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (service_request_id, resolved_version) DO NOTHING RETURNING feedback_id",
        feedback_id,
        request_id,
        work_order_id,
        resolved_version,
        outcome,
        satisfaction,
        comment,
        reopens,
        given_at,
    )
    return stored is not None
