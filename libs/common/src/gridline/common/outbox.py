"""The outbox relay: publishes committed outbox rows and deletes them once acknowledged."""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry, Counter, Gauge

from gridline.common.pg import Connection, Pool, outbox_channel, run_on_notify

log = logging.getLogger(__name__)


# The relay's one statement: take the schema's relay lock, then delete the oldest rows and
# return them. The ids are gathered once (ARRAY of a subquery: an InitPlan) and deleted by
# primary key. Written as `id IN (subquery)`, statistics taken while the outbox was empty
# (a service's first minutes) planned a semi-join that ran the subquery again for every
# row: quadratic in the backlog (docs/performance.md). Only the lock's holder deletes; a
# row another relay deleted after this statement's snapshot is skipped by the DELETE.
TAKE_BATCH = (
    "WITH relay AS (SELECT pg_try_advisory_xact_lock(hashtext($1)) AS mine)"
    " DELETE FROM outbox WHERE id = ANY(ARRAY("
    "  SELECT id FROM outbox, relay WHERE relay.mine ORDER BY id LIMIT $2))"
    " RETURNING id, topic, key, payload"
)


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
        max_batch_size: int = 8000,
        poll_interval: float = 1.0,
        linger: float = 0.0,
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._schema = schema
        self._batch_size = batch_size
        self._max_batch_size = max(batch_size, max_batch_size)
        # This round's batch: doubled after a full one (a backlog: fewer, larger rounds,
        # each still three round trips), back to batch_size once one is not full.
        self._batch = batch_size
        self._poll_interval = poll_interval
        self._linger = linger
        self._wake = asyncio.Event()
        self.healthy = True
        # When the rounds that failed since the last success began (time.monotonic()):
        # how long accepted events have been waiting for a broker (or database) to take
        # them. None while the relay keeps up.
        self.stalled_since: float | None = None
        self._round_started: float | None = None
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

        self._backlog = Gauge(
            "gridline_outbox_backlog",
            "Events stored but not yet acknowledged by Kafka (rows in the outbox), measured"
            " every few seconds.",
            registry=registry,
        )
        Gauge(
            "gridline_outbox_relay_stalled_seconds",
            "Seconds the relay has failed to publish (0 while it keeps up).",
            registry=registry,
        ).set_function(self.stalled_for)

    async def measure_backlog(self, every: float = 5.0) -> None:
        """Count the outbox's rows now and then: two index look-ups (ids are assigned in
        commit order and deleted oldest first, so the span is the count, or a little more
        while a transaction that took an id has not committed)."""
        while True:
            async with self._pool.acquire() as conn:
                span = await conn.fetchval("SELECT coalesce(max(id) - min(id) + 1, 0) FROM outbox")
            self._backlog.set(span)
            await asyncio.sleep(every)

    def stalled_for(self) -> float:
        """Seconds since the relay last failed to publish without succeeding since, or since
        the round in flight began (a send to a vanished broker may hang for its whole
        delivery timeout before it fails); 0 while it keeps up."""
        since = self.stalled_since if self.stalled_since is not None else self._round_started
        return 0.0 if since is None else time.monotonic() - since

    async def relay_once(self, conn: Connection | None = None) -> int:
        """Publish up to one batch; returns how many rows were sent and deleted.

        Three round trips whatever the batch size: BEGIN; one statement that takes the
        schema's relay lock, deletes the oldest rows and returns them; COMMIT after Kafka
        acknowledged every one. A crash or a failed send rolls the delete back."""
        if conn is None:
            async with self._pool.acquire() as own:
                return await self.relay_once(own)
        async with conn.transaction():
            rows = await conn.fetch(TAKE_BATCH, f"outbox:{self._schema}", self._batch)
            if not rows:
                return 0
            rows.sort(key=lambda r: r["id"])  # RETURNING order is not guaranteed
            # Enqueue the whole batch (one request per partition), then wait for the acks.
            futures = [
                await self._producer.send(
                    r["topic"], value=bytes(r["payload"]), key=r["key"].encode()
                )
                for r in rows
            ]
            await asyncio.gather(*futures)
        self._published.inc(len(rows))
        return len(rows)

    async def run(self) -> None:
        """Relay whenever a commit notifies, and every poll interval in case one was missed."""

        async def prepare(conn: Connection) -> None:
            # The relay's commit only deletes rows Kafka has acknowledged: if a crash loses
            # it, the rows are sent again with the same ids and the consumers' inboxes skip
            # them. No WAL flush to wait for, then.
            await conn.execute("SET synchronous_commit TO off")

        async def work(conn: Connection) -> bool:
            self._round_started = time.monotonic()
            sent = await self.relay_once(conn)
            self.healthy = True
            self.stalled_since = self._round_started = None
            full = sent >= self._batch  # a full batch: more is waiting
            self._batch = min(2 * self._batch, self._max_batch_size) if full else self._batch_size
            return full

        def failed(_: Exception) -> None:  # broker or database down
            self.healthy = False
            if self.stalled_since is None:  # a send fails only after its timeout: count that
                self.stalled_since = self._round_started or time.monotonic()
            self._round_started = None
            self._failures.inc()

        await run_on_notify(
            self._pool,
            outbox_channel(self._schema),
            work,
            wake=self._wake,
            idle=lambda: self._poll_interval,
            linger=self._linger,
            prepare=prepare,
            failed=failed,
        )
