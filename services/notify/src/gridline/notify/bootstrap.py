"""notify's composition root."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources

from gridline.common.events import (
    DeadlineWarning,
    DepartmentCalledIn,
    DepartmentCallEscalated,
    DepartmentReportedIn,
    PartnerUpdated,
    TipStatusChanged,
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
from gridline.notify.adapters import webhook
from gridline.notify.config import NotifySettings
from gridline.notify.dispatcher import Dispatcher
from gridline.notify.domain.attempts import RetryPolicy
from gridline.notify.handlers import SCHEMA, Notify, Subscription
from gridline.notify.metrics import NotifyMetrics


@dataclass
class NotifyService:
    runtime: Runtime
    notify: Notify
    dispatcher: Dispatcher


@asynccontextmanager
async def bootstrap(settings: NotifySettings) -> AsyncIterator[NotifyService]:
    migrations = resources.files("gridline.notify").joinpath("migrations")
    subscriptions = [
        Subscription(f"webhook-{hashlib.sha256(url.encode()).hexdigest()[:12]}", url)
        for url in settings.urls
    ]
    # Every sending slot has a connection: one more subscription's worth per receiver, for
    # rows of a subscription removed from the settings. No bound in all (0): partners'
    # callbacks add a subscription per partner as partners come, each bounded by its own
    # slots, so the claim already bounds the connections.
    slots = settings.concurrency
    sharing = Counter(webhook.receiver(s.url) for s in subscriptions)
    connections = 0
    per_receiver = slots * (max(sharing.values(), default=0) + 1)
    # The client outlives the runtime: the dispatcher stops (sends in flight keep their
    # lease) before the client closes, so no send fails for a closed client.
    async with (
        webhook.open_client(settings.timeout, connections, per_receiver) as client,
        open_runtime(SCHEMA, settings, migrations=[migrations]) as runtime,
    ):
        notify = Notify(subscriptions)
        handler = notify.on_workorder_events
        runtime.consume(
            "notify",
            {
                WorkOrderAssigned: handler,
                WorkOrderEscalated: handler,
                WorkOrderResolved: handler,
                WorkOrderReopened: handler,
                # The lifecycle's further moves (issue 9), delivered the same way.
                WorkOrderAccepted: handler,
                WorkOrderReturned: handler,
                WorkOrderCancelled: handler,
                WorkOrderClosed: handler,
                DepartmentCalledIn: handler,
                DepartmentReportedIn: handler,
                DepartmentCallEscalated: handler,
                # sla's yellow and red warnings (issue 10), delivered the same way.
                DeadlineWarning: handler,
                PartnerUpdated: notify.on_partner_updates,
                TipStatusChanged: notify.on_tip_status_changes,
            },
        )
        dispatcher = Dispatcher(
            runtime.pool,
            client,
            SCHEMA,
            [s.name for s in subscriptions],
            secret=settings.webhook_secret,
            partner_secret_key=settings.partner_secret_key,
            policy=RetryPolicy(settings.max_attempts, settings.backoff_base, settings.backoff_max),
            metrics=NotifyMetrics(runtime.registry),
            slots_per_subscription=settings.concurrency,
            poll_interval=settings.poll_interval,
            record_interval=settings.record_interval,
        )
        runtime.background("webhook-dispatcher", dispatcher.run)
        try:
            yield NotifyService(runtime, notify, dispatcher)
        finally:
            # Before the runtime cancels the dispatcher: sends in flight end within the
            # client's timeout; a second more to record them.
            await dispatcher.drain(settings.timeout + 1.0)
