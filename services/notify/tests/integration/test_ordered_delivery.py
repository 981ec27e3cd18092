"""Deliveries claimed from the real PostgreSQL table reach a receiver in the order of one
work order's events, even when the first one is refused and retried."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gridline.common.pg import Pool
from gridline.notify.adapters import store, webhook
from gridline.notify.domain.attempts import RetryPolicy
from gridline.notify.handlers import Notify, Subscription

from .conftest import Receivers, lifecycle, new_dispatcher, running, store_events, until

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
        dispatcher = new_dispatcher(
            pool,
            client,
            scratch_schema,
            ["hook"],
            policy=RetryPolicy(max_attempts=5, backoff_base=0.05, backoff_max=0.1),
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


class Explaining:
    """A connection whose fetch explains the statement (executed, then rolled back)
    instead of returning its rows."""

    def __init__(self, conn: Any) -> None:
        self.conn, self.plan = conn, {}

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        tr = self.conn.transaction()
        await tr.start()
        try:
            out = await self.conn.fetchval("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, *args)
        finally:
            await tr.rollback()
        self.plan = (json.loads(out) if isinstance(out, str) else out)[0]["Plan"]
        return []


def rows_dropped(node: dict[str, Any]) -> int:
    """Rows every node of a plan read and dropped, by filter or join filter, over its loops."""
    own = (node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Join Filter", 0)) * (
        node.get("Actual Loops", 1)
    )
    return own + sum(rows_dropped(child) for child in node.get("Plans", []))


def delivery(order: str, version: int) -> store.Delivery:
    nid = f"{order}-{version}"
    return store.Delivery(nid, nid, "t", order, version, "hook", "http://127.0.0.1:9/", b"{}")


async def test_a_claim_reads_a_row_or_two_per_candidate_whatever_the_statistics_say(
    pool: Pool,
) -> None:
    """Statistics taken while few deliveries were pending (a stack's first minutes) made the
    planner check "no earlier pending delivery of the order" by reading every pending
    delivery of the subscription for each candidate: quadratic in a backlog."""
    async with pool.acquire() as conn:
        await store.add_deliveries(conn, [delivery(f"old-{i}", 1) for i in range(2_000)])
        await conn.execute("UPDATE deliveries SET delivered_at = now()")
        await conn.execute("ANALYZE deliveries")  # nothing pending at ANALYZE
        backlog = [delivery(f"wo-{i}", v) for i in range(1_000) for v in (1, 2)]
        await store.add_deliveries(conn, backlog)
        explaining = Explaining(conn)
        await store.claim_due(explaining, {"hook": 64}, 60)  # type: ignore[arg-type]
        claimed = await store.claim_due(conn, {"hook": 64}, 60)
    assert len(claimed) == 64
    assert {r["notification_id"].rsplit("-", 1)[1] for r in claimed} == {"1"}  # heads only
    assert explaining.plan["Actual Rows"] == 64
    # Each candidate's check probes its own order: the candidates that are not heads are
    # dropped, nothing else. Planned as an anti-join, or with the due index, the check
    # dropped about a thousand rows per candidate here.
    assert rows_dropped(explaining.plan) < 64 * 4, explaining.plan
