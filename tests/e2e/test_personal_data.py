"""Personal data stays in intake: reports sent with a reporter's email, phone, names and
device id flow through routing and notify, and then no Kafka topic (the dead-letter topic
included), no webhook and no service log carries any of them; events name the reporter by
an opaque reference only."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from gridline.common.policy.catalogue import Catalogue
from gridline.common.settings import KafkaSettings
from gridline.common.topics import ALL_TOPICS, DEADLETTER, REPORTS

from .receiver import Receiver
from .stack import Stack, wait_until
from .test_pipeline import grid_category, grid_point

pytestmark = pytest.mark.e2e


async def read_topics(bootstrap: str) -> dict[str, list[bytes]]:
    """Every record of every gridline topic from the beginning: key, value and headers
    joined, so a search sees all of a record."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        assert {spec.name for spec in ALL_TOPICS} <= await consumer.topics()
        # `gridline topics ensure` made each topic with its spec's partitions.
        partitions = [
            TopicPartition(spec.name, p) for spec in ALL_TOPICS for p in range(spec.partitions)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: dict[str, list[bytes]] = {spec.name: [] for spec in ALL_TOPICS}
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for tp, records in batches.items():
                for r in records:
                    parts = [r.key or b"", r.value or b""]
                    parts += [name.encode() + b"=" + value for name, value in r.headers]
                    found[tp.topic].append(b"\n".join(parts))
        return found
    finally:
        await consumer.stop()


async def dead_letters(bootstrap: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(DEADLETTER.name, 0)
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


async def produce_garbage(bootstrap: str) -> None:
    """A message no consumer can read: it must end up on the dead-letter topic."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(REPORTS.name, b'{"specversion": "1.0", "type": ', key=b"x")
    finally:
        await producer.stop()


def test_no_topic_webhook_or_log_carries_a_reporters_personal_data(
    stack: Stack, catalogue: Catalogue, receiver: Receiver
) -> None:
    bootstrap = KafkaSettings().bootstrap
    mark = uuid.uuid4().hex[:10]
    reporters = [
        {
            "email": f"pii.{mark}.{i}@example.org",
            "phone": f"+86 139 {int(mark, 16) % 10**8:08d}{i}",
            "first_name": f"Xiaoming{mark}{i}",
            "last_name": f"Wang{mark}{i}",
            "device_id": f"device-{mark}-{i}",
        }
        for i in range(3)
    ]
    personal = [value for reporter in reporters for value in reporter.values()]
    personal += ["".join(ch for ch in r["phone"] if ch.isdigit()) for r in reporters]
    grid_unit, grid_key = stack.handler_key("grid")
    lat, lon = grid_point(stack, grid_unit)
    code = grid_category(catalogue, longest=True).code
    letters_before = asyncio.run(dead_letters(bootstrap))
    with httpx.Client(timeout=15) as client:
        ids = []
        for i, reporter in enumerate(reporters):
            r = stack.post_report(
                client, service_code=code, lat=lat, long=lon, description=f"pii {i}", **reporter
            )
            assert r.status_code == 200, r.text
            ids.append(r.json()[0]["service_request_id"])
        for rid in ids:
            wait_until(
                lambda r=rid: stack.request(client, r)["expected_datetime"],
                timeout=60,
                what=f"report {rid} to be assigned",
            )
        resolved = client.post(
            f"{stack.url('routing')}/v1/workorders/{ids[0]}/resolve",
            headers={"authorization": f"Bearer {grid_key}"},
        )
        assert resolved.status_code == 200, resolved.text
        wait_until(
            lambda: (
                {"workorder.assigned", "workorder.resolved"}
                <= {d.json["type"] for d in receiver.for_order(ids[0])}
            ),
            timeout=60,
            what="the webhooks of the first report's assignment and resolution",
        )
    asyncio.run(produce_garbage(bootstrap))
    wait_until(
        lambda: asyncio.run(dead_letters(bootstrap)) > letters_before,
        timeout=60,
        what="the malformed message to be dead-lettered",
    )

    topics = asyncio.run(read_topics(bootstrap))
    # The reports are there, each with an opaque reference instead of the reporter.
    submitted = [m for m in topics[REPORTS.name] if any(rid.encode() in m for rid in ids)]
    assert len(submitted) >= len(ids)
    assert all(b'"reporter_ref":"rep_' in m for m in submitted), submitted[0]
    assert topics[DEADLETTER.name], "the dead-letter topic has content to search"
    leaks: list[str] = []
    for topic, records in topics.items():
        for record in records:
            leaks += [f"{topic}: {v}" for v in personal if v.encode() in record]
    for delivery in receiver.received():
        leaks += [f"webhook: {v}" for v in personal if v.encode() in delivery.body]
    for log in stack.workdir.glob("*.log"):
        text = log.read_text(encoding="utf-8", errors="replace")
        leaks += [f"{log.name}: {v}" for v in personal if v in text]
    assert not leaks, leaks
