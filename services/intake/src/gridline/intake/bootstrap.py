"""intake's composition root."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources

from gridline.common.consumer import one_by_one
from gridline.common.events import (
    PolicyActivated,
    WorkOrderAssigned,
    WorkOrderEscalated,
    WorkOrderResolved,
)
from gridline.common.runtime import Runtime, open_runtime
from gridline.intake.config import IntakeSettings
from gridline.intake.handlers import SCHEMA, Intake
from gridline.intake.metrics import IntakeMetrics


@dataclass
class IntakeService:
    runtime: Runtime
    intake: Intake
    settings: IntakeSettings
    metrics: IntakeMetrics
    key_sources: dict[str, str]


@asynccontextmanager
async def bootstrap(settings: IntakeSettings) -> AsyncIterator[IntakeService]:
    migrations = resources.files("gridline.intake").joinpath("migrations")
    async with open_runtime(SCHEMA, settings, migrations=[migrations]) as runtime:
        intake = Intake(runtime.clock, runtime.source)
        async with runtime.pool.acquire() as conn:
            await intake.refresh_policy(conn)
        runtime.consume(
            "intake",
            {
                PolicyActivated: one_by_one(intake.on_policy),
                WorkOrderAssigned: one_by_one(intake.on_assigned),
                WorkOrderEscalated: one_by_one(intake.on_escalated),
                WorkOrderResolved: one_by_one(intake.on_resolved),
            },
        )

        async def follow_policy() -> None:
            while True:
                await asyncio.sleep(settings.policy_refresh)
                async with runtime.pool.acquire() as conn:
                    await intake.refresh_policy(conn)

        runtime.background("policy-follower", follow_policy)
        yield IntakeService(
            runtime, intake, settings, IntakeMetrics(runtime.registry), settings.key_sources()
        )
