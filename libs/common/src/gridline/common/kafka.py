"""Kafka plumbing: the idempotent producer, topic creation, the dead-letter record."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from gridline.common.settings import KafkaSettings
from gridline.common.topics import DEADLETTER, TopicSpec

log = logging.getLogger(__name__)


@asynccontextmanager
async def open_producer(settings: KafkaSettings, client_id: str) -> AsyncIterator[AIOKafkaProducer]:
    """An idempotent producer (acks=all); batches come from enqueuing many sends before awaiting any."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=settings.linger_ms,
        max_batch_size=settings.max_batch_size,
        request_timeout_ms=settings.request_timeout_ms,
        max_request_size=16_777_216,
    )
    await start_with_retry(producer.start, what=f"kafka producer {client_id}")
    try:
        yield producer
    finally:
        await producer.stop()


async def start_with_retry(start: object, *, what: str, attempts: int = 30) -> None:
    """Start a Kafka client, waiting for a broker that is still coming up."""
    delay = 0.2
    for attempt in range(1, attempts + 1):
        try:
            await start()  # type: ignore[operator]
            return
        except KafkaConnectionError:
            if attempt == attempts:
                raise
            log.warning("%s: broker not reachable yet, retrying", what)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def ensure_topics(settings: KafkaSettings, specs: Iterable[TopicSpec]) -> list[str]:
    """Create the missing topics; returns the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap, client_id="gridline-admin")
    await start_with_retry(admin.start, what="kafka admin")
    created: list[str] = []
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                name=spec.name,
                num_partitions=spec.partitions,
                replication_factor=1,
                topic_configs=dict(spec.config),
            )
            for spec in specs
            if spec.name not in existing
        ]
        if new:
            with suppress(TopicAlreadyExistsError):  # another process created them first
                await admin.create_topics(new)
            created = [t.name for t in new]
    finally:
        await admin.close()
    return created


def deadletter_headers(
    *, reason: str, topic: str, partition: int, offset: int, group: str
) -> list[tuple[str, bytes]]:
    """Why and where from: a dead letter carries the original bytes plus these headers."""
    return [
        ("gridline-dlq-reason", reason[:2000].encode()),
        ("gridline-dlq-topic", topic.encode()),
        ("gridline-dlq-partition", str(partition).encode()),
        ("gridline-dlq-offset", str(offset).encode()),
        ("gridline-dlq-consumer-group", group.encode()),
    ]


DEADLETTER_TOPIC = DEADLETTER.name
