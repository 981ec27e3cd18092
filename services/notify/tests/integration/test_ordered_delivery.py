"""Deliveries claimed from the real PostgreSQL table reach a receiver in the order of one
work order's events, even when the first one is refused and retried."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from gridline.common.pg import Pool
from gridline.notify.adapters import webhook
from gridline.notify.dispatcher import Dispatcher
from gridline.notify.domain.attempts import RetryPolicy
from gridline.notify.handlers import Notify, Subscription
from gridline.notify.metrics import NotifyMetrics

from .conftest import Receivers, lifecycle, running, store_events, until

pytestmark = pytest.mark.integration


async def test_one_orders_notifications_arrive_in_event_order_despite_a_refusal(
    pool: Pool, scratch_schema: str, receivers: Receivers
) -> None:
    refused: set[str] = set()

    def answer(body: dict[str, Any]) -> int:
        data = body["event"]["data"]
        if data["version"] == 1 and data["work_order_id"] not in refused:
            refused.add(data["work_order_id"])
            return 503
        return 204

    receiver = receivers(0.0, answer)
    notify = Notify([Subscription("hook", receiver.url)])
    orders = ["wo-a", "wo-b"]
    await store_events(pool, notify, [e for order in orders for e in lifecycle(order)])

    async with webhook.open_client(10.0, connections=10, per_receiver=10) as client:
        dispatcher = Dispatcher(
            pool,
            client,
            scratch_schema,
            ["hook"],
            secret="secret",
            policy=RetryPolicy(max_attempts=5, backoff_base=0.05, backoff_max=0.1),
            metrics=NotifyMetrics(CollectorRegistry()),
            slots_per_subscription=10,
        )
        async with running(dispatcher):
            await until(
                lambda: pool.fetchval(
                    "SELECT count(*) = 0 FROM deliveries WHERE delivered_at IS NULL"
                ),
                within=20,
                what="every delivery to be acknowledged",
            )
    for order in orders:
        versions = receiver.versions(order)  # every attempt, in the order received
        assert versions == [1, 1, 2, 3], versions  # refused once, retried, then the rest
