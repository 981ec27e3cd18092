"""Outbox, relay, idempotent consumer and dead letters on the real broker and database."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import NonEmptyGroup
from aiokafka.protocol.admin import DeleteGroupsRequest
from aiokafka.structs import TopicPartition
from prometheus_client import CollectorRegistry

from gridline.common.consumer import EventConsumer, Incoming, Rejected, idempotent
from gridline.common.events import DeadlineBreached, Envelope, envelope_for
from gridline.common.inbox import RetentionSweep, record_floors, resume_points
from gridline.common.kafka import DEADLETTER_TOPIC, open_producer
from gridline.common.outbox import TAKE_BATCH, OutboxRelay
from gridline.common.pg import Connection, Outgoing, Pool, add_to_outbox, migrate, open_pool
from gridline.common.settings import InboxSettings, KafkaSettings, PostgresSettings

pytestmark = [pytest.mark.integration]

NOW = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def breach(order: str, seq: int = 1) -> DeadlineBreached:
    return DeadlineBreached(
        work_order_id=order,
        assignment_seq=seq,
        tier="grid",
        unit_id="g1",
        due_at=NOW,
        breached_at=NOW,
    )


@pytest.fixture
async def topic(kafka_settings: KafkaSettings, unique: str, stack_topics: None) -> str:
    name = f"test.delivery.{unique}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()
    return name


@pytest.fixture
async def pool(
    pg_settings: PostgresSettings, scratch_schema: str, stack_topics: None
) -> AsyncIterator[Pool]:
    async with open_pool(pg_settings, scratch_schema) as pool:
        await migrate(pool, scratch_schema, [])
        await pool.execute("CREATE TABLE applied (event_id text PRIMARY KEY, order_id text)")
        yield pool


@pytest.fixture
async def producer(kafka_settings: KafkaSettings) -> AsyncIterator[AIOKafkaProducer]:
    async with open_producer(kafka_settings, "test") as producer:
        yield producer


async def read_all(
    kafka_settings: KafkaSettings, topic: str, partitions: int, expect: int | None = None
) -> list[Any]:
    """Every record of `topic` up to its end now (or until `expect` records arrived)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_settings.bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    records: list[Any] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        async with asyncio.timeout(20):
            while True:
                ends = await consumer.end_offsets(tps)
                positions = [await consumer.position(tp) for tp in tps]
                if expect is None and all(
                    pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)
                ):
                    break
                if expect is not None and len(records) >= expect:
                    break
                batch = await consumer.getmany(timeout_ms=300)
                for recs in batch.values():
                    records.extend(recs)
    finally:
        await consumer.stop()
    return records


async def test_outbox_rows_reach_kafka_once_acknowledged_and_are_removed(
    pool: Pool,
    producer: AIOKafkaProducer,
    scratch_schema: str,
    kafka_settings: KafkaSettings,
    unique: str,
    topic: str,
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        ids = await add_to_outbox(
            conn,
            "/test",
            [Outgoing(breach(f"wo-{unique}-{i}"), NOW, topic=topic) for i in range(25)],
        )
    # Rolled back work never leaves the database.
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            await add_to_outbox(
                conn, "/test", [Outgoing(breach(f"wo-{unique}-rolled-back"), NOW, topic=topic)]
            )
            raise RuntimeError("business transaction failed")
    relay = OutboxRelay(pool, producer, scratch_schema, CollectorRegistry())
    assert await relay.relay_once() == 25
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    records = await read_all(kafka_settings, topic, 3, expect=25)
    seen = {Envelope.model_validate_json(r.value).id: r for r in records}
    assert set(ids) <= set(seen)
    mine = [r for r in records if r.key.decode().startswith(f"wo-{unique}-")]
    assert len(mine) == 25
    assert not any(r.key.decode().endswith("rolled-back") for r in mine)


def plan_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for child in node.get("Plans", []) for n in plan_nodes(child))]


async def test_the_relay_takes_a_batch_in_one_pass_whatever_the_statistics_say(
    pool: Pool, scratch_schema: str, unique: str, topic: str
) -> None:
    """Statistics taken while the outbox was empty (a service's first minutes) once planned
    the relay's delete as a semi-join that ran "the oldest N ids" again for every row:
    quadratic in a backlog, 1.9 ms a batch of 39 on a live stack."""
    await pool.execute("ANALYZE outbox")  # nothing stored at ANALYZE
    async with pool.acquire() as conn:
        await add_to_outbox(
            conn,
            "/test",
            [Outgoing(breach(f"wo-{unique}-{i}"), NOW, topic=topic) for i in range(2_000)],
        )
        tr = conn.transaction()
        await tr.start()
        try:
            out = await conn.fetchval(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + TAKE_BATCH, f"outbox:{scratch_schema}", 500
            )
        finally:
            await tr.rollback()
    plan = (json.loads(out) if isinstance(out, str) else out)[0]["Plan"]
    assert plan["Actual Rows"] == 500
    # The outbox is read once: the ids are gathered once and deleted by key. The semi-join
    # plan scanned it again for every deleted row (loops = 500).
    scans = [n for n in plan_nodes(plan) if n.get("Relation Name") == "outbox"]
    assert scans, plan
    assert [n["Actual Loops"] for n in scans] == [1] * len(scans), plan


async def test_a_backlog_is_relayed_in_growing_batches_and_the_batch_falls_back_after(
    pool: Pool,
    producer: AIOKafkaProducer,
    scratch_schema: str,
    kafka_settings: KafkaSettings,
    unique: str,
    topic: str,
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await add_to_outbox(
            conn,
            "/test",
            [Outgoing(breach(f"wo-{unique}-{i}"), NOW, topic=topic) for i in range(75)],
        )
    relay = OutboxRelay(
        pool, producer, scratch_schema, CollectorRegistry(), batch_size=10, max_batch_size=40
    )
    rounds: list[int] = []
    relay_once = relay.relay_once

    async def recorded(conn: Connection | None = None) -> int:
        sent = await relay_once(conn)
        rounds.append(sent)
        return sent

    relay.relay_once = recorded  # type: ignore[method-assign]
    running = asyncio.create_task(relay.run())
    try:
        for _ in range(300):  # up to 15 s
            if sum(rounds) >= 75:
                break
            await asyncio.sleep(0.05)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    # Full batches double (10, 20, 40: the most), the rest is one round.
    assert [n for n in rounds if n] == [10, 20, 40, 5]
    assert relay._batch == 10  # a batch that was not full: back to the first size
    assert len(await read_all(kafka_settings, topic, 3, expect=75)) >= 75


async def apply(conn: Connection, events: list[Incoming[DeadlineBreached]]) -> None:
    """The test handler's effect, set-based as a real handler writes it."""
    await conn.execute(
        "INSERT INTO applied SELECT * FROM unnest($1::text[], $2::text[])",
        [e.envelope.id for e in events],
        [e.data.work_order_id for e in events],
    )


def rows_in(pool: Pool, table: str, at_least: int) -> Callable[[], Awaitable[bool]]:
    async def done() -> bool:
        return bool(await pool.fetchval(f"SELECT count(*) FROM {table}") >= at_least)

    return done


async def dead_letters(kafka_settings: KafkaSettings, group: str) -> list[Any]:
    """The dead letters `group` has published so far."""
    return [
        r
        for r in await read_all(kafka_settings, DEADLETTER_TOPIC, 1)
        if dict(r.headers).get("gridline-dlq-consumer-group") == group.encode()
    ]


async def committed_is(
    kafka_settings: KafkaSettings, group: str, tp: TopicPartition, offset: int
) -> bool:
    """True once `group` has committed `offset` for `tp` (a new member would start there)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_settings.bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        return bool(await consumer.committed(tp) == offset)
    finally:
        await consumer.stop()


async def consume_until(
    pool: Pool,
    producer: AIOKafkaProducer,
    kafka_settings: KafkaSettings,
    group: str,
    handle: Any,
    topic: str,
    *,
    done: Callable[[], Awaitable[bool]],
    within: float,
    settle: float = 0.0,
    registry: CollectorRegistry | None = None,
) -> EventConsumer:
    """Run a consumer of `topic` until `done()`, then `settle` seconds more (so that
    anything applied twice would show), then stop it; returns it."""
    consumer = EventConsumer(
        group_id=group,
        pool=pool,
        producer=producer,
        kafka=kafka_settings,
        handlers={DeadlineBreached: handle},
        registry=registry or CollectorRegistry(),
        topics=[topic],
    )
    task = asyncio.create_task(consumer.run())
    try:
        async with asyncio.timeout(within):
            while not await done():
                await asyncio.sleep(0.2)
            await asyncio.sleep(settle)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return consumer


def raw(order: str, event_id: str) -> bytes:
    return (
        envelope_for(breach(order), source="/test", time=NOW, event_id=event_id)
        .model_dump_json()
        .encode()
    )


async def test_consumer_applies_each_event_once_and_dead_letters_bad_messages(
    pool: Pool, producer: AIOKafkaProducer, topic: str, kafka_settings: KafkaSettings, unique: str
) -> None:
    async def handle(conn: Connection, events: list[Incoming[DeadlineBreached]]) -> None:
        for e in events:
            if e.data.work_order_id == "poison":
                raise Rejected("work order poison is unknown")
        await apply(conn, events)

    group = f"test-{unique}"
    messages: list[tuple[bytes, bytes]] = [
        (b"a", raw("a", "e1")),
        (b"a", raw("a", "e1")),  # redelivery of the same event id
        (b"x", b"{not json"),
        (
            b"x",
            json.dumps(
                {
                    "specversion": "1.0",
                    "id": "e9",
                    "source": "/t",
                    "type": "gridline.nope.v1",
                    "time": NOW.isoformat(),
                    "data": {},
                }
            ).encode(),
        ),
        (
            b"y",
            json.dumps(
                {
                    "specversion": "1.0",
                    "id": "e8",
                    "source": "/t",
                    "type": DeadlineBreached.TYPE,
                    "time": NOW.isoformat(),
                    "data": {"work_order_id": 3},
                }
            ).encode(),
        ),
        (b"p", raw("poison", "e7")),
        (b"b", raw("b", "e2")),
    ]
    for key, value in messages:
        await producer.send_and_wait(topic, value=value, key=key, partition=0)

    await consume_until(
        pool,
        producer,
        kafka_settings,
        group,
        handle,
        topic,
        # Offsets are committed only once every dead letter is acknowledged.
        done=lambda: committed_is(kafka_settings, group, TopicPartition(topic, 0), len(messages)),
        within=30,
    )

    rows = await pool.fetch("SELECT event_id, order_id FROM applied ORDER BY order_id")
    assert [(r["event_id"], r["order_id"]) for r in rows] == [("e1", "a"), ("e2", "b")]

    letters = await dead_letters(kafka_settings, group)
    reasons = {r.key: dict(r.headers)["gridline-dlq-reason"].decode() for r in letters}
    assert len(letters) == 4
    assert "not a valid CloudEvent" in reasons[b"x"] or "unknown event type" in reasons[b"x"]
    assert "work_order_id" in reasons[b"y"]
    assert "poison is unknown" in reasons[b"p"]
    assert all(dict(r.headers)["gridline-dlq-topic"] == topic.encode() for r in letters)


async def test_clean_batch_is_applied_in_one_transaction_and_duplicates_skipped(
    pool: Pool, producer: AIOKafkaProducer, topic: str, kafka_settings: KafkaSettings, unique: str
) -> None:
    transactions: set[int] = set()

    async def handle(conn: Connection, events: list[Incoming[DeadlineBreached]]) -> None:
        transactions.add(await conn.fetchval("SELECT txid_current()"))
        await apply(conn, events)

    for i in range(30):
        await producer.send(topic, value=raw(f"o{i}", f"b{i}"), key=b"k", partition=1)
    await producer.send_and_wait(topic, value=raw("o0", "b0"), key=b"k", partition=1)  # redelivery
    await consume_until(
        pool,
        producer,
        kafka_settings,
        f"batch-{unique}",
        handle,
        topic,
        done=rows_in(pool, "inbox", 30),
        within=30,
        settle=0.5,
    )
    assert await pool.fetchval("SELECT count(*) FROM applied") == 30
    assert len(transactions) < 30  # batched: far fewer transactions than events


async def test_an_idempotent_handlers_events_skip_the_inbox_and_a_redelivery_reaches_it(
    pool: Pool, producer: AIOKafkaProducer, topic: str, kafka_settings: KafkaSettings, unique: str
) -> None:
    seen: list[str] = []

    @idempotent
    async def handle(conn: Connection, events: list[Incoming[DeadlineBreached]]) -> None:
        seen.extend(e.envelope.id for e in events)
        await conn.execute(
            "INSERT INTO applied SELECT * FROM unnest($1::text[], $2::text[])"
            " ON CONFLICT (event_id) DO NOTHING",
            [e.envelope.id for e in events],
            [e.data.work_order_id for e in events],
        )

    async def seen_at_least(n: int) -> bool:
        return len(seen) >= n

    group = f"idem-{unique}"
    for i in range(10):
        await producer.send(topic, value=raw(f"o{i}", f"i{i}"), key=b"k", partition=2)
    await producer.send_and_wait(topic, value=raw("o0", "i0"), key=b"k", partition=2)  # a copy
    run = functools.partial(consume_until, pool, producer, kafka_settings, group, handle, topic)
    await run(done=lambda: seen_at_least(10), within=30, settle=0.5)
    assert set(seen) == {f"i{i}" for i in range(10)}
    before, target = seen.count("i3"), len(seen) + 1
    # A copy arriving later (a relay that sent it again) reaches the handler, which
    # changes nothing: the inbox would have kept it away.
    await producer.send_and_wait(topic, value=raw("o3", "i3"), key=b"k", partition=2)
    await run(done=lambda: seen_at_least(target), within=30)
    assert seen.count("i3") == before + 1
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 0
    assert await pool.fetchval("SELECT count(*) FROM applied") == 10


async def test_poison_in_a_large_batch_is_dead_lettered_alone_and_order_per_key_kept(
    pool: Pool, producer: AIOKafkaProducer, topic: str, kafka_settings: KafkaSettings, unique: str
) -> None:
    """400 events over 3 partitions, each order's events in sequence, one poison among
    them: the poison goes to the dead-letter topic alone, every neighbour is applied
    exactly once, each order's events in their order, in a handful of transactions."""
    await pool.execute("CREATE TABLE seen (n bigserial, order_id text, seq int)")
    transactions: set[int] = set()
    counted: list[str] = []  # what the after-commit callbacks saw

    async def handle(
        conn: Connection, events: list[Incoming[DeadlineBreached]]
    ) -> Callable[[], None]:
        transactions.add(await conn.fetchval("SELECT txid_current()"))
        await conn.execute(
            "INSERT INTO seen (order_id, seq) SELECT * FROM unnest($1::text[], $2::int[])",
            [e.data.work_order_id for e in events],
            [e.data.assignment_seq for e in events],
        )
        await apply(conn, events)
        if any(e.data.work_order_id == "poison" for e in events):
            raise Rejected("work order poison is unknown")
        return lambda: counted.extend(e.envelope.id for e in events)

    sent = 0
    for i in range(133):
        order = f"o{i % 50}"  # 50 orders, each with 2-3 events in sequence
        seq = i // 50 + 1
        if i == 70:
            await producer.send(topic, value=raw("poison", f"p-{unique}"), key=b"poison")
            sent += 1
        value = (
            envelope_for(breach(order, seq), source="/t", time=NOW, event_id=f"{order}-{seq}")
            .model_dump_json()
            .encode()
        )
        await producer.send(topic, value=value, key=order.encode())
        sent += 1
    for i in range(266):  # one-event orders
        await producer.send(topic, value=raw(f"single{i}", f"s{i}"), key=f"single{i}".encode())
        sent += 1
    await producer.flush()
    group = f"poison-{unique}"

    async def all_applied_and_letter(n: int) -> bool:
        return await rows_in(pool, "applied", n)() and bool(
            await dead_letters(kafka_settings, group)
        )

    await consume_until(
        pool,
        producer,
        kafka_settings,
        group,
        handle,
        topic,
        done=lambda: all_applied_and_letter(sent - 1),
        within=60,
        settle=1.0,
    )

    assert await pool.fetchval("SELECT count(*) FROM applied") == sent - 1
    assert await pool.fetchval("SELECT count(DISTINCT event_id) FROM applied") == sent - 1
    rows = await pool.fetch("SELECT order_id, seq FROM seen ORDER BY n")
    by_order: dict[str, list[int]] = {}
    for r in rows:
        by_order.setdefault(r["order_id"], []).append(r["seq"])
    assert all(seqs == sorted(seqs) for seqs in by_order.values())
    assert by_order["o0"] == [1, 2, 3]
    letters = await dead_letters(kafka_settings, group)
    assert [r.key for r in letters] == [b"poison"]
    assert "poison is unknown" in dict(letters[0].headers)["gridline-dlq-reason"].decode()
    # Only committed work ran its after-commit callback: rolled-back tries count nothing.
    assert sorted(counted) == sorted(await pool.fetchval("SELECT array_agg(event_id) FROM applied"))
    # Batched: splitting isolates the poison in a few dozen transactions, not 400.
    assert len(transactions) < 60


async def test_outbox_backlog_and_stall_are_gauges(
    pool: Pool, producer: AIOKafkaProducer, scratch_schema: str, unique: str, topic: str
) -> None:
    registry = CollectorRegistry()
    relay = OutboxRelay(pool, producer, scratch_schema, registry)
    async with pool.acquire() as conn, conn.transaction():
        await add_to_outbox(
            conn,
            "/test",
            [Outgoing(breach(f"wo-{unique}-{i}"), NOW, topic=topic) for i in range(7)],
        )
    measuring = asyncio.create_task(relay.measure_backlog(every=0.05))
    try:
        await asyncio.sleep(0.2)
        assert registry.get_sample_value("gridline_outbox_backlog") == 7
        assert await relay.relay_once() == 7
        await asyncio.sleep(0.2)
        assert registry.get_sample_value("gridline_outbox_backlog") == 0
    finally:
        measuring.cancel()
        await asyncio.gather(measuring, return_exceptions=True)
    assert registry.get_sample_value("gridline_outbox_relay_stalled_seconds") == 0


async def test_consumer_lag_is_what_the_group_has_not_consumed(
    pool: Pool, producer: AIOKafkaProducer, topic: str, kafka_settings: KafkaSettings, unique: str
) -> None:
    registry = CollectorRegistry()
    group = f"lag-{unique}"

    # One record a poll, a fifth of a second each, so that the first measurement (about a
    # second in) sees events still waiting.
    async def slow_apply(conn: Connection, events: list[Incoming[DeadlineBreached]]) -> None:
        await asyncio.sleep(0.2)
        await apply(conn, events)

    one_at_a_time = kafka_settings.model_copy(update={"max_poll_records": 1})
    consumer = EventConsumer(
        group_id=group,
        pool=pool,
        producer=producer,
        kafka=one_at_a_time,
        handlers={DeadlineBreached: slow_apply},
        registry=registry,
        topics=[topic],
    )
    for i in range(12):
        await producer.send(topic, value=raw(f"o{i}", f"lag{i}"), key=b"k", partition=2)
    await producer.flush()
    task = asyncio.create_task(consumer.run())

    def lag() -> float | None:
        return registry.get_sample_value(
            "gridline_consumer_lag", {"group": group, "topic": topic, "partition": "2"}
        )

    seen: list[float] = []
    try:
        async with asyncio.timeout(30):
            while (first := lag()) is None:
                await asyncio.sleep(0.01)
            seen.append(first)
            while await pool.fetchval("SELECT count(*) FROM applied") < 12:
                await asyncio.sleep(0.1)
            while lag() != 0:  # measured about once a second
                await asyncio.sleep(0.2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert 0 < seen[0] <= 12  # the first measurement: what was left when it was taken
    assert lag() == 0


async def test_a_consumer_that_stands_still_while_events_wait_is_replaced(
    pool: Pool, producer: AIOKafkaProducer, topic: str, kafka_settings: KafkaSettings, unique: str
) -> None:
    """A client that stops fetching (as aiokafka's did, now and then, after a broker
    restart: assigned, heartbeating, ready, and consuming nothing) is noticed by its lag
    asked of the broker, closed and replaced; the events waiting are applied once. An idle
    consumer that is caught up is left alone."""
    registry = CollectorRegistry()
    group = f"stall-{unique}"
    consumer = EventConsumer(
        group_id=group,
        pool=pool,
        producer=producer,
        kafka=kafka_settings.model_copy(update={"consumer_stall_s": 2.0}),
        handlers={DeadlineBreached: apply},
        registry=registry,
        topics=[topic],
    )

    def restarts() -> float | None:
        return registry.get_sample_value("gridline_consumer_restarts_total", {"group": group})

    async def applied() -> int:
        count: int = await pool.fetchval("SELECT count(*) FROM applied")
        return count

    for i in range(3):
        await producer.send(topic, value=raw(f"s{i}", f"stall{i}"), key=f"s{i}".encode())
    await producer.flush()
    task = asyncio.create_task(consumer.run())
    try:
        async with asyncio.timeout(30):
            while await applied() < 3:
                await asyncio.sleep(0.1)
        await asyncio.sleep(4)  # twice the stall limit, caught up: no replacement
        assert restarts() == 0

        stuck = consumer._consumer
        assert stuck is not None
        stuck.pause(*stuck.assignment())  # it fetches nothing from now on
        for i in range(3, 8):
            await producer.send(topic, value=raw(f"s{i}", f"stall{i}"), key=f"s{i}".encode())
        await producer.flush()
        async with asyncio.timeout(40):
            while await applied() < 8:
                await asyncio.sleep(0.2)
        assert restarts() == 1
        assert consumer._consumer is not stuck

        # Its partitions lost (as when its session expired in a broker outage) and no
        # rejoin: replaced too, and what waits is applied.
        adrift = consumer._consumer
        assert adrift is not None
        async with asyncio.timeout(20):  # seen working its partitions first
            while not consumer._held_partitions:
                await asyncio.sleep(0.1)
        # What the watchdog sees of such a client: no partition, polls that return.
        adrift.pause(*adrift.assignment())
        adrift.assignment = lambda: set()  # type: ignore[method-assign]
        for i in range(8, 11):
            await producer.send(topic, value=raw(f"s{i}", f"stall{i}"), key=f"s{i}".encode())
        await producer.flush()
        async with asyncio.timeout(40):
            while await applied() < 11:
                await asyncio.sleep(0.2)
        assert restarts() == 2
        assert consumer._consumer is not adrift
        await asyncio.sleep(1.5)  # anything applied twice would show now
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert await applied() == 11
    assert await pool.fetchval("SELECT count(DISTINCT event_id) FROM applied") == 11


async def test_the_sweep_forgets_inbox_rows_only_when_old_and_below_the_committed_floor(
    pool: Pool, producer: AIOKafkaProducer, topic: str, kafka_settings: KafkaSettings, unique: str
) -> None:
    group, tp = f"sweep-{unique}", TopicPartition(topic, 0)
    for i in range(6):
        await producer.send(topic, value=raw(f"o{i}", f"s{i}"), key=b"k", partition=0)
    await producer.flush()
    consumer = await consume_until(
        pool,
        producer,
        kafka_settings,
        group,
        apply,
        topic,
        done=lambda: committed_is(kafka_settings, group, tp, 6),
        within=30,
    )
    assert consumer.committed == {tp: 6}
    # s0-s3 were applied eight days ago; "late" was applied as long ago but at an offset the
    # group never committed (its consumer stopped first: the event will come again), and
    # "elsewhere" on a partition this group has committed nothing of.
    await pool.execute(
        "UPDATE inbox SET processed_at = now() - interval '8 days'"
        " WHERE event_id = ANY(ARRAY['s0', 's1', 's2', 's3'])"
    )
    await pool.execute(
        "INSERT INTO inbox VALUES ('late', $1, 0, 6, now() - interval '8 days'),"
        " ('elsewhere', $1, 2, 0, now() - interval '8 days')",
        topic,
    )
    registry = CollectorRegistry()
    sweep = RetentionSweep(
        pool, InboxSettings(retention_hours=168), registry, committed=lambda: {group: {tp: 6}}
    )
    assert await sweep.sweep_once() == {"inbox": 4}
    left = {r[0] for r in await pool.fetch("SELECT event_id FROM inbox")}
    assert left == {"s4", "s5", "late", "elsewhere"}
    assert registry.get_sample_value("gridline_retention_forgotten_total", {"table": "inbox"}) == 4
    # A floor only rises: an instance that committed less records nothing lower.
    async with pool.acquire() as conn:
        await record_floors(conn, group, {tp: 2})
    assert await resume_points(pool, group, [tp, TopicPartition(topic, 1)]) == {tp: 6}
    assert await sweep.sweep_once() == {"inbox": 0}


async def test_a_failed_sweep_is_counted_and_the_next_one_runs(pool: Pool) -> None:
    calls: list[int] = []

    async def flaky(conn: Connection, retention: timedelta) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionResetError("the database went away")
        return int(await conn.fetchval("SELECT 0"))

    registry = CollectorRegistry()
    sweep = RetentionSweep(pool, InboxSettings(sweep_interval_s=1), registry, committed=lambda: {})
    sweep.also("flaky", flaky)
    running = asyncio.create_task(sweep.run())
    try:
        async with asyncio.timeout(10):
            while len(calls) < 2:
                await asyncio.sleep(0.1)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert registry.get_sample_value("gridline_retention_sweep_failures_total") == 1
    assert registry.get_sample_value("gridline_retention_forgotten_total", {"table": "flaky"}) == 0


async def forget_group(kafka_settings: KafkaSettings, group: str) -> None:
    """Delete `group` and its committed offsets on the broker, as their expiry does after
    the group has had no member for `offsets.retention.minutes` (aiokafka's admin client
    has no call for it, so its request is sent as is)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap)
    await admin.start()
    try:
        node = await admin.find_coordinator(group)
        async with asyncio.timeout(20):
            while True:
                response = await admin._send_request_to_node(node, DeleteGroupsRequest([group]))
                codes = [code for _, code in response.results]
                if codes != [NonEmptyGroup.errno]:  # a member that left late: its session ends
                    break
                await asyncio.sleep(0.5)
        assert codes == [0]
    finally:
        await admin.close()


@pytest.mark.parametrize("floors_slow", [False, True], ids=["floors-read-at-once", "floors-slow"])
async def test_a_group_the_broker_forgot_resumes_at_its_floor_not_at_the_start_of_the_log(
    pool: Pool,
    producer: AIOKafkaProducer,
    topic: str,
    kafka_settings: KafkaSettings,
    unique: str,
    floors_slow: bool,
) -> None:
    seen: list[str] = []

    async def handle(conn: Connection, events: list[Incoming[DeadlineBreached]]) -> None:
        seen.extend(e.envelope.id for e in events)

    group, tp = f"forgot-{unique}", TopicPartition(topic, 1)
    for i in range(8):
        await producer.send(topic, value=raw(f"o{i}", f"f{i}"), key=b"k", partition=1)
    await producer.flush()
    run = functools.partial(consume_until, pool, producer, kafka_settings, group, handle, topic)
    consumer = await run(done=lambda: committed_is(kafka_settings, group, tp, 8), within=30)
    assert seen == [f"f{i}" for i in range(8)]
    # A week later the sweep records the floor and forgets the eight rows...
    await pool.execute("UPDATE inbox SET processed_at = now() - interval '8 days'")
    sweep = RetentionSweep(
        pool, InboxSettings(), CollectorRegistry(), committed=lambda: {group: consumer.committed}
    )
    assert await sweep.sweep_once() == {"inbox": 8}
    # ...and the broker forgets the group's offsets.
    await forget_group(kafka_settings, group)
    assert not await committed_is(kafka_settings, group, tp, 8)

    seen.clear()
    for i in (8, 9):
        await producer.send(topic, value=raw(f"o{i}", f"f{i}"), key=b"k", partition=1)
    await producer.flush()
    # From the start of the log, f0-f7 would be applied again: their rows are gone.
    if not floors_slow:
        await run(done=lambda: committed_is(kafka_settings, group, tp, 10), within=30, settle=0.5)
        assert seen == ["f8", "f9"]
        return
    # The floors cannot be read for 4.5 s (as on a loaded or failing database): meanwhile
    # the consumer fetches from the start of the log and must hand none of it out, and its
    # watchdog (2 s) must not take the paused wait for a consumer standing still.
    registry = CollectorRegistry()
    resuming = asyncio.create_task(
        consume_until(
            pool,
            producer,
            kafka_settings.model_copy(update={"consumer_stall_s": 2.0}),
            group,
            handle,
            topic,
            done=lambda: committed_is(kafka_settings, group, tp, 10),
            within=30,
            settle=0.5,
            registry=registry,
        )
    )
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("LOCK TABLE inbox_floors IN ACCESS EXCLUSIVE MODE")
        await asyncio.sleep(4.5)
    await resuming
    assert seen == ["f8", "f9"]
    assert registry.get_sample_value("gridline_consumer_restarts_total", {"group": group}) == 0
