"""Deliveries in PostgreSQL (schema `notify`): one row per event and subscription."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from gridline.common.pg import Connection
from gridline.notify.domain.attempts import Outcome, Verdict


class Delivery(NamedTuple):
    notification_id: str
    event_id: str
    event_type: str
    work_order_id: str
    event_version: int
    subscription: str
    url: str
    body: bytes
    # Its place among the order's deliveries (migrations/0006): 0 an order's own event,
    # 1 a yellow warning, 2 a red one, at the version of the assignment warned about.
    warning: int = 0
    # A partner's callback parked until notify has followed the partner this far
    # (migrations/0007): no older PartnerUpdated releases or kills it.
    partner_since: datetime | None = None


def deliveries_channel(schema: str) -> str:
    """Where a commit that stored deliveries notifies (migrations/0003_notify_wakeup.sql)."""
    return f"{schema}_deliveries"


_ADD = (
    "INSERT INTO deliveries (notification_id, event_id, event_type, work_order_id,"
    " event_version, subscription, url, body, warning, partner_since{})"
    " SELECT *{} FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[],"
    "  $6::text[], $7::text[], $8::bytea[], $9::smallint[], $10::timestamptz[])"
    " ON CONFLICT (notification_id) DO NOTHING"
)
_ADD_DUE = _ADD.format("", "")
# Parked: never due until something sets next_attempt_at (a partner's callbacks waiting
# for its PartnerUpdated, adapters/partners.py).
_ADD_PARKED = _ADD.format(", next_attempt_at", ", 'infinity'::timestamptz")


async def add_deliveries(
    conn: Connection, deliveries: Sequence[Delivery], *, parked: bool = False
) -> None:
    """Store deliveries in one statement; a redelivered event finds its rows there already."""
    if not deliveries:
        return
    await conn.execute(
        _ADD_PARKED if parked else _ADD_DUE,
        *([d[i] for d in deliveries] for i in range(len(Delivery._fields))),
    )


async def pending_subscriptions(conn: Connection) -> set[str]:
    """Subscriptions with deliveries still to send (one removed from the settings too)."""
    rows = await conn.fetch(
        "SELECT DISTINCT subscription FROM deliveries"
        " WHERE delivered_at IS NULL AND dead_at IS NULL"
    )
    return {r["subscription"] for r in rows}


async def claim_due(conn: Connection, slots: Mapping[str, int], lease_seconds: float) -> list[Any]:
    """Up to `slots[s]` due deliveries of each subscription s, leased for `lease_seconds`
    (retried by anyone after that), in one statement.

    Only the earliest pending delivery of each work order and subscription is due, so a
    receiver sees one order's events in their order (a given-up one no longer blocks); a
    leased one is still pending, so the next waits until it is recorded.

    Warnings sit in that order by (event_version, warning): one waits for the order's
    events up to the version of the assignment it warns about and for earlier warnings,
    so it never arrives before that assignment, nor a red before its yellow. An order's own
    event never waits for a warning: a warning refused for hours holds up no escalation or
    resolution (only itself), and one stored after a later event goes out as it is."""
    if not slots:
        return []
    return list(
        await conn.fetch(
            "UPDATE deliveries AS d SET next_attempt_at = now() + make_interval(secs => $3)"
            # An array, not a join: the planner cannot know how few rows the LIMITs leave
            # and would hash-join a scan of the whole table, delivered history included.
            " WHERE d.notification_id = ANY(ARRAY(SELECT c.notification_id"
            "  FROM unnest($1::text[], $2::int[]) AS s(subscription, slots)"
            "  CROSS JOIN LATERAL (SELECT p.notification_id FROM deliveries p"
            "   WHERE p.subscription = s.subscription"
            "   AND p.delivered_at IS NULL AND p.dead_at IS NULL AND p.next_attempt_at <= now()"
            "   AND p.next_attempt_at < 'infinity'"  # deliveries_due_per_subscription's rows
            # Statistics taken while few rows were pending make every scan of a
            # pending-only index look free, so the check is written to leave the planner
            # one way: OFFSET 0 keeps it a subplan run per candidate with the candidate's
            # order as parameters, and the due index (migrations/0008) cannot serve it, so
            # it probes deliveries_pending_per_order (a row or two). As an anti-join it
            # read every pending delivery of the subscription per candidate: 55-197 ms a
            # claim with 2,399 pending, against 3-10 ms.
            "   AND NOT EXISTS (SELECT 1 FROM deliveries e"
            "    WHERE e.work_order_id = p.work_order_id AND e.subscription = p.subscription"
            "    AND e.delivered_at IS NULL AND e.dead_at IS NULL"
            "    AND e.event_version <= p.event_version"
            "    AND (e.event_version, e.warning) < (p.event_version, p.warning)"
            "    AND (e.warning = 0 OR p.warning > 0) OFFSET 0)"
            "   ORDER BY p.next_attempt_at LIMIT s.slots FOR UPDATE SKIP LOCKED) AS c"
            " ))"
            " RETURNING d.notification_id, d.subscription, d.url, d.body, d.attempts",
            list(slots),
            list(slots.values()),
            lease_seconds,
        )
    )


async def record(conn: Connection, outcomes: Sequence[Outcome]) -> None:
    """Record attempts' outcomes: one statement per kind of outcome present."""
    delivered = [o for o in outcomes if o.verdict is Verdict.DELIVERED]
    retry = [o for o in outcomes if o.verdict is Verdict.RETRY]
    dead = [o for o in outcomes if o.verdict is Verdict.DEAD]
    if delivered:
        await conn.execute(
            "UPDATE deliveries AS d SET delivered_at = now(), attempts = u.attempts,"
            " last_error = NULL FROM unnest($1::text[], $2::int[]) AS u(notification_id, attempts)"
            " WHERE d.notification_id = u.notification_id",
            [o.notification_id for o in delivered],
            [o.attempts for o in delivered],
        )
    if retry:
        await conn.execute(
            "UPDATE deliveries AS d SET attempts = u.attempts, last_error = u.error,"
            " next_attempt_at = now() + make_interval(secs => u.delay)"
            " FROM unnest($1::text[], $2::int[], $3::text[], $4::float8[])"
            "  AS u(notification_id, attempts, error, delay)"
            # Given up meanwhile (a partner revoked while this attempt was in flight):
            # keep that reason.
            " WHERE d.notification_id = u.notification_id AND d.dead_at IS NULL",
            [o.notification_id for o in retry],
            [o.attempts for o in retry],
            [o.error for o in retry],
            [o.retry_in for o in retry],
        )
    if dead:
        await conn.execute(
            "UPDATE deliveries AS d SET dead_at = now(), attempts = u.attempts,"
            " last_error = u.error FROM unnest($1::text[], $2::int[], $3::text[])"
            "  AS u(notification_id, attempts, error)"
            " WHERE d.notification_id = u.notification_id AND d.dead_at IS NULL",
            [o.notification_id for o in dead],
            [o.attempts for o in dead],
            [o.error for o in dead],
        )
