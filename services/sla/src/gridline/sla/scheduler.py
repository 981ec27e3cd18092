"""sla's deadline scheduler: fires passed deadlines, warnings and report-in calls, on time,
once, from as many replicas as run.

Each round claims what is due with `FOR UPDATE SKIP LOCKED`, marks it fired and writes
its events to the outbox in one transaction (Sla.fire_due_*). Replicas skip each other's
rows; a replica killed mid-round rolls its round back, and the next round fires those
rows under the same stable event ids. When it is behind (a round filled its batch), the
next round takes twice as many rows, up to `max_batch`; when nothing is due, it sleeps
until the earliest pending due time, or `interval` real seconds at most, so that a
deadline armed meanwhile (by another replica or this one's consumer) is not missed for
longer than that."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from gridline.common.clock import Clock
from gridline.common.pg import Pool
from gridline.sla.adapters import store
from gridline.sla.handlers import Sla

# Rows another replica holds, or a due time that has just passed: look again soon, but
# do not spin.
MIN_SLEEP = 0.005


@dataclass
class Scheduler:
    sla: Sla
    pool: Pool
    clock: Clock
    interval: float  # real seconds, the longest sleep
    batch: int = 500
    max_batch: int = 8000

    async def round(self, limit: int) -> int:
        """Fire one batch of each kind; returns the largest number fired of one kind."""
        return max(
            await self.sla.fire_due_deadlines(self.pool, limit),
            await self.sla.fire_due_warnings(self.pool, limit),
            await self.sla.fire_due_report_ins(self.pool, limit),
        )

    async def pause(self) -> None:
        """Sleep until the earliest pending due time, within [MIN_SLEEP, interval]."""
        async with self.pool.acquire() as conn:
            at = await store.next_due(conn)
        wait = self.interval
        if at is not None:
            ahead = (at - self.clock.now()).total_seconds() / self.clock.speed
            wait = min(wait, max(MIN_SLEEP, ahead))
        await asyncio.sleep(wait)

    async def run(self) -> None:
        limit = self.batch
        while True:
            fired = await self.round(limit)
            if fired >= limit:  # behind: take more per transaction until caught up
                limit = min(limit * 2, self.max_batch)
                continue
            limit = self.batch
            if not fired:
                await self.pause()
