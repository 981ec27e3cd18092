"""Deliveries claimed from the real PostgreSQL table reach a receiver in the order of one
work order's events, even when the first one is refused and retried."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from importlib import resources

import httpx
import pytest
from prometheus_client import CollectorRegistry

from gridline.common.events import (
    Assignment,
    WorkOrderAssigned,
    WorkOrderEscalated,
    WorkOrderResolved,
    envelope_for,
)
from gridline.common.pg import Pool, migrate, open_pool
from gridline.common.settings import PostgresSettings
from gridline.notify.handlers import Notify, Subscription
from gridline.notify.metrics import NotifyMetrics

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
REF = {
    "report_id": "r",
    "category": "exposed-garbage",
    "category_name_en": "Exposed garbage",
    "category_name_zh": "暴露垃圾",
    "street_id": "s1",
    "district_id": "d1",
    "policy_version": "p",
}


def assignment(seq: int, tier: str, unit: str) -> Assignment:
    return Assignment(
        seq=seq,
        tier=tier,
        unit_id=unit,
        unit_name=unit,
        unit_level=tier,
        assigned_at=AT,
        due_at=AT,
    )


def lifecycle(order: str) -> list[WorkOrderAssigned | WorkOrderEscalated | WorkOrderResolved]:
    return [
        WorkOrderAssigned(
            work_order_id=order,
            version=1,
            **REF,
            source="citizen",
            grid_id="g1",
            community_id="c1",
            lat=31.7,
            lon=119.9,
            opened_at=AT,
            assignment=assignment(1, "grid", "g1"),
        ),
        WorkOrderEscalated(
            work_order_id=order,
            version=2,
            **REF,
            reason="whistle",
            from_tier="grid",
            from_unit_id="g1",
            assignment=assignment(2, "community", "c1"),
        ),
        WorkOrderResolved(
            work_order_id=order,
            version=3,
            **REF,
            tier="community",
            unit_id="c1",
            unit_name="c1",
            resolved_by_unit_id="c1",
            opened_at=AT,
            resolved_at=AT,
            due_at=AT,
        ),
    ]


@pytest.fixture
async def pool(pg_settings: PostgresSettings, scratch_schema: str) -> AsyncIterator[Pool]:
    async with open_pool(pg_settings, scratch_schema) as pool:
        await migrate(pool, scratch_schema, [resources.files("gridline.notify") / "migrations"])
        yield pool


async def test_one_orders_notifications_arrive_in_event_order_despite_a_refusal(
    pool: Pool,
) -> None:
    attempts: list[tuple[str, int]] = []  # (order, version) of every attempt, in order
    refused: set[str] = set()

    def receive(request: httpx.Request) -> httpx.Response:
        data = json.loads(request.content)["event"]["data"]
        key = (data["work_order_id"], data["version"])
        attempts.append(key)
        if data["version"] == 1 and data["work_order_id"] not in refused:
            refused.add(data["work_order_id"])
            return httpx.Response(503)
        return httpx.Response(204)

    notify = Notify(
        [Subscription("hook", "http://receiver.invalid/hook")],
        "secret",
        NotifyMetrics(CollectorRegistry()),
        max_attempts=5,
        backoff_base=0.05,
        backoff_max=0.1,
    )
    orders = ["wo-a", "wo-b"]
    async with pool.acquire() as conn, conn.transaction():
        for order in orders:
            for event in lifecycle(order):
                await notify.on_workorder_event(
                    conn, event, envelope_for(event, source="test", time=AT)
                )

    async with httpx.AsyncClient(transport=httpx.MockTransport(receive)) as client:
        for _ in range(200):
            await notify.deliver_due(pool, client, limit=10)
            pending = await pool.fetchval(
                "SELECT count(*) FROM deliveries WHERE delivered_at IS NULL"
            )
            if pending == 0:
                break
            await asyncio.sleep(0.02)
    assert pending == 0
    for order in orders:
        versions = [v for o, v in attempts if o == order]
        assert versions == [1, 1, 2, 3], versions  # refused once, retried, then the rest
