"""sla's deadline warnings through notify against the real PostgreSQL: one delivery per
subscription, none more on redelivery; in one order's sequence a warning follows the event
that made its assignment (and a red its yellow) but holds up none of the order's events,
and one that comes after a later event is still delivered."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest

from gridline.common.consumer import Incoming
from gridline.common.events import DeadlineWarning, envelope_for
from gridline.common.pg import Pool
from gridline.notify.adapters import webhook
from gridline.notify.domain.attempts import RetryPolicy
from gridline.notify.domain.messages import Notified
from gridline.notify.handlers import Notify, Subscription, notification_id

from .conftest import AT, REF, Receiver, Receivers, lifecycle, new_dispatcher, running, until

pytestmark = pytest.mark.integration


def warning(order: str, level: str, version: int = 1) -> DeadlineWarning:
    return DeadlineWarning(
        work_order_id=order,
        version=version,
        **REF,
        level=level,
        assignment_seq=version,
        tier="grid",
        unit_id="g1",
        unit_name="g1",
        supervisor_id="c1" if level == "red" else None,
        due_at=AT,
        warned_at=AT - timedelta(hours=1) if level == "yellow" else AT,
    )


def incoming(event: Notified) -> Incoming[Notified]:
    # The id sla gives it is stable per (order, assignment, level): a redelivery repeats it.
    event_id = f"{event.work_order_id}-{event.version}-{getattr(event, 'level', 'event')}"
    return Incoming(event, envelope_for(event, source="/test", time=AT, event_id=event_id))


async def store(pool: Pool, notify: Notify, events: Sequence[Notified]) -> None:
    """Each event in its own call, in the order given (as the consumer's layers would)."""
    async with pool.acquire() as conn, conn.transaction():
        for event in events:
            await notify.on_workorder_events(conn, [incoming(event)])


def seen(receiver: Receiver, order: str) -> list[str]:
    """Every attempt the receiver saw for `order`, in order: its type (and level)."""
    with receiver.lock:
        bodies = [json.loads(raw) for raw in receiver.bodies]
    return [
        f"{b['type']}:{b['level']}" if "level" in b else b["type"]
        for b in bodies
        if b["work_order_id"] == order
    ]


async def test_a_warning_batch_makes_one_delivery_per_subscription_and_none_on_redelivery(
    pool: Pool,
) -> None:
    subscriptions = [
        Subscription("one", "http://127.0.0.1:9/a"),
        Subscription("two", "http://127.0.0.1:9/b"),
    ]
    notify = Notify(subscriptions)
    batch = [incoming(warning("wo-a", "yellow")), incoming(warning("wo-b", "red", version=3))]
    for _ in range(2):  # the second time: the same batch redelivered
        async with pool.acquire() as conn, conn.transaction():
            await notify.on_workorder_events(conn, batch)
        rows = await pool.fetch(
            "SELECT notification_id, event_type, work_order_id, event_version, warning,"
            " subscription, body FROM deliveries ORDER BY work_order_id, subscription"
        )
        assert [
            (r["work_order_id"], r["subscription"], r["event_version"], r["warning"]) for r in rows
        ] == [
            ("wo-a", "one", 1, 1),
            ("wo-a", "two", 1, 1),
            ("wo-b", "one", 3, 2),
            ("wo-b", "two", 3, 2),
        ]
    for row in rows:
        assert row["event_type"] == DeadlineWarning.TYPE
        envelope_id = f"{row['work_order_id']}-{row['event_version']}-" + (
            "yellow" if row["warning"] == 1 else "red"
        )
        assert row["notification_id"] == notification_id(envelope_id, row["subscription"])
        body = json.loads(row["body"])
        assert body["id"] == row["notification_id"] and body["type"] == "workorder.warning"
    red = json.loads(rows[2]["body"])
    assert red["recipients"] == [
        {"unit_id": "g1", "role": "holder"},
        {"unit_id": "c1", "role": "supervisor"},
    ]
    assert "红牌预警" in red["message"]["zh-CN"] and "c1" in red["message"]["en"]


@asynccontextmanager
async def dispatching(pool: Pool, schema: str, receiver: Receiver) -> AsyncIterator[None]:
    async with webhook.open_client(10.0, connections=10, per_receiver=10) as client:
        dispatcher = new_dispatcher(
            pool,
            client,
            schema,
            ["hook"],
            # Retried every 50 ms for as long as the test needs.
            policy=RetryPolicy(max_attempts=10_000, backoff_base=0.05, backoff_max=0.05),
            slots_per_subscription=10,
        )
        async with running(dispatcher):
            yield


async def test_a_warning_follows_its_assignment_and_a_red_its_yellow(
    pool: Pool, scratch_schema: str, receivers: Receivers
) -> None:
    refused: set[str] = set()

    def answer(body: dict[str, Any]) -> int:
        if body["type"] == "workorder.assigned" and "assigned" not in refused:
            refused.add("assigned")
            return 503
        return 204

    receiver = receivers(0.0, answer)
    notify = Notify([Subscription("hook", receiver.url)])
    assigned = lifecycle("wo-a")[0]
    await store(pool, notify, [assigned, warning("wo-a", "yellow"), warning("wo-a", "red")])
    async with dispatching(pool, scratch_schema, receiver):
        await until(lambda: len(seen(receiver, "wo-a")) == 4, within=20, what="every delivery")
    assert seen(receiver, "wo-a") == [
        "workorder.assigned",  # refused: the warnings wait
        "workorder.assigned",
        "workorder.warning:yellow",
        "workorder.warning:red",
    ]


async def test_a_refused_warning_holds_up_none_of_the_orders_events_and_a_late_one_still_goes(
    pool: Pool, scratch_schema: str, receivers: Receivers
) -> None:
    refusing = {"yellow": True}

    def answer(body: dict[str, Any]) -> int:
        return 503 if body.get("level") == "yellow" and refusing["yellow"] else 204

    receiver = receivers(0.0, answer)
    notify = Notify([Subscription("hook", receiver.url)])
    assigned, escalated, resolved = lifecycle("wo-b")
    pending_yellow = (
        "SELECT count(*) FROM deliveries WHERE warning = 1 AND delivered_at IS NULL"
        " AND dead_at IS NULL AND attempts > 0"
    )
    async with dispatching(pool, scratch_schema, receiver):
        await store(pool, notify, [assigned, warning("wo-b", "yellow")])
        await until(
            lambda: pool.fetchval(pending_yellow), within=20, what="the yellow to be refused"
        )
        # The order moves on while its yellow warning is refused over and over.
        await store(pool, notify, [escalated, resolved])
        await until(
            lambda: {"workorder.escalated", "workorder.resolved"} <= set(seen(receiver, "wo-b")),
            within=20,
            what="the escalation and the resolution despite the refused warning",
        )
        assert await pool.fetchval(pending_yellow) == 1
        # A red warning of the first assignment, stored after the order moved on (sla lagged
        # behind): neither dropped as stale nor waiting for anything but its yellow.
        await store(pool, notify, [warning("wo-b", "red")])
        refusing["yellow"] = False
        await until(
            lambda: pool.fetchval("SELECT count(*) = 0 FROM deliveries WHERE delivered_at IS NULL"),
            within=20,
            what="every delivery, the warnings too",
        )
    attempts = seen(receiver, "wo-b")
    # The order's own events once each, in their order, between the yellow's refusals;
    # the warnings last, the red after its yellow.
    assert [a for a in attempts if a != "workorder.warning:yellow"] == [
        "workorder.assigned",
        "workorder.escalated",
        "workorder.resolved",
        "workorder.warning:red",
    ]
    assert attempts[-2:] == ["workorder.warning:yellow", "workorder.warning:red"], attempts
    assert attempts.index("workorder.warning:yellow") < attempts.index("workorder.escalated")
