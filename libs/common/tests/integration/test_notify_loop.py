"""run_on_notify and the pool on the real PostgreSQL: a NOTIFY runs a round at once, a
failed round is retried on a fresh connection, no LISTENing connection goes back to the
pool, and no wait for a pooled connection outlasts the pool's bound."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from gridline.common.pg import Connection, Pool, is_transient, open_pool, run_on_notify
from gridline.common.settings import PostgresSettings

pytestmark = [pytest.mark.integration]


@pytest.fixture
async def pool(pg_settings: PostgresSettings, scratch_schema: str) -> AsyncIterator[Pool]:
    async with open_pool(pg_settings, scratch_schema) as pool:
        yield pool


async def test_a_notification_runs_a_round_and_a_failed_round_is_retried_on_a_new_connection(
    pool: Pool, unique: str
) -> None:
    channel = f"loop_{unique}"
    rounds: list[int] = []  # backend pid of each round's connection
    failures: list[Exception] = []
    ran = asyncio.Event()

    async def work(conn: Connection) -> bool:
        rounds.append(conn.get_server_pid())
        ran.set()
        if len(rounds) == 2:
            raise ConnectionResetError("the database went away")
        return False

    task = asyncio.create_task(
        run_on_notify(
            pool, channel, work, wake=asyncio.Event(), idle=lambda: 60.0, failed=failures.append
        )
    )
    try:
        async with asyncio.timeout(10):
            await ran.wait()  # the first round runs at start
            ran.clear()
            await pool.execute(f"NOTIFY {channel}")
            await ran.wait()  # the notification ran the second round (the idle wait is 60 s)
            ran.clear()
            await ran.wait()  # which failed: the third runs on a fresh connection
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(failures) == 1 and isinstance(failures[0], ConnectionResetError)
    assert rounds[0] == rounds[1] != rounds[2]
    # Neither listening connection is back in the pool: pooled ones listen to nothing.
    async with pool.acquire() as conn:
        assert conn.get_server_pid() not in rounds
        async with asyncio.timeout(5):  # their backends end once the sockets close
            while await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", rounds
            ):
                await asyncio.sleep(0.05)


async def test_a_connection_the_server_closes_is_replaced_and_the_loop_goes_on(
    pool: Pool, unique: str
) -> None:
    """A server that ends the listening connection (a crash, pg_terminate_backend): asyncpg
    hands the connection back to the pool itself and detaches it, so the loop must neither
    use nor terminate it again; it runs its next round on a fresh connection, not stopped
    by an error from the detached one."""
    channel = f"loop_{unique}"
    rounds: list[int] = []
    failures: list[Exception] = []
    ran = asyncio.Event()
    wake = asyncio.Event()

    async def work(conn: Connection) -> bool:
        rounds.append(conn.get_server_pid())
        ran.set()
        return False

    task = asyncio.create_task(
        run_on_notify(pool, channel, work, wake=wake, idle=lambda: 60.0, failed=failures.append)
    )
    try:
        async with asyncio.timeout(10):
            await ran.wait()
            ran.clear()
            killed = rounds[0]
            await pool.execute("SELECT pg_terminate_backend($1)", killed)
            await asyncio.sleep(0.3)  # asyncpg sees the socket close and releases the holder
            wake.set()  # the next round: on a fresh connection
            await ran.wait()
    finally:
        task.cancel()
        results = await asyncio.gather(task, return_exceptions=True)
    assert not [r for r in results if not isinstance(r, asyncio.CancelledError)], results
    assert rounds[-1] != killed


async def test_a_pool_that_hands_out_no_connection_is_a_failed_round_not_a_silent_wait(
    pg_settings: PostgresSettings, scratch_schema: str, unique: str
) -> None:
    channel = f"loop_{unique}"
    failures: list[Exception] = []
    ran = asyncio.Event()

    async def work(conn: Connection) -> bool:
        ran.set()
        return False

    settings = pg_settings.model_copy(
        update={"pool_min": 1, "pool_max": 1, "acquire_timeout_s": 0.3}
    )
    async with open_pool(settings, scratch_schema) as pool:
        held = await pool.acquire()  # the pool's only connection
        task = asyncio.create_task(
            run_on_notify(
                pool, channel, work, wake=asyncio.Event(), idle=lambda: 60.0, failed=failures.append
            )
        )
        try:
            async with asyncio.timeout(10):
                while not failures:
                    await asyncio.sleep(0.05)
                assert not ran.is_set()
                await pool.release(held)  # once one is free, the next round runs
                await ran.wait()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await pool.release(held)  # (again: a no-op) so that the pool can close
    assert isinstance(failures[0], TimeoutError)


async def test_every_wait_for_a_pooled_connection_ends_at_the_pools_bound(
    pg_settings: PostgresSettings, scratch_schema: str
) -> None:
    """Requests and loops alike (the pool's own query methods acquire through it): a pool
    that hands out nothing raises a transient TimeoutError after the bound, not a wait
    without end; a caller may still ask for another bound."""
    settings = pg_settings.model_copy(
        update={"pool_min": 1, "pool_max": 1, "acquire_timeout_s": 0.3}
    )
    async with open_pool(settings, scratch_schema) as pool:
        held = await pool.acquire()
        try:
            started = time.monotonic()
            with pytest.raises(TimeoutError) as raised:
                await asyncio.wait_for(pool.fetchval("SELECT 1"), 10)  # 10: a test's bound
            assert 0.25 < time.monotonic() - started < 5  # the pool's, not the test's
            assert is_transient(raised.value)
            with pytest.raises(TimeoutError):
                async with pool.acquire(timeout=0.05):
                    pass
        finally:
            await pool.release(held)
        assert await pool.fetchval("SELECT 1") == 1
