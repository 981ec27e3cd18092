"""The scheduler against the real PostgreSQL: replicas racing over the same deadlines fire
each once, a round killed before its commit fires nothing and its deadlines fire once
afterwards, and a scheduler behind takes larger batches."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from gridline.common.clock import ManualClock
from gridline.common.pg import Pool, open_pool
from gridline.common.settings import PostgresSettings
from gridline.sla.adapters import store
from gridline.sla.handlers import Sla, breach_event_id
from gridline.sla.scheduler import Scheduler

from .test_sla_batches import AT, BUCKETS, outbox

pytestmark = pytest.mark.integration

N = 3000


@pytest.fixture
async def replica_pool(
    pg_settings: PostgresSettings, scratch_schema: str, pool: Pool
) -> AsyncIterator[Pool]:
    """A second replica's own pool on the same (already migrated) schema."""
    del pool  # asked for so that the schema is migrated first
    async with open_pool(pg_settings, scratch_schema) as other:
        yield other


async def arm_many(pool: Pool, n: int) -> None:
    async with pool.acquire() as conn:
        await store.set_deadlines(
            conn,
            [
                store.Deadline(f"o{i}", 1, "grid", "grid-unit", AT + timedelta(seconds=i))
                for i in range(n)
            ],
        )


async def assert_each_fired_once(pool: Pool, n: int) -> None:
    ids = [event_id for event_id, *_ in await outbox(pool)]
    assert len(ids) == n
    assert set(ids) == {breach_event_id(f"o{i}", 1) for i in range(n)}
    assert await pool.fetchval("SELECT count(*) FROM deadlines WHERE fired_at IS NULL") == 0


async def test_two_racing_schedulers_fire_each_deadline_once(
    pool: Pool, replica_pool: Pool, clock: ManualClock
) -> None:
    await arm_many(pool, N)
    clock.advance(timedelta(hours=2))
    fired: dict[int, int] = {}

    class Replica(Sla):
        async def fire(
            self, kind: str, pool: Pool, limit: int, after: datetime | None = None
        ) -> tuple[int, datetime | None]:
            n, last = await super().fire(kind, pool, limit, after)
            fired[id(self)] = fired.get(id(self), 0) + n
            return n, last

    replicas = [
        Scheduler(Replica(clock, "/gridline/sla", BUCKETS), p, clock, 0.05, 20, 160)
        for p in (pool, replica_pool, pool, replica_pool)
    ]
    tasks = [asyncio.create_task(r.run()) for r in replicas]
    try:
        async with asyncio.timeout(60):
            while await pool.fetchval("SELECT count(*) FROM deadlines WHERE fired_at IS NULL"):
                await asyncio.sleep(0.05)
                for t in tasks:  # a double fire would break the outbox's unique event id
                    if t.done():
                        t.result()
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
    await assert_each_fired_once(pool, N)
    assert sum(fired.values()) == N
    assert len([n for n in fired.values() if n]) >= 2  # they did race


async def test_a_round_killed_before_its_commit_fires_nothing_and_its_rows_fire_later(
    pool: Pool, replica_pool: Pool, clock: ManualClock
) -> None:
    await arm_many(pool, 100)
    clock.advance(timedelta(hours=2))
    sla = Sla(clock, "/gridline/sla", BUCKETS)
    # A replica claims and marks 60 rows, then dies before its commit (what the server
    # sees of a SIGKILL: the connection drops mid-transaction).
    victim = await replica_pool.acquire()
    transaction = victim.transaction()
    await transaction.start()
    assert len(await store.claim_due(victim, clock.now(), 60)) == 60
    # Meanwhile the other replica skips the locked rows and fires the rest.
    assert await sla.fire_due_deadlines(pool, 1000) == 40
    victim.terminate()
    with contextlib.suppress(Exception):
        await replica_pool.release(victim)
    for _ in range(100):  # the server notices the dropped connection and rolls back
        if await sla.fire_due_deadlines(pool, 1000):
            break
        await asyncio.sleep(0.05)
    assert await sla.fire_due_deadlines(pool, 1000) == 0
    await assert_each_fired_once(pool, 100)


async def test_a_scheduler_behind_takes_larger_batches_until_caught_up(
    pool: Pool, clock: ManualClock
) -> None:
    await arm_many(pool, 700)
    clock.advance(timedelta(hours=2))
    sizes: list[int] = []

    class Counting(Sla):
        async def fire(
            self, kind: str, pool: Pool, limit: int, after: datetime | None = None
        ) -> tuple[int, datetime | None]:
            n, last = await super().fire(kind, pool, limit, after)
            if kind == "deadlines":
                sizes.append(n)
            return n, last

    scheduler = Scheduler(Counting(clock, "/gridline/sla", BUCKETS), pool, clock, 0.05, 50, 400)
    task = asyncio.create_task(scheduler.run())
    try:
        async with asyncio.timeout(30):
            while sum(sizes) < 700:
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert [s for s in sizes if s] == [50, 100, 200, 350]
    await assert_each_fired_once(pool, 700)


async def test_a_deadline_behind_the_floor_still_fires(pool: Pool, clock: ManualClock) -> None:
    """The scan starts after the latest due time fired; one armed late with an earlier due
    time is found by the next full scan."""
    await arm_many(pool, 10)
    clock.advance(timedelta(hours=2))
    sla = Sla(clock, "/gridline/sla", BUCKETS)
    fired, last = await sla.fire("deadlines", pool, 100)
    assert (fired, last) == (10, AT + timedelta(seconds=9))
    async with pool.acquire() as conn:
        await store.set_deadlines(conn, [store.Deadline("late", 1, "grid", "u", AT)])
    assert await sla.fire("deadlines", pool, 100, last) == (0, None)
    scheduler = Scheduler(sla, pool, clock, 0.05, 50, 400)
    await scheduler.round(50)  # its first round scans from the oldest entry
    ids = [event_id for event_id, *_ in await outbox(pool)]
    assert ids[-1] == breach_event_id("late", 1)
    assert len(ids) == 11
