"""intake's composition root."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources

from gridline.common.events import (
    PolicyActivated,
    WorkOrderAssigned,
    WorkOrderEscalated,
    WorkOrderReopened,
    WorkOrderResolved,
)
from gridline.common.runtime import Runtime, open_runtime
from gridline.intake.adapters.group_commit import GroupCommit
from gridline.intake.config import IntakeSettings
from gridline.intake.domain.submission import Accepted
from gridline.intake.handlers import SCHEMA, Intake
from gridline.intake.metrics import IntakeMetrics


@dataclass
class IntakeService:
    runtime: Runtime
    intake: Intake
    settings: IntakeSettings
    metrics: IntakeMetrics
    key_sources: dict[str, str]
    # The one writer of accepted reports: concurrent POSTs share its transactions.
    submissions: GroupCommit[Accepted]


@asynccontextmanager
async def bootstrap(settings: IntakeSettings) -> AsyncIterator[IntakeService]:
    migrations = resources.files("gridline.intake").joinpath("migrations")
    async with open_runtime(SCHEMA, settings, migrations=[migrations]) as runtime:
        metrics = IntakeMetrics(runtime.registry)
        intake = Intake(runtime.clock, runtime.source)
        async with runtime.pool.acquire() as conn:
            await intake.load_reporter_key(conn)
            await intake.refresh_policy(conn)
        submissions = GroupCommit(
            runtime.pool,
            intake.store_accepted,
            wait=settings.group_commit_wait_ms / 1000,
            max_rows=settings.group_commit_max_rows,
            observe=metrics.group_commit_rows.observe,
        )
        runtime.background("group-commit", submissions.run)
        # One handler for the work-order events, so that it receives them mixed, in one
        # call per poll (the consumer groups events by handler).
        on_work_order = intake.on_work_order
        runtime.consume(
            "intake",
            {
                PolicyActivated: intake.on_policy,
                WorkOrderAssigned: on_work_order,
                WorkOrderEscalated: on_work_order,
                WorkOrderResolved: on_work_order,
                WorkOrderReopened: on_work_order,
            },
        )

        async def follow_policy() -> None:
            while True:
                await asyncio.sleep(settings.policy_refresh)
                async with runtime.pool.acquire() as conn:
                    await intake.refresh_policy(conn)

        runtime.background("policy-follower", follow_policy)
        yield IntakeService(runtime, intake, settings, metrics, settings.key_sources(), submissions)
