"""Partners' tips and the points ledger in PostgreSQL (schema `intake`): each write is one
statement for a whole batch of work-order events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gridline.common.pg import OUTBOX_INSERT, Connection, Outgoing, outbox_rows
from gridline.intake.domain.points import Credit, Tip

# Tips' TipStatusChanged carry ids derived from the work-order event (a redelivered event
# gives the same ids): one already waiting in the outbox is not written twice.
_OUTBOX_ONCE = (
    OUTBOX_INSERT.format(ids="$1", topics="$2", keys="$3", payloads="$4")
    + " ON CONFLICT (event_id) DO NOTHING"
)


async def tips_of(conn: Connection, work_order_ids: Sequence[str]) -> list[Tip]:
    """The partners' reports on these work orders, in one look-up. Only partners' reports
    are in the partial index it probes (requests_tips_by_order, 0009_points.sql): orders
    without tips cost next to nothing."""
    if not work_order_ids:
        return []
    rows = await conn.fetch(
        "SELECT r.service_request_id, r.partner_id, r.rider_id, r.work_order_id,"
        " r.duplicate_of IS NOT NULL AS duplicate, p.updated_at AS partner_updated_at"
        " FROM requests r LEFT JOIN partners p ON p.partner_id = r.partner_id"
        " WHERE r.partner_id IS NOT NULL AND r.work_order_id = ANY($1::text[])"
        " ORDER BY r.work_order_id, r.requested_datetime, r.service_request_id",
        list(set(work_order_ids)),
    )
    return [
        Tip(
            r["service_request_id"],
            r["partner_id"],
            r["rider_id"],
            r["work_order_id"],
            r["duplicate"],
            r["partner_updated_at"],
        )
        for r in rows
    ]


async def credit(conn: Connection, credits: Sequence[Credit]) -> set[str]:
    """Write credits in one statement, at most one per tip ever. Returns the tips (report
    ids) that these credits' events credited: now, or when the same event was applied
    before (a redelivery), so that its announcement says the same. A tip credited by an
    earlier resolution is not among them."""
    if not credits:
        return set()
    rows = await conn.fetch(
        "WITH u AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],"
        "  $5::text[], $6::int[], $7::text[], $8::timestamptz[], $9::text[], $10::text[])"
        "  AS u(report_id, partner_id, rider_id, work_order_id, category, points, street_id,"
        "  credited_at, month, event_id)),"
        " added AS (INSERT INTO points_ledger (report_id, kind, partner_id, rider_id,"
        "  work_order_id, category, points, street_id, credited_at, month, event_id)"
        "  SELECT u.report_id, 'credit', u.partner_id, u.rider_id, u.work_order_id, u.category,"
        "  u.points, u.street_id, u.credited_at, u.month, u.event_id FROM u"
        "  ON CONFLICT (report_id, kind) DO NOTHING RETURNING report_id)"
        " SELECT report_id FROM added"
        # Rows stored before this statement: the same event's credit, applied before.
        " UNION SELECT l.report_id FROM points_ledger l JOIN u ON l.report_id = u.report_id"
        "  AND l.kind = 'credit' AND l.event_id = u.event_id",
        [c.report_id for c in credits],
        [c.partner_id for c in credits],
        [c.rider_id for c in credits],
        [c.work_order_id for c in credits],
        [c.category for c in credits],
        [c.points for c in credits],
        [c.street_id for c in credits],
        [c.credited_at for c in credits],
        [c.month for c in credits],
        [c.event_id for c in credits],
    )
    return {r["report_id"] for r in rows}


async def announce(conn: Connection, source: str, events: Sequence[Outgoing]) -> None:
    """Write the tips' status events to the outbox in one statement (the caller's
    transaction); an event whose id is already there is skipped."""
    if events:
        await conn.execute(_OUTBOX_ONCE, *outbox_rows(source, events))


# -- reads ---------------------------------------------------------------------------------


async def balance(conn: Connection, partner_id: str, rider_id: str) -> int:
    value = await conn.fetchval(
        "SELECT coalesce(sum(points), 0) FROM points_ledger"
        " WHERE partner_id = $1 AND rider_id = $2",
        partner_id,
        rider_id,
    )
    return int(value)


async def entries(
    conn: Connection,
    partner_id: str,
    rider_id: str,
    limit: int,
    after: tuple[datetime, str, str] | None,
) -> list[Any]:
    """A rider's entries, newest first, `limit` of them after the cursor `after`
    (credited_at, report_id, kind of the last entry of the page before)."""
    args: list[Any] = [partner_id, rider_id, limit]
    where = ""
    if after is not None:
        args += list(after)
        where = " AND (credited_at, report_id, kind) < ($4, $5, $6)"
    return list(
        await conn.fetch(
            "SELECT report_id, kind, work_order_id, category, points, street_id, credited_at"
            " FROM points_ledger WHERE partner_id = $1 AND rider_id = $2"
            f"{where} ORDER BY credited_at DESC, report_id DESC, kind DESC LIMIT $3",
            *args,
        )
    )


async def leaderboard(
    conn: Connection, partner_id: str, street_id: str, month: str, limit: int
) -> list[Any]:
    """A partner's riders on one street in one month, most points first (ties share a
    rank; then by rider id): points and tips credited (less reversed)."""
    return list(
        await conn.fetch(
            "SELECT rank() OVER (ORDER BY points DESC) AS rank, rider_id, points, tips FROM"
            " (SELECT rider_id, sum(points) AS points,"
            "  count(*) FILTER (WHERE kind = 'credit') - count(*) FILTER (WHERE kind = 'reversal')"
            "  AS tips FROM points_ledger WHERE partner_id = $1 AND street_id = $2 AND month = $3"
            "  GROUP BY rider_id) r"
            " ORDER BY points DESC, rider_id LIMIT $4",
            partner_id,
            street_id,
            month,
            limit,
        )
    )
