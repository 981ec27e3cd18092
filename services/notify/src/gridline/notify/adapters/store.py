"""Deliveries in PostgreSQL (schema `notify`): one row per event and subscription."""

from __future__ import annotations

from typing import Any

from gridline.common.pg import Connection, Pool


async def add_delivery(
    conn: Connection,
    *,
    notification_id: str,
    event_id: str,
    event_type: str,
    work_order_id: str,
    event_version: int,
    subscription: str,
    url: str,
    body: bytes,
) -> None:
    """A redelivered event finds its row already there and adds nothing."""
    await conn.execute(
        "INSERT INTO deliveries (notification_id, event_id, event_type, work_order_id,"
        " event_version, subscription, url, body) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)"
        " ON CONFLICT (event_id, subscription) DO NOTHING",
        notification_id,
        event_id,
        event_type,
        work_order_id,
        event_version,
        subscription,
        url,
        body,
    )


async def claim_due(pool: Pool, limit: int, lease_seconds: float) -> list[Any]:
    """Due deliveries, each leased for `lease_seconds` (retried by anyone after that).

    Only the earliest pending delivery of each work order and subscription is due, so a
    receiver sees one order's events in their order (a given-up one no longer blocks)."""
    async with pool.acquire() as conn:
        return list(
            await conn.fetch(
                "UPDATE deliveries SET next_attempt_at = now() + make_interval(secs => $2)"
                " WHERE notification_id IN (SELECT d.notification_id FROM deliveries d"
                "  WHERE d.delivered_at IS NULL AND d.dead_at IS NULL"
                "  AND d.next_attempt_at <= now()"
                "  AND NOT EXISTS (SELECT 1 FROM deliveries e"
                "   WHERE e.work_order_id = d.work_order_id AND e.subscription = d.subscription"
                "   AND e.delivered_at IS NULL AND e.dead_at IS NULL"
                "   AND e.event_version < d.event_version)"
                "  ORDER BY d.next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
                " RETURNING notification_id, url, body, attempts",
                limit,
                lease_seconds,
            )
        )


async def mark_delivered(pool: Pool, notification_id: str, attempts: int) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE deliveries SET delivered_at = now(), attempts = $2, last_error = NULL"
            " WHERE notification_id = $1",
            notification_id,
            attempts,
        )


async def mark_dead(pool: Pool, notification_id: str, attempts: int, error: str) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE deliveries SET dead_at = now(), attempts = $2, last_error = $3"
            " WHERE notification_id = $1",
            notification_id,
            attempts,
            error,
        )


async def retry_later(
    pool: Pool, notification_id: str, attempts: int, error: str, delay_seconds: float
) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE deliveries SET attempts = $2, last_error = $3,"
            " next_attempt_at = now() + make_interval(secs => $4) WHERE notification_id = $1",
            notification_id,
            attempts,
            error,
            delay_seconds,
        )
