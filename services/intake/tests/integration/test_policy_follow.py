"""Intake follows the policy other instances store: a refresh under way never puts back a
version older than one this process applied from its event meanwhile."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from gridline.common.clock import ManualClock
from gridline.common.pg import Pool
from gridline.intake.adapters import store
from gridline.intake.handlers import Intake

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def extent(west: float) -> dict[str, Any]:
    square = [[west, 31.7], [west + 0.2, 31.7], [west + 0.2, 31.9], [west, 31.9], [west, 31.7]]
    feature = {
        "type": "Feature",
        "properties": {"district_id": "d"},
        "geometry": {"type": "Polygon", "coordinates": [square]},
    }
    return {"extent": {"type": "FeatureCollection", "features": [feature]}}


async def test_a_refresh_under_way_keeps_the_version_applied_meanwhile(pool: Pool) -> None:
    intake = Intake(ManualClock(NOW), "/gridline/intake")
    async with pool.acquire() as conn:
        await store.save_policy(conn, "jurisdiction", "v2", extent(119.9), NOW)
    read, go = asyncio.Event(), asyncio.Event()

    class Slow:  # hands over the document read only when `go` is set
        def __init__(self, conn: Any) -> None:
            self.conn = conn

        async def fetch(self, sql: str, *args: Any) -> Any:
            return await self.conn.fetch(sql, *args)

        async def fetchval(self, sql: str, *args: Any) -> Any:
            value = await self.conn.fetchval(sql, *args)
            read.set()
            await go.wait()
            return value

    async with pool.acquire() as conn:
        refresh = asyncio.create_task(intake.refresh_policy(Slow(conn)))  # type: ignore[arg-type]
        await read.wait()  # it has read v2 and waits
        intake.policy.apply("jurisdiction", "v3", extent(121.0))  # as on_policy does
        go.set()
        await refresh
    assert intake.policy.versions["jurisdiction"] == "v3"
    assert intake.policy.extent is not None and intake.policy.extent.contains(121.1, 31.8)
    async with pool.acquire() as conn:
        await intake.refresh_policy(conn)  # nothing under way: the stored version is taken
    assert intake.policy.versions["jurisdiction"] == "v2"
