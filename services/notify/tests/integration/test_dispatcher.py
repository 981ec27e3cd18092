"""The dispatcher against the real PostgreSQL and local receivers: woken by stored
deliveries, a slow receiver holds up no one else, and outcomes are recorded in batches."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from gridline.common.pg import Pool
from gridline.notify.adapters import webhook
from gridline.notify.dispatcher import Dispatcher
from gridline.notify.domain.attempts import RetryPolicy
from gridline.notify.handlers import Notify, Subscription, notification_id
from gridline.notify.metrics import NotifyMetrics

from .conftest import Receiver, Receivers, lifecycle, new_dispatcher, running, store_events, until

pytestmark = pytest.mark.integration


async def test_a_slow_receiver_does_not_hold_up_deliveries_to_another(
    pool: Pool, scratch_schema: str, receivers: Receivers
) -> None:
    slow, fast = receivers(1.5), receivers(0.0)
    notify = Notify([Subscription("slow", slow.url), Subscription("fast", fast.url)])
    orders = ["wo-1", "wo-2", "wo-3"]
    slots = 2
    async with webhook.open_client(10.0, connections=2 * slots, per_receiver=slots) as client:
        dispatcher = new_dispatcher(
            pool,
            client,
            scratch_schema,
            ["slow", "fast"],
            slots_per_subscription=slots,
            poll_interval=60,  # only the insert's notification can wake it in time
        )
        async with running(dispatcher):
            # Assigned then escalated: each order's second event waits for its first.
            await store_events(pool, notify, [e for o in orders for e in lifecycle(o)[:2]])
            stored = time.monotonic()
            await until(lambda: len(fast.received) == 6, within=10, what="the fast receiver")
            # The slow receiver has not answered anything yet, yet the fast one got both
            # rounds: the second did not wait for the first round's slow sends.
            with slow.lock:
                assert slow.answered == 0, time.monotonic() - stored
            for order in orders:
                assert fast.versions(order) == [1, 2]

            await until(lambda: slow.answered == 6, within=30, what="the slow receiver")
            for order in orders:
                assert slow.versions(order) == [1, 2]
            # The receiver counts an answer before writing it: wait for the dispatcher to
            # have read the last one and recorded it, or stopping it would leave that row
            # claimed (to be retried after its lease) and the count below would race.
            await until(
                lambda: pool.fetchval(
                    "SELECT count(*) = 0 FROM deliveries WHERE delivered_at IS NULL"
                ),
                within=10,
                what="every delivery recorded",
            )
    # No more sends in flight at a time than its slots, and none twice (leases held).
    assert slow.max_concurrent == slots
    ids = [nid for _, _, nid in slow.received]
    assert len(ids) == len(set(ids)) == 6
    assert await pool.fetchval("SELECT count(*) FROM deliveries WHERE attempts <> 1") == 0


async def test_outcomes_recorded_in_batches_mark_delivered_retry_and_dead(
    pool: Pool, scratch_schema: str, receivers: Receivers
) -> None:
    receiver = receivers(0.0, lambda body: 204 if body["id"] in ok else 503)
    notify = Notify([Subscription("hook", receiver.url)])
    events = {o: lifecycle(o)[0] for o in ("wo-ok", "wo-retry", "wo-dead")}
    await store_events(pool, notify, list(events.values()))
    ids = {
        o: await pool.fetchval("SELECT notification_id FROM deliveries WHERE work_order_id = $1", o)
        for o in events
    }
    ok = {ids["wo-ok"]}
    # wo-dead has used up all but its last attempt already.
    await pool.execute("UPDATE deliveries SET attempts = 1 WHERE work_order_id = 'wo-dead'")

    registry = CollectorRegistry()
    async with webhook.open_client(10.0, connections=8, per_receiver=8) as client:
        dispatcher = new_dispatcher(
            pool,
            client,
            scratch_schema,
            ["hook"],
            policy=RetryPolicy(max_attempts=2, backoff_base=30, backoff_max=30),
            metrics=NotifyMetrics(registry),
            record_interval=0.05,  # all three answers land in one recording
        )
        async with running(dispatcher):
            await until(
                lambda: pool.fetchval(
                    "SELECT count(*) = 3 FROM deliveries WHERE attempts > 0 AND"
                    " (delivered_at IS NOT NULL OR dead_at IS NOT NULL OR last_error IS NOT NULL)"
                    " AND (work_order_id <> 'wo-dead' OR attempts = 2)"
                ),
                within=10,
                what="three recorded outcomes",
            )
    rows = {
        r["work_order_id"]: r
        for r in await pool.fetch(
            "SELECT *, next_attempt_at - now() AS wait FROM deliveries ORDER BY work_order_id"
        )
    }
    ok_row, retry, dead = rows["wo-ok"], rows["wo-retry"], rows["wo-dead"]
    assert ok_row["delivered_at"] is not None and ok_row["dead_at"] is None
    assert (ok_row["attempts"], ok_row["last_error"]) == (1, None)

    assert retry["delivered_at"] is None and retry["dead_at"] is None
    assert (retry["attempts"], retry["last_error"]) == (1, "HTTP 503")
    assert timedelta(seconds=25) < retry["wait"] <= timedelta(seconds=30)

    assert dead["dead_at"] is not None and dead["delivered_at"] is None
    assert (dead["attempts"], dead["last_error"]) == (2, "HTTP 503")

    assert sorted(nid for _, _, nid in receiver.received) == sorted(
        ids.values()
    )  # one attempt each, none repeated
    assert ids["wo-ok"] == notification_id(
        await pool.fetchval("SELECT event_id FROM deliveries WHERE work_order_id = 'wo-ok'"),
        "hook",
    )
    for name, value in [("delivered", 1), ("retries", 1), ("dead", 1)]:
        assert registry.get_sample_value(f"gridline_notify_{name}_total") == value


@contextlib.asynccontextmanager
async def dispatching(
    pool: Pool, schema: str, receiver: Receiver
) -> AsyncIterator[tuple[Notify, Dispatcher]]:
    """A running dispatcher for one receiver; stores through the Notify it yields."""
    async with webhook.open_client(10.0, connections=8, per_receiver=8) as client:
        dispatcher = new_dispatcher(pool, client, schema, ["hook"])
        async with running(dispatcher):
            yield Notify([Subscription("hook", receiver.url)]), dispatcher


async def test_a_drain_lets_the_sends_in_flight_end_and_records_them_and_claims_no_more(
    pool: Pool, scratch_schema: str, receivers: Receivers
) -> None:
    receiver = receivers(0.5)
    async with dispatching(pool, scratch_schema, receiver) as (notify, dispatcher):
        await store_events(pool, notify, [lifecycle("wo-1")[0], lifecycle("wo-2")[0]])
        await until(lambda: len(receiver.received) == 2, within=10, what="two sends")
        with receiver.lock:
            assert receiver.answered == 0  # both in flight as the drain begins
        assert await dispatcher.drain(within=5.0) == 0
        # Stored after the drain: left for the next run, not claimed.
        await store_events(pool, notify, [lifecycle("wo-3")[0]])
        await asyncio.sleep(0.3)
    assert sorted(order for order, _, _ in receiver.received) == ["wo-1", "wo-2"]
    rows = await pool.fetch(
        "SELECT work_order_id, attempts, delivered_at IS NOT NULL AS delivered,"
        " delivered_at IS NULL AND next_attempt_at <= now() AS unclaimed"
        " FROM deliveries ORDER BY work_order_id"
    )
    assert [tuple(r) for r in rows] == [
        ("wo-1", 1, True, False),
        ("wo-2", 1, True, False),
        ("wo-3", 0, False, True),
    ]


async def test_a_drain_is_bounded_and_what_it_leaves_keeps_its_lease(
    pool: Pool, scratch_schema: str, receivers: Receivers
) -> None:
    receiver = receivers(3.0)
    async with dispatching(pool, scratch_schema, receiver) as (notify, dispatcher):
        await store_events(pool, notify, [lifecycle("wo-1")[0]])
        await until(lambda: len(receiver.received) == 1, within=10, what="the send")
        began = time.monotonic()
        assert await dispatcher.drain(within=0.3) == 1
        assert time.monotonic() - began < 1.0
    row = await pool.fetchrow(
        "SELECT attempts, delivered_at, next_attempt_at > now() + interval '50 seconds' AS leased"
        " FROM deliveries"
    )
    # Not recorded, still leased: sent again after the lease, under the same id.
    assert (row["attempts"], row["delivered_at"], row["leased"]) == (0, None, True)


async def test_a_drain_waits_for_a_claim_under_way_and_the_sends_it_starts(
    pool: Pool, scratch_schema: str, receivers: Receivers
) -> None:
    receiver = receivers(0.0)
    notify = Notify([Subscription("hook", receiver.url)])
    await store_events(pool, notify, [lifecycle("wo-1")[0]])
    async with webhook.open_client(10.0, connections=8, per_receiver=8) as client:
        dispatcher = new_dispatcher(pool, client, scratch_schema, ["hook"])
        # Its first claim waits on the table, held in SHARE mode, as on a busy database.
        async with pool.acquire() as conn:
            locked = conn.transaction()
            await locked.start()
            await conn.execute("LOCK TABLE deliveries IN SHARE MODE")
            async with running(dispatcher):
                await until(
                    lambda: pool.fetchval(
                        "SELECT count(*) > 0 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                        " WHERE c.relname = 'deliveries' AND NOT l.granted"
                    ),
                    within=10,
                    what="the claim to wait on the lock",
                )
                draining = asyncio.create_task(dispatcher.drain(within=5.0))
                await asyncio.sleep(0.3)
                assert not draining.done()  # the claim is still under way
                await locked.rollback()
                assert await draining == 0
    assert [order for order, _, _ in receiver.received] == ["wo-1"]
    assert (
        await pool.fetchval("SELECT attempts FROM deliveries WHERE delivered_at IS NOT NULL") == 1
    )
