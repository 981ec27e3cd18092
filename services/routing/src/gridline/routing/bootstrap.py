"""Routing's composition root: the one place where its parts are wired together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources

from gridline.common.events import (
    DeadlineBreached,
    FeedbackGiven,
    ReportInBreached,
    ReportSubmitted,
)
from gridline.common.runtime import Runtime, open_runtime
from gridline.routing.commands import Commands
from gridline.routing.config import RoutingSettings
from gridline.routing.handlers import EventHandlers
from gridline.routing.metrics import RoutingMetrics
from gridline.routing.moves import Moves
from gridline.routing.policy_cache import PolicyHolder
from gridline.routing.snapshots import Snapshots

SCHEMA = "routing"
MIGRATIONS = resources.files("gridline.routing").joinpath("migrations")


@dataclass
class RoutingService:
    runtime: Runtime
    commands: Commands
    policy: PolicyHolder
    settings: RoutingSettings


@asynccontextmanager
async def bootstrap(settings: RoutingSettings) -> AsyncIterator[RoutingService]:
    async with open_runtime(SCHEMA, settings, migrations=[MIGRATIONS]) as runtime:
        metrics = RoutingMetrics(runtime.registry)
        policy = PolicyHolder()
        async with runtime.pool.acquire() as conn:
            await policy.load(conn)
        snapshots = Snapshots(policy)
        commands = Commands(
            runtime.pool,
            runtime.clock,
            runtime.source,
            metrics,
            policy,
            settings.admin_key,
            snapshots,
        )
        events = EventHandlers(runtime.clock, runtime.source, metrics, policy, snapshots)
        moves = Moves(commands)
        runtime.consume(
            "routing",
            {
                ReportSubmitted: events.reports_submitted,
                DeadlineBreached: events.deadlines_breached,
                FeedbackGiven: events.feedback_given,
                ReportInBreached: moves.reports_in_breached,
            },
        )

        async def close_after_window() -> None:
            """结案: resolved orders nobody rejected within the feedback window."""
            while True:
                if policy.current is None or not await moves.close_after_window():
                    await asyncio.sleep(settings.close_sweep_interval)

        async def follow_policy() -> None:
            while True:
                await asyncio.sleep(settings.policy_refresh)
                async with runtime.pool.acquire() as conn:
                    await policy.load(conn)

        runtime.background("policy-follower", follow_policy)
        runtime.background("close-sweep", close_after_window)
        yield RoutingService(runtime, commands, policy, settings)
