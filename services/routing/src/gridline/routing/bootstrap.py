"""Routing's composition root: the one place where its parts are wired together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources

from gridline.common.consumer import one_by_one
from gridline.common.events import DeadlineBreached, ReportSubmitted
from gridline.common.runtime import Runtime, open_runtime
from gridline.routing.config import RoutingSettings
from gridline.routing.handlers import SCHEMA, Routing
from gridline.routing.metrics import RoutingMetrics


@dataclass
class RoutingService:
    runtime: Runtime
    routing: Routing
    settings: RoutingSettings


@asynccontextmanager
async def bootstrap(settings: RoutingSettings) -> AsyncIterator[RoutingService]:
    migrations = resources.files("gridline.routing").joinpath("migrations")
    async with open_runtime(SCHEMA, settings, migrations=[migrations]) as runtime:
        routing = Routing(runtime.clock, runtime.source, RoutingMetrics(runtime.registry))
        async with runtime.pool.acquire() as conn:
            await routing.load_policy(conn)
        runtime.consume(
            "routing",
            {
                ReportSubmitted: one_by_one(routing.on_report_submitted),
                DeadlineBreached: one_by_one(routing.on_deadline_breached),
            },
        )

        async def follow_policy() -> None:
            while True:
                await asyncio.sleep(settings.policy_refresh)
                async with runtime.pool.acquire() as conn:
                    await routing.load_policy(conn)

        runtime.background("policy-follower", follow_policy)
        yield RoutingService(runtime, routing, settings)
