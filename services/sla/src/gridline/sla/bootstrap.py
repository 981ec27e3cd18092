"""sla's composition root."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources

from gridline.common.events import (
    DepartmentCalledIn,
    DepartmentReportedIn,
    FeedbackGiven,
    PolicyActivated,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderClosed,
    WorkOrderEscalated,
    WorkOrderReopened,
    WorkOrderResolved,
    WorkOrderReturned,
)
from gridline.common.runtime import Runtime, open_runtime
from gridline.sla import measuring, metrics
from gridline.sla.adapters import store, tallies
from gridline.sla.config import SlaSettings
from gridline.sla.handlers import SCHEMA, Sla
from gridline.sla.scheduler import Scheduler


@dataclass
class SlaService:
    runtime: Runtime
    sla: Sla
    collector: metrics.SlaCollector


@asynccontextmanager
async def bootstrap(settings: SlaSettings) -> AsyncIterator[SlaService]:
    migrations = resources.files("gridline.sla").joinpath("migrations")
    async with open_runtime(SCHEMA, settings, migrations=[migrations]) as runtime:
        sla = Sla(runtime.clock, runtime.source, settings.bucket_seconds)
        collector = metrics.SlaCollector(settings.bucket_seconds)
        metrics.register(runtime.registry, collector)
        on_assignments = sla.on_assignments
        runtime.consume(
            "sla",
            {
                # One handler for all three: an order's assignments are applied in one upsert.
                WorkOrderAssigned: on_assignments,
                WorkOrderEscalated: on_assignments,
                WorkOrderReopened: on_assignments,
                WorkOrderResolved: sla.on_resolutions,
                PolicyActivated: sla.on_policies,
                # The lifecycle's moves that start or stop deadlines (issue 9).
                WorkOrderReturned: sla.on_lifecycle,
                WorkOrderCancelled: sla.on_lifecycle,
                WorkOrderClosed: sla.on_lifecycle,
                DepartmentCalledIn: sla.on_lifecycle,
                DepartmentReportedIn: sla.on_lifecycle,
                # Reporters' satisfaction (issue 10), counted where its order was resolved.
                FeedbackGiven: measuring.feedbacks,
            },
        )

        scheduler = Scheduler(
            sla,
            runtime.pool,
            runtime.clock,
            settings.scan_interval,
            settings.scan_batch,
            settings.scan_batch_max,
        )

        async def refresh_metrics() -> None:
            while True:
                async with runtime.pool.acquire() as conn:
                    collector.snapshot = metrics.Snapshot(
                        counters=await store.counters(conn),
                        attainment=await sla.attainment(conn),
                        targets=await store.targets(conn) or metrics.DEFAULT_TARGETS,
                        overdue=await store.overdue(conn, runtime.clock.now()),
                    )
                await asyncio.sleep(settings.metrics_refresh)

        # The natural-key guard of the measurement is forgotten with the inbox.
        runtime.sweep.also("measured", tallies.forget_measured)
        runtime.background("deadline-scanner", scheduler.run)
        runtime.background("metrics-snapshot", refresh_metrics)
        yield SlaService(runtime, sla, collector)
