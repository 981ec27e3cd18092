"""notify's use cases: turn events into deliveries; send due deliveries with retries."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx

from gridline.common.events import Envelope, WorkOrderEvent
from gridline.common.ids import stable_id
from gridline.common.pg import Connection, Pool
from gridline.notify.adapters import store, webhook
from gridline.notify.domain import messages
from gridline.notify.domain.signing import backoff_seconds
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
        """One delivery per subscription, stored in the event's transaction."""
        for sub in self.subscriptions:
            nid = notification_id(envelope.id, sub.name)
            body = {
                "id": nid,
                "type": messages.kind(event),
                "work_order_id": event.work_order_id,
                "message": messages.render(event),
                "event": envelope.model_dump(mode="json"),
            }
            await store.add_delivery(
                conn,
                notification_id=nid,
                event_id=envelope.id,
                event_type=envelope.type,
                work_order_id=event.work_order_id,
                event_version=event.version,
                subscription=sub.name,
                url=sub.url,
                body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
            )

    async def deliver_due(self, pool: Pool, client: httpx.AsyncClient, limit: int) -> int:
        """Claim due deliveries with a lease, send them concurrently, record the outcome."""
        rows = await store.claim_due(pool, limit, LEASE_SECONDS)
        if rows:
            await asyncio.gather(*(self._send(pool, client, r) for r in rows))
        return len(rows)

    async def _send(self, pool: Pool, client: httpx.AsyncClient, row: Any) -> None:
        nid, attempts = row["notification_id"], row["attempts"] + 1
        error = await webhook.post(client, row["url"], nid, bytes(row["body"]), self.secret or "")
        if error is None:
            await store.mark_delivered(pool, nid, attempts)
            self.metrics.delivered.inc()
        elif attempts >= self.max_attempts:
            await store.mark_dead(pool, nid, attempts, error)
            self.metrics.dead.inc()
        else:
            delay = backoff_seconds(attempts, self.backoff_base, self.backoff_max)
            await store.retry_later(pool, nid, attempts, error, delay)
            self.metrics.retried.inc()
