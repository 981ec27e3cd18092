"""The outbox relay: publishes committed outbox rows and deletes them once acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry, Counter

from gridline.common.pg import Pool, outbox_channel

log = logging.getLogger(__name__)


class OutboxRelay:
    """One relay per service process. A transaction-scoped advisory lock lets only one
    instance relay a schema at a time, which keeps each key's events in commit order."""

    def __init__(
        self,
        pool: Pool,
        producer: AIOKafkaProducer,
        schema: str,
        registry: CollectorRegistry,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._schema = schema
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._wake = asyncio.Event()
        self.healthy = True
        self._published = Counter(
            "gridline_outbox_published_total",
            "Outbox events acknowledged by Kafka and removed from the outbox.",
            registry=registry,
        )
        self._failures = Counter(
            "gridline_outbox_relay_failures_total",
            "Relay rounds that failed (broker or database unavailable); retried.",
            registry=registry,
        )

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def relay_once(self) -> int:
        """Publish up to one batch; returns how many rows were sent and deleted."""
        async with self._pool.acquire() as conn, conn.transaction():
            locked = await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtext($1))", f"outbox:{self._schema}"
            )
            if not locked:
                return 0
            rows = await conn.fetch(
                "SELECT id, topic, key, payload FROM outbox ORDER BY id LIMIT $1 FOR UPDATE",
                self._batch_size,
            )
            if not rows:
                return 0
            # Enqueue the whole batch, then wait for every acknowledgement.
            futures = [
                await self._producer.send(
                    r["topic"], value=bytes(r["payload"]), key=r["key"].encode()
                )
                for r in rows
            ]
            await asyncio.gather(*futures)
            await conn.execute(
                "DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
        self._published.inc(len(rows))
        return len(rows)

    async def run(self) -> None:
        listener: asyncpg.Connection | None = None
        backoff = 0.2
        try:
            while True:
                self._wake.clear()
                try:
                    if listener is None or listener.is_closed():
                        listener = await self._pool.acquire()
                        await listener.add_listener(outbox_channel(self._schema), self._notified)
                    sent = await self.relay_once()
                    self.healthy = True
                    backoff = 0.2
                except Exception as exc:  # broker or database down: retry, never drop
                    self.healthy = False
                    self._failures.inc()
                    log.warning("outbox relay round failed: %s", exc, exc_info=True)
                    if listener is not None:
                        with contextlib.suppress(Exception):
                            await self._pool.release(listener)
                        listener = None
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if sent >= self._batch_size:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval)
        finally:
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.remove_listener(outbox_channel(self._schema), self._notified)
                    await self._pool.release(listener)
