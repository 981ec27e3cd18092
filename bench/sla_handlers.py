"""sla's event handlers alone: CPU per event of `on_assignments` and `on_resolutions`
(batches of 100, as the consumer hands them over) against the real PostgreSQL, in a
scratch schema migrated with sla's migrations and dropped afterwards.

    DATABASE_URL=postgresql://postgres@127.0.0.1:25432/gridline \\
        .venv/bin/python bench/sla_handlers.py [--profile]

Prints process CPU and wall time per event (the PostgreSQL server's own CPU is not in
it); `--profile` adds cProfile's top functions by internal time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from gridline.common.clock import ManualClock
from gridline.common.consumer import Incoming
from gridline.common.events import (
    Assignment,
    EventData,
    WorkOrderAssigned,
    WorkOrderResolved,
    envelope_for,
)
from gridline.common.pg import Connection, migrate, open_pool
from gridline.common.settings import PostgresSettings
from gridline.sla.handlers import Sla

SCHEMA = "sla_handlers_bench"
AT = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
BATCH = 100


def ref(i: int, version: int) -> dict[str, Any]:
    grid = f"g{i % 100}"
    return {
        "work_order_id": f"o{i}",
        "report_id": f"r{i}",
        "version": version,
        "category": f"cat-{i % 20}",
        "category_name_en": "cat",
        "category_name_zh": "类",
        "street_id": f"s{i % 10}",
        "district_id": "d1",
        "grid_id": grid,
        "community_id": f"c{i % 30}",
        "policy_version": "p",
        "time_zone": "Asia/Shanghai",
    }


def assigned(i: int) -> WorkOrderAssigned:
    a = Assignment(
        seq=1,
        tier="grid",
        unit_id=f"g{i % 100}",
        unit_name="网格",
        unit_level="grid",
        assigned_at=AT,
        due_at=AT + timedelta(hours=8),
        yellow_at=AT + timedelta(hours=6.4),
        red_at=AT + timedelta(hours=8),
        supervisor_id=f"c{i % 30}",
    )
    return WorkOrderAssigned(
        **ref(i, 1), source="citizen", lat=31.7, lon=119.9, opened_at=AT, assignment=a
    )


def resolved(i: int) -> WorkOrderResolved:
    return WorkOrderResolved(
        **ref(i, 3),
        tier="grid",
        unit_id=f"g{i % 100}",
        unit_name="网格",
        resolved_by_unit_id=f"g{i % 100}",
        opened_at=AT,
        resolved_at=AT + timedelta(hours=i % 7),
        due_at=AT + timedelta(hours=5),
    )


def batches(make: Callable[[int], EventData], n: int) -> list[list[Incoming[Any]]]:
    events = [make(i) for i in range(n)]
    return [
        [Incoming(e, envelope_for(e, source="/bench", time=AT)) for e in events[k : k + BATCH]]
        for k in range(0, n, BATCH)
    ]


async def measure(
    pool: Any, handle: Callable[[Connection, list[Incoming[Any]]], Awaitable[None]], bs: list[Any]
) -> tuple[float, float]:
    """CPU and wall seconds per event of handling `bs`, one transaction per batch."""
    cpu, wall = time.process_time(), time.perf_counter()
    for b in bs:
        async with pool.acquire() as conn, conn.transaction():
            await handle(conn, b)
    n = sum(len(b) for b in bs)
    return (time.process_time() - cpu) / n, (time.perf_counter() - wall) / n


async def main(orders: int, profile: bool) -> None:
    async with open_pool(PostgresSettings(), SCHEMA) as pool:
        await pool.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await migrate(pool, SCHEMA, [resources.files("gridline.sla").joinpath("migrations")])
        sla = Sla(ManualClock(AT), "/bench", [3600.0])
        try:
            for name, handle, make in (
                ("on_assignments", sla.on_assignments, assigned),
                ("on_resolutions", sla.on_resolutions, resolved),
            ):
                bs = batches(make, orders)
                await measure(pool, handle, bs[:5])  # warm the pool's statement caches
                profiler = cProfile.Profile()
                if profile:
                    profiler.enable()
                cpu, wall = await measure(pool, handle, bs[5:])
                profiler.disable()
                print(f"{name}: {cpu * 1000:.3f} ms CPU, {wall * 1000:.3f} ms wall per event")
                if profile:
                    pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
        finally:
            await pool.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


if __name__ == "__main__":
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--orders", type=int, default=4000)
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    asyncio.run(main(args.orders, args.profile))
