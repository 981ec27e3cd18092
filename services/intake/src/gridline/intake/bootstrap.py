"""intake's composition root."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources

from gridline.common.events import (
    DepartmentCalledIn,
    DepartmentCallEscalated,
    DepartmentReportedIn,
    PolicyActivated,
    WorkOrderAccepted,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderClosed,
    WorkOrderEscalated,
    WorkOrderReopened,
    WorkOrderResolved,
    WorkOrderReturned,
)
from gridline.common.runtime import Runtime, open_runtime
from gridline.intake.adapters.group_commit import GroupCommit
from gridline.intake.config import IntakeSettings
from gridline.intake.domain import tagging
from gridline.intake.domain.keys import KeyRing
from gridline.intake.domain.submission import Accepted
from gridline.intake.handlers import SCHEMA, Intake
from gridline.intake.metrics import IntakeMetrics
from gridline.intake.partner_cases import PartnerRegistry


@dataclass
class IntakeService:
    runtime: Runtime
    intake: Intake
    settings: IntakeSettings
    metrics: IntakeMetrics
    keys: KeyRing
    # The one writer of accepted reports: concurrent POSTs share its transactions.
    submissions: GroupCommit[Accepted]
    # Partners' keys, secrets and rate limits (partner_cases.py), read by the front door.
    partners: PartnerRegistry = field(default_factory=PartnerRegistry)

    def kafka_stalled_for(self) -> float | None:
        """Seconds the outbox relay has failed to publish, once that is longer than the
        grace (writes are then refused); None while Kafka takes what intake stores."""
        stalled = self.runtime.relay.stalled_for()
        return stalled if stalled > self.settings.kafka_outage_grace_s else None


@asynccontextmanager
async def bootstrap(settings: IntakeSettings) -> AsyncIterator[IntakeService]:
    migrations = resources.files("gridline.intake").joinpath("migrations")
    # jieba's dictionary: loaded once per process, before the catalogue's terms join it.
    await asyncio.to_thread(tagging.warm_up)
    async with open_runtime(SCHEMA, settings, migrations=[migrations]) as runtime:
        metrics = IntakeMetrics(runtime.registry)
        intake = Intake(
            runtime.clock,
            runtime.source,
            key_ttl=timedelta(hours=settings.idempotency_ttl_hours),
        )
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
                # The lifecycle's further moves: the view and the timeline (not tips).
                WorkOrderAccepted: intake.on_lifecycle,
                WorkOrderReturned: intake.on_lifecycle,
                WorkOrderCancelled: intake.on_lifecycle,
                WorkOrderClosed: intake.on_lifecycle,
                DepartmentCalledIn: intake.on_lifecycle,
                DepartmentReportedIn: intake.on_lifecycle,
                DepartmentCallEscalated: intake.on_lifecycle,
            },
        )

        async def follow_policy() -> None:
            while True:
                await asyncio.sleep(settings.policy_refresh)
                async with runtime.pool.acquire() as conn:
                    await intake.refresh_policy(conn)

        runtime.background("policy-follower", follow_policy)

        async def forget_expired_keys() -> None:
            # Lazy: an expired key is already ignored and replaced on reuse; this keeps the
            # table small. Every instance may sweep; the DELETE is idempotent.
            while True:
                await asyncio.sleep(600)
                await intake.forget_expired_keys(runtime.pool)

        runtime.background("idempotency-sweeper", forget_expired_keys)

        partners = PartnerRegistry(settings.partner_secret_key)
        await partners.refresh(runtime.pool)

        async def follow_partners() -> None:
            # Another instance's admin change (or a key's expiry) reaches this one within
            # a refresh; this instance's own changes refresh it at once.
            while True:
                await asyncio.sleep(settings.partner_refresh_s)
                await partners.refresh(runtime.pool)

        runtime.background("partner-directory", follow_partners)
        yield IntakeService(
            runtime, intake, settings, metrics, settings.key_ring(), submissions, partners
        )
