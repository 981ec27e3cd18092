"""Partners in PostgreSQL (schema `notify`, table `partners`) and what a change of a
partner does to its pending callbacks; every function is one statement for a batch."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from gridline.common.pg import Connection
from gridline.notify.domain.callbacks import SUBSCRIPTION_PREFIX, Partner


class PartnerState(NamedTuple):
    partner_id: str
    active: bool
    callback_url: str | None
    secret_versions: list[int]
    updated_at: datetime


def changes_channel(schema: str) -> str:
    """Where a commit that gave partners new callbacks to send notifies the dispatcher."""
    return f"{schema}_partners"


async def signal_changes(conn: Connection) -> None:
    """Tell the dispatcher, at commit, that partners' subscriptions may have changed."""
    await conn.execute("SELECT pg_notify(current_schema() || '_partners', '')")


async def apply(conn: Connection, states: Sequence[PartnerState]) -> list[PartnerState]:
    """Store each state unless a newer one (by updated_at) is stored; the ones applied."""
    if not states:
        return []
    rows = await conn.fetch(
        "INSERT INTO partners AS p (partner_id, active, callback_url, secret_versions, updated_at)"
        " SELECT u.partner_id, u.active, u.callback_url,"
        "  ARRAY(SELECT v.n::int FROM jsonb_array_elements_text(u.versions::jsonb) WITH ORDINALITY"
        "   AS v(n, i) ORDER BY v.i), u.updated_at"
        " FROM unnest($1::text[], $2::bool[], $3::text[], $4::text[], $5::timestamptz[])"
        "  AS u(partner_id, active, callback_url, versions, updated_at)"
        " ORDER BY u.partner_id"  # the lock order of placeholders_then_read(): no deadlock
        " ON CONFLICT (partner_id) DO UPDATE SET active = EXCLUDED.active,"
        "  callback_url = EXCLUDED.callback_url, secret_versions = EXCLUDED.secret_versions,"
        "  updated_at = EXCLUDED.updated_at"
        " WHERE p.updated_at IS NULL OR p.updated_at <= EXCLUDED.updated_at"
        " RETURNING partner_id, active, callback_url, secret_versions, updated_at",
        [s.partner_id for s in states],
        [s.active for s in states],
        [s.callback_url for s in states],
        # JSON text: arrays of unequal length do not make one SQL array.
        [json.dumps(list(s.secret_versions)) for s in states],
        [s.updated_at for s in states],
    )
    return [PartnerState(*r) for r in rows]


async def settle_pending(conn: Connection, applied: Sequence[PartnerState]) -> int:
    """After partners changed: their parked callbacks become due at the partner's URL, or,
    for a partner revoked or without a callback URL, every pending callback is marked dead
    with the reason. A callback parked for a newer state of the partner than the one
    applied (`partner_since`) is left to wait for it. The number of deliveries made due."""
    if not applied:
        return 0
    reasons = [_reason(s) for s in applied]
    due: int = await conn.fetchval(
        "WITH changed AS (UPDATE deliveries AS d SET"
        "  url = CASE WHEN u.reason IS NULL THEN u.callback_url ELSE d.url END,"
        "  next_attempt_at = CASE WHEN u.reason IS NULL THEN now() ELSE d.next_attempt_at END,"
        "  dead_at = CASE WHEN u.reason IS NULL THEN NULL ELSE now() END,"
        "  last_error = coalesce(u.reason, d.last_error)"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])"
        "  AS u(subscription, callback_url, reason, updated_at)"
        " WHERE d.subscription = u.subscription"
        "  AND d.delivered_at IS NULL AND d.dead_at IS NULL"
        # Parked ones, and for a reason the due ones too: each arm one of the partial
        # indexes (migrations/0008).
        "  AND (d.next_attempt_at = 'infinity'"
        "   OR (u.reason IS NOT NULL AND d.next_attempt_at < 'infinity'))"
        "  AND (d.partner_since IS NULL OR d.partner_since <= u.updated_at)"
        " RETURNING d.dead_at)"
        " SELECT count(*) FILTER (WHERE dead_at IS NULL) FROM changed",
        [SUBSCRIPTION_PREFIX + s.partner_id for s in applied],
        [s.callback_url for s in applied],
        reasons,
        [s.updated_at for s in applied],
    )
    return due


def _reason(state: PartnerState) -> str | None:
    partner = Partner(
        state.partner_id,
        state.active,
        state.callback_url,
        tuple(state.secret_versions),
        state.updated_at,
    )
    return partner.why_not_called()


async def placeholders_then_read(conn: Connection, partner_ids: Sequence[str]) -> list[Partner]:
    """The partners of a batch of tips, creating a placeholder (no updated_at) for each one
    not seen yet, read with a share lock (in apply()'s lock order): a concurrent
    PartnerUpdated for one of them waits for this transaction and then finds (and
    releases) the callbacks parked here, or this read waits for it and sees it."""
    ids = sorted(set(partner_ids))
    await conn.execute(
        "INSERT INTO partners (partner_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
        ids,
    )
    return await read(conn, ids, lock=True)


async def read(
    conn: Connection, partner_ids: Sequence[str], *, lock: bool = False
) -> list[Partner]:
    rows = await conn.fetch(
        "SELECT partner_id, active, callback_url, secret_versions, updated_at FROM partners WHERE partner_id = ANY($1::text[])"
        + (" ORDER BY partner_id FOR SHARE" if lock else ""),
        list(partner_ids),
    )
    return [
        Partner(
            r["partner_id"],
            r["active"],
            r["callback_url"],
            tuple(r["secret_versions"]),
            r["updated_at"],
        )
        for r in rows
    ]


async def callable_subscriptions(conn: Connection) -> set[str]:
    """The subscriptions of partners that can be called back now (a handful of rows)."""
    rows = await conn.fetch(
        "SELECT partner_id FROM partners"
        " WHERE updated_at IS NOT NULL AND active AND callback_url IS NOT NULL"
    )
    return {SUBSCRIPTION_PREFIX + r["partner_id"] for r in rows}
