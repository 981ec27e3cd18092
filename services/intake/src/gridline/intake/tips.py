"""Partners' tips as their work orders move: status events for the partner and points for
the rider, in the consumer's transaction; and the partner's reads of the ledger."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gridline.common.consumer import Incoming, NotReadyYet
from gridline.common.events import WorkOrderResolved
from gridline.common.ids import stable_id
from gridline.common.pg import Connection, Outgoing, Pool
from gridline.common.policy.catalogue import Catalogue
from gridline.intake.adapters import points as ledger
from gridline.intake.domain import points
from gridline.intake.domain.points import Happened, WorkOrderEvent


async def follow(
    conn: Connection,
    events: Sequence[Incoming[WorkOrderEvent]],
    catalogue: Catalogue | None,
    tz: ZoneInfo,
    source: str,
) -> None:
    """For a batch of work-order events: credit the tips that earned points (ledger, once
    per tip) and announce every tip's new status (outbox). One look-up finds the tips;
    a batch without any stops there."""
    tips = await ledger.tips_of(conn, [e.data.work_order_id for e in events])
    if not tips:
        return
    happened = [Happened(e.data, e.envelope.id, e.envelope.time) for e in events]
    if catalogue is not None:
        candidates = points.credits(happened, tips, catalogue, tz)
    elif any(isinstance(h.event, WorkOrderResolved) for h in happened):
        # Points need the catalogue; intake loads it before it takes reports, so this is a
        # start-up race at most. The events wait rather than credit nothing.
        raise NotReadyYet("tips' points need the catalogue, which is not loaded yet")
    else:
        candidates = []
    taken = await ledger.credit(conn, candidates)
    credited = [c for c in candidates if c.report_id in taken]
    changes = points.status_changes(happened, tips, credited)
    await ledger.announce(
        conn,
        source,
        [
            # The same work-order event gives the same ids: a copy produced again (a
            # redelivery or a replay) is recognised downstream, where notify derives its
            # callback's id from this one.
            Outgoing(change, h.at, event_id=stable_id("tip-status", h.event_id, change.report_id))
            for h, change in changes
        ],
    )


# -- the partner's reads -------------------------------------------------------------------


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class RiderPoints:
    rider_id: str
    balance: int
    entries: list[Any]
    next_cursor: str | None


def _cursor(row: Any) -> str:
    raw = json.dumps([row["credited_at"].isoformat(), row["report_id"], row["kind"]])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _after(cursor: str) -> tuple[datetime, str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, report_id, kind = json.loads(raw)
        return datetime.fromisoformat(at), str(report_id), str(kind)
    except (binascii.Error, ValueError, TypeError):
        raise BadCursor("not a cursor this API gave; pass next_cursor as it came") from None


async def rider_points(
    pool: Pool, partner_id: str, rider_id: str, limit: int, cursor: str | None
) -> RiderPoints:
    """A rider's balance and one page of entries, newest first (this partner's only)."""
    after = _after(cursor) if cursor else None
    async with pool.acquire() as conn:
        rows = await ledger.entries(conn, partner_id, rider_id, limit + 1, after)
        total = await ledger.balance(conn, partner_id, rider_id)
    page = rows[:limit]
    more = len(rows) > limit
    return RiderPoints(rider_id, total, page, _cursor(page[-1]) if more else None)


async def leaderboard(
    pool: Pool, partner_id: str, street_id: str, month: str, limit: int
) -> list[Any]:
    async with pool.acquire() as conn:
        return await ledger.leaderboard(conn, partner_id, street_id, month, limit)
