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
import time
from dataclasses import dataclass, field
from datetime import datetime

from gridline.common.clock import Clock
from gridline.common.pg import Pool
from gridline.sla.adapters import store
from gridline.sla.handlers import FIRING, Sla

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
    _floors: dict[str, datetime | None] = field(default_factory=dict)
    _sweep_at: float = 0.0

    async def round(self, limit: int) -> int:
        """Fire one batch of each kind; returns the largest number fired of one kind.

        Each kind's scan starts at the latest due time its previous round fired (the
        entries before it are dead ones, fired already); a round that fires nothing, and
        every `interval`, start again from the oldest entry, for what the floor skipped:
        a deadline armed late with an earlier due time, or rows another replica held and
        did not commit."""
        if not any(self._floors.values()) or time.monotonic() >= self._sweep_at:
            self._floors = dict.fromkeys(FIRING)
            self._sweep_at = time.monotonic() + self.interval
        most = 0
        for kind in FIRING:
            fired, last = await self.sla.fire(kind, self.pool, limit, self._floors.get(kind))
            self._floors[kind] = last if fired else None
            most = max(most, fired)
        return most

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
