"""notify's use cases: turn events into deliveries; send due deliveries with retries."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from gridline.common.events import Envelope, WorkOrderEvent
from gridline.common.ids import stable_id
from gridline.common.pg import Connection, Pool
from gridline.notify.domain import messages
from gridline.notify.domain.signing import backoff_seconds, sign
from gridline.notify.metrics import NotifyMetrics

SCHEMA = "notify"
LEASE_SECONDS = 60  # a claimed delivery is retried by someone else if we die mid-send


def notification_id(event_id: str, subscription: str) -> str:
    """Stable per (event, subscription): a redelivered event yields the same id."""
    return stable_id("notification", event_id, subscription)


@dataclass
class Subscription:
    name: str
    url: str


@dataclass
class Notify:
    subscriptions: list[Subscription]
    secret: str | None
    metrics: NotifyMetrics
    max_attempts: int
    backoff_base: float
    backoff_max: float

    async def on_workorder_event(
        self, conn: Connection, event: WorkOrderEvent, envelope: Envelope
    ) -> None:
        for sub in self.subscriptions:
            nid = notification_id(envelope.id, sub.name)
            body = {
                "id": nid,
                "type": messages.kind(event),
                "work_order_id": event.work_order_id,
                "message": messages.render(event),
                "event": envelope.model_dump(mode="json"),
            }
            await conn.execute(
                "INSERT INTO deliveries (notification_id, event_id, event_type, work_order_id,"
                " event_version, subscription, url, body) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)"
                " ON CONFLICT (event_id, subscription) DO NOTHING",
                nid,
                envelope.id,
                envelope.type,
                event.work_order_id,
                event.version,
                sub.name,
                sub.url,
                json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
            )

    async def deliver_due(self, pool: Pool, client: httpx.AsyncClient, limit: int) -> int:
        """Claim due deliveries with a lease, send them concurrently, record the outcome.

        Only the earliest pending delivery of each work order and subscription is due, so a
        receiver sees one order's events in their order (a given-up one no longer blocks)."""
        async with pool.acquire() as conn:
            rows = await conn.fetch(
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
                LEASE_SECONDS,
            )
        if rows:
            await asyncio.gather(*(self._send(pool, client, r) for r in rows))
        return len(rows)

    async def _send(self, pool: Pool, client: httpx.AsyncClient, row: Any) -> None:
        nid, body = row["notification_id"], bytes(row["body"])
        ts = int(time.time())
        headers = {
            "content-type": "application/json; charset=utf-8",
            "webhook-id": nid,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign(self.secret or "", nid, ts, body),
        }
        error: str | None = None
        try:
            response = await client.post(row["url"], content=body, headers=headers)
            if not 200 <= response.status_code < 300:
                error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        attempts = row["attempts"] + 1
        async with pool.acquire() as conn:
            if error is None:
                await conn.execute(
                    "UPDATE deliveries SET delivered_at = now(), attempts = $2, last_error = NULL"
                    " WHERE notification_id = $1",
                    nid,
                    attempts,
                )
                self.metrics.delivered.inc()
            elif attempts >= self.max_attempts:
                await conn.execute(
                    "UPDATE deliveries SET dead_at = now(), attempts = $2, last_error = $3"
                    " WHERE notification_id = $1",
                    nid,
                    attempts,
                    error,
                )
                self.metrics.dead.inc()
            else:
                delay = backoff_seconds(attempts, self.backoff_base, self.backoff_max)
                await conn.execute(
                    "UPDATE deliveries SET attempts = $2, last_error = $3,"
                    " next_attempt_at = now() + make_interval(secs => $4) WHERE notification_id = $1",
                    nid,
                    attempts,
                    error,
                    delay,
                )
                self.metrics.retried.inc()
