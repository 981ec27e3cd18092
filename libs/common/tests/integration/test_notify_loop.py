"""run_on_notify on the real PostgreSQL: a NOTIFY runs a round at once, a failed round is
retried on a fresh connection, and no LISTENing connection goes back to the pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gridline.common.pg import Connection, Pool, open_pool, run_on_notify
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
