"""notify's composition root."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources

import httpx

from gridline.common.consumer import one_by_one
from gridline.common.events import WorkOrderAssigned, WorkOrderEscalated, WorkOrderResolved
from gridline.common.runtime import Runtime, open_runtime
from gridline.notify.config import NotifySettings
from gridline.notify.handlers import SCHEMA, Notify, Subscription
from gridline.notify.metrics import NotifyMetrics


@dataclass
class NotifyService:
    runtime: Runtime
    notify: Notify


@asynccontextmanager
async def bootstrap(settings: NotifySettings) -> AsyncIterator[NotifyService]:
    migrations = resources.files("gridline.notify").joinpath("migrations")
    subscriptions = [
        Subscription(f"webhook-{hashlib.sha256(url.encode()).hexdigest()[:12]}", url)
        for url in settings.urls
    ]
    async with (
        open_runtime(SCHEMA, settings, migrations=[migrations]) as runtime,
        httpx.AsyncClient(timeout=settings.timeout) as client,
    ):
        notify = Notify(
            subscriptions,
            settings.webhook_secret,
            NotifyMetrics(runtime.registry),
            settings.max_attempts,
            settings.backoff_base,
            settings.backoff_max,
        )
        handler = one_by_one(notify.on_workorder_event)
        runtime.consume(
            "notify",
            {WorkOrderAssigned: handler, WorkOrderEscalated: handler, WorkOrderResolved: handler},
        )

        async def dispatch() -> None:
            while True:
                if not await notify.deliver_due(runtime.pool, client, settings.concurrency):
                    await asyncio.sleep(0.2)

        runtime.background("webhook-dispatcher", dispatch)
        yield NotifyService(runtime, notify)
