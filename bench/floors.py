"""The floors: what the stack's own building blocks cost on this machine, in the same run.

- Kafka: aiokafka produce (the stack's producer settings: idempotent, acks=all, linger)
  then consume of CloudEvents of the stack's own sizes (report.submitted, workorder.assigned);
- PostgreSQL: intake's request row plus its outbox row, one report per transaction (16
  connections), batched (executemany, N rows in one transaction) and COPY.
CPU per message (row) is the driver's own CPU plus the broker's (PostgreSQL's), idle
subtracted. Each floor is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from procs import Meter, cpu_seconds, delta, snapshot

from gridline.common.kafka import ensure_topics, open_producer
from gridline.common.settings import KafkaSettings
from gridline.common.topics import REPORTS, WORKORDERS, TopicSpec


@dataclass
class Floor:
    name: str
    count: int
    seconds: float
    cpu_ms: dict[str, float]  # per message / row, idle subtracted
    note: str = ""

    @property
    def per_s(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


async def measured(
    name: str,
    meters: Mapping[str, Meter],
    idle: Mapping[str, float],
    work: Callable[[], Awaitable[int]],
    note: str = "",
) -> Floor:
    meters = {**meters, "driver": lambda: cpu_seconds(os.getpid())}
    before, t0 = snapshot(meters), time.monotonic()
    count = await work()
    seconds = time.monotonic() - t0
    used = delta(before, snapshot(meters))
    cpu = {
        n: max(0.0, s - idle.get(n, 0.0) * seconds) * 1000 / max(1, count) for n, s in used.items()
    }
    return Floor(name, count, seconds, cpu, note)


async def sample_events(kafka: KafkaSettings) -> dict[str, bytes]:
    """One real report.submitted and workorder.assigned from the stack's topics (their size
    is what the floors send); a synthetic stand-in of 1.5 kB when a topic is still empty."""
    found: dict[str, bytes] = {}
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        for spec, wanted in ((REPORTS, "report.submitted"), (WORKORDERS, "workorder.assigned")):
            parts = [TopicPartition(spec.name, p) for p in range(spec.partitions)]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            deadline = time.monotonic() + 5
            while wanted not in found and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500, max_records=50)).values():
                    for rec in records:
                        if rec.value and json.loads(rec.value).get("type") == wanted:
                            found[wanted] = rec.value
    finally:
        await consumer.stop()
    for wanted in ("report.submitted", "workorder.assigned"):
        found.setdefault(wanted, json.dumps({"type": wanted, "data": "x" * 1400}).encode())
    return found


async def kafka_floors(
    kafka: KafkaSettings,
    events: dict[str, bytes],
    meters: Mapping[str, Meter],
    idle: Mapping[str, float],
    count: int,
    limit: float,
) -> list[Floor]:
    floors: list[Floor] = []
    for etype, value in events.items():
        topic = TopicSpec(f"bench.floor.{etype}")  # one per size: consume reads just that
        await ensure_topics(kafka, [topic])
        produced = 0

        async def produce(value: bytes = value, topic: TopicSpec = topic) -> int:
            nonlocal produced
            produced = 0
            deadline = time.monotonic() + limit
            async with open_producer(kafka, "bench-floor") as producer:
                pending = []
                for _ in range(count):
                    key = str(uuid.uuid4()).encode()
                    pending.append(await producer.send(topic.name, value, key=key))
                    if len(pending) >= 1000:
                        await asyncio.gather(*pending)
                        produced += len(pending)
                        pending = []
                        if time.monotonic() > deadline:
                            break
                await asyncio.gather(*pending)
                produced += len(pending)
            return produced

        floors.append(
            await measured(
                f"aiokafka produce, {etype} ({len(value)} B)",
                meters,
                idle,
                produce,
                "idempotent, acks=all, the stack's linger and batch size; producer start included",
            )
        )

        async def consume(wanted: int = produced, topic: TopicSpec = topic) -> int:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=kafka.bootstrap,
                enable_auto_commit=False,
                fetch_max_wait_ms=kafka.fetch_max_wait_ms,
                fetch_max_bytes=kafka.fetch_max_bytes,
            )
            await consumer.start()
            got = 0
            try:
                parts = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
                consumer.assign(parts)
                await consumer.seek_to_beginning(*parts)
                deadline = time.monotonic() + limit
                while got < wanted and time.monotonic() < deadline:
                    polled = await consumer.getmany(
                        timeout_ms=500, max_records=kafka.max_poll_records
                    )
                    got += sum(len(r) for r in polled.values())
            finally:
                await consumer.stop()
            return got

        floors.append(
            await measured(
                f"aiokafka consume, {etype} ({len(value)} B)",
                meters,
                idle,
                consume,
                "no group; the stack's fetch settings",
            )
        )
    return floors


SETUP = """
DROP SCHEMA IF EXISTS bench_floor CASCADE;
CREATE SCHEMA bench_floor;
CREATE TABLE bench_floor.requests (LIKE intake.requests INCLUDING ALL);
CREATE TABLE bench_floor.outbox (LIKE intake.outbox INCLUDING ALL EXCLUDING DEFAULTS);
ALTER TABLE bench_floor.outbox ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY;
ALTER TABLE bench_floor.outbox ALTER COLUMN created_at SET DEFAULT now();
CREATE TRIGGER outbox_notify AFTER INSERT ON bench_floor.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION intake.outbox_notify();
"""
UNIQUE_COLUMNS = """
SELECT a.attname FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
WHERE i.indrelid = 'bench_floor.requests'::regclass AND i.indisunique
"""


async def pg_floors(
    url: str,
    payload: bytes,
    meters: Mapping[str, Meter],
    idle: Mapping[str, float],
    limit: float,
    batch: int = 500,
    connections: int = 16,
) -> list[Floor]:
    """Intake's request row + outbox row, the way intake writes them and two faster ways."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(SETUP)
        template = await conn.fetchrow("SELECT * FROM intake.requests LIMIT 1")
        if template is None:
            return [
                Floor("asyncpg", 0, 0, {}, "no intake.requests row to copy: run end to end first")
            ]
        columns = list(template.keys())
        unique = {r["attname"] for r in await conn.fetch(UNIQUE_COLUMNS)}
    finally:
        await conn.close()

    def rows(n: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        reqs, outs = [], []
        for _ in range(n):
            ident = str(uuid.uuid4())
            reqs.append(tuple(ident if c in unique else template[c] for c in columns))
            outs.append((str(uuid.uuid4()), REPORTS.name, ident, payload))
        return reqs, outs

    cols = ", ".join(columns)
    marks = ", ".join(f"${i + 1}" for i in range(len(columns)))
    insert_req = f"INSERT INTO bench_floor.requests ({cols}) VALUES ({marks})"
    insert_out = (
        "INSERT INTO bench_floor.outbox (event_id, topic, key, payload) VALUES ($1, $2, $3, $4)"
    )
    pool = await asyncpg.create_pool(url, min_size=connections, max_size=connections)
    try:

        async def one_per_transaction() -> int:
            deadline, done = time.monotonic() + limit, 0

            async def worker() -> None:
                nonlocal done
                async with pool.acquire() as c:
                    while time.monotonic() < deadline:
                        (req,), (out,) = rows(1)
                        async with c.transaction():
                            await c.execute(insert_req, *req)
                            await c.execute(insert_out, *out)
                        done += 1

            await asyncio.gather(*(worker() for _ in range(connections)))
            return done

        async def batched() -> int:
            deadline, done = time.monotonic() + limit, 0
            async with pool.acquire() as c:
                while time.monotonic() < deadline:
                    reqs, outs = rows(batch)
                    async with c.transaction():
                        await c.executemany(insert_req, reqs)
                        await c.executemany(insert_out, outs)
                    done += batch
            return done

        async def copy() -> int:
            deadline, done = time.monotonic() + limit, 0
            async with pool.acquire() as c:
                while time.monotonic() < deadline:
                    reqs, outs = rows(batch)
                    async with c.transaction():
                        await c.copy_records_to_table(
                            "requests", schema_name="bench_floor", records=reqs, columns=columns
                        )
                        await c.copy_records_to_table(
                            "outbox",
                            schema_name="bench_floor",
                            records=outs,
                            columns=["event_id", "topic", "key", "payload"],
                        )
                    done += batch
            return done

        return [
            await measured(
                "asyncpg, one report per transaction",
                meters,
                idle,
                one_per_transaction,
                f"{connections} connections, INSERT request + INSERT outbox, COMMIT",
            ),
            await measured(
                f"asyncpg, batched: {batch} reports per transaction",
                meters,
                idle,
                batched,
                "one connection, executemany per table",
            ),
            await measured(
                f"asyncpg, COPY: {batch} reports per transaction",
                meters,
                idle,
                copy,
                "one connection, copy_records_to_table per table",
            ),
        ]
    finally:
        await pool.close()
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("DROP SCHEMA IF EXISTS bench_floor CASCADE")
        finally:
            await conn.close()
