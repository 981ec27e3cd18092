"""The idempotent consumer loop every service uses.

Per message: parse the CloudEvent, then in ONE PostgreSQL transaction record its id in the
inbox and apply the handler; offsets are committed only after that transaction commits.
A message that cannot be parsed or is rejected goes to the dead-letter topic with its
reason, and the loop carries on. Database or broker outages are retried, never dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError

from gridline.common.events import EVENT_TYPES, Envelope, EventData
from gridline.common.kafka import DEADLETTER_TOPIC, deadletter_headers, start_with_retry
from gridline.common.pg import Connection, Pool, is_transient
from gridline.common.settings import KafkaSettings

log = logging.getLogger(__name__)

Handler = Callable[[Connection, Any, Envelope], Awaitable[None]]


class Rejected(Exception):
    """A handler's verdict that this event can never be applied; it is dead-lettered."""


class NotReadyYet(Exception):
    """A handler's verdict that the event must wait (e.g. no policy loaded); retried."""


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, name: str) -> None:
        self._name = name

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Offsets are committed after every batch, so nothing finished is left uncommitted.
        log.info("%s: partitions revoked %s", self._name, sorted(map(str, revoked)))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("%s: partitions assigned %s", self._name, sorted(map(str, assigned)))


class EventConsumer:
    def __init__(
        self,
        *,
        group_id: str,
        pool: Pool,
        producer: AIOKafkaProducer,
        kafka: KafkaSettings,
        handlers: Mapping[type[EventData], Handler],
        registry: CollectorRegistry,
        topics: list[str] | None = None,
        max_handler_attempts: int = 3,
        batch_size: int = 200,
    ) -> None:
        self.group_id = group_id
        self._pool = pool
        self._producer = producer
        self._kafka = kafka
        self._handlers = {cls.TYPE: (cls, h) for cls, h in handlers.items()}
        self._topics = topics or sorted({cls.TOPIC for cls in handlers})
        self._max_attempts = max_handler_attempts
        self._batch_size = batch_size
        self._consumer: AIOKafkaConsumer | None = None
        self.stalled = False
        self._events = Counter(
            "gridline_consumer_events_total",
            "Messages consumed, by outcome: processed, duplicate, ignored, deadletter.",
            ["group", "topic", "outcome"],
            registry=registry,
        )

    @property
    def ready(self) -> bool:
        """True while the consumer holds partitions and is not stuck retrying."""
        return self._consumer is not None and bool(self._consumer.assignment()) and not self.stalled

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._kafka.bootstrap,
            group_id=self.group_id,
            client_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_interval_ms=600_000,
        )
        await start_with_retry(consumer.start, what=f"consumer {self.group_id}")
        self._consumer = consumer
        consumer.subscribe(self._topics, listener=_Listener(self.group_id))
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=self._batch_size)
                for tp, records in batches.items():
                    await self.process_batch(records)
                    try:
                        await consumer.commit({tp: records[-1].offset + 1})
                    except (CommitFailedError, IllegalStateError) as exc:
                        # The partition moved to another member; it resumes from the last
                        # committed offset and the inbox skips what was already applied.
                        log.warning("%s: commit failed for %s: %s", self.group_id, tp, exc)
        finally:
            self._consumer = None
            await consumer.stop()

    async def process(self, record: ConsumerRecord) -> str:
        """Handle one record; returns its outcome. Never raises for bad input."""
        decoded = await self._decode(record)
        if isinstance(decoded, str):
            return decoded
        return await self._apply_with_retries(*decoded)

    async def process_batch(self, records: list[ConsumerRecord]) -> None:
        """Handle one partition's records in order, in ONE transaction when all of them
        apply cleanly; if anything fails, roll back and take them one by one, so a poison
        message or an outage is dealt with exactly as in `process`."""
        ready: list[tuple[ConsumerRecord, Envelope, EventData, Handler]] = []
        for record in records:
            decoded = await self._decode(record)
            if not isinstance(decoded, str):
                ready.append(decoded)
        if len(ready) > 1:
            try:
                outcomes = await self._apply_all(ready)
            except Exception as exc:
                log.info(
                    "%s: batch of %d fell back to one by one: %r", self.group_id, len(ready), exc
                )
            else:
                self.stalled = False
                for (record, *_), outcome in zip(ready, outcomes, strict=True):
                    self._events.labels(self.group_id, record.topic, outcome).inc()
                return
        for item in ready:
            await self._apply_with_retries(*item)

    async def _decode(
        self, record: ConsumerRecord
    ) -> tuple[ConsumerRecord, Envelope, EventData, Handler] | str:
        """The typed event and its handler, or the outcome for a record that has none."""
        if record.value is None:
            return await self._dead_letter(record, "empty message (no value)")
        try:
            envelope = Envelope.model_validate_json(record.value)
        except ValidationError as exc:
            return await self._dead_letter(record, f"not a valid CloudEvent: {_describe(exc)}")
        entry = self._handlers.get(envelope.type)
        if entry is None:
            if envelope.type in EVENT_TYPES:
                self._events.labels(self.group_id, record.topic, "ignored").inc()
                return "ignored"
            return await self._dead_letter(record, f"unknown event type {envelope.type!r}")
        cls, handler = entry
        try:
            data = cls.model_validate(envelope.data)
        except ValidationError as exc:
            return await self._dead_letter(
                record, f"invalid data for {envelope.type}: {_describe(exc)}"
            )
        return record, envelope, data, handler

    async def _apply_with_retries(
        self, record: ConsumerRecord, envelope: Envelope, data: EventData, handler: Handler
    ) -> str:
        topic = record.topic
        failures = 0
        waiting_logged = False
        delay = 0.2
        while True:
            try:
                outcome = await self._apply(record, envelope, data, handler)
                self.stalled = False
                self._events.labels(self.group_id, topic, outcome).inc()
                return outcome
            except Rejected as exc:
                self.stalled = False
                return await self._dead_letter(record, f"rejected by {self.group_id}: {exc}")
            except NotReadyYet as exc:
                # Waiting for something another party provides (e.g. a policy load); the
                # connections work, so this does not make the service unready.
                if not waiting_logged:
                    log.warning("%s: event %s waits: %s", self.group_id, envelope.id, exc)
                    waiting_logged = True
            except Exception as exc:
                if is_transient(exc):
                    # The database or network is down: wait for it however long it takes;
                    # readiness reports the stall. Never dead-letter a valid event for it.
                    self.stalled = True
                    log.warning(
                        "%s: transient failure on %s, retrying: %r", self.group_id, envelope.id, exc
                    )
                else:
                    failures += 1
                    log.exception("%s: handler failed on event %s", self.group_id, envelope.id)
                    if failures >= self._max_attempts:
                        self.stalled = False
                        return await self._dead_letter(
                            record, f"handler failed {failures} times: {type(exc).__name__}: {exc}"
                        )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _apply_all(
        self, items: list[tuple[ConsumerRecord, Envelope, EventData, Handler]]
    ) -> list[str]:
        async with self._pool.acquire() as conn, conn.transaction():
            return [await self._apply_in(conn, *item) for item in items]

    async def _apply(
        self, record: ConsumerRecord, envelope: Envelope, data: EventData, handler: Handler
    ) -> str:
        async with self._pool.acquire() as conn, conn.transaction():
            return await self._apply_in(conn, record, envelope, data, handler)

    async def _apply_in(
        self,
        conn: Connection,
        record: ConsumerRecord,
        envelope: Envelope,
        data: EventData,
        handler: Handler,
    ) -> str:
        """Record the event id and apply the handler, in the caller's transaction."""
        fresh = await conn.fetchval(
            "INSERT INTO inbox (event_id, topic, kafka_partition, kafka_offset)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING RETURNING true",
            envelope.id,
            record.topic,
            record.partition,
            record.offset,
        )
        if not fresh:
            return "duplicate"
        await handler(conn, data, envelope)
        return "processed"

    async def _dead_letter(self, record: ConsumerRecord, reason: str) -> str:
        log.warning(
            "%s: dead-lettering %s[%d]@%d: %s",
            self.group_id,
            record.topic,
            record.partition,
            record.offset,
            reason,
        )
        headers = deadletter_headers(
            reason=reason,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            group=self.group_id,
        )
        delay = 0.2
        while True:  # the offset is not committed until the dead letter is acknowledged
            try:
                await self._producer.send_and_wait(
                    DEADLETTER_TOPIC, value=record.value or b"", key=record.key, headers=headers
                )
                break
            except KafkaError as exc:
                self.stalled = True
                log.warning("%s: dead-letter publish failed, retrying: %r", self.group_id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.stalled = False
        self._events.labels(self.group_id, record.topic, "deadletter").inc()
        return "deadletter"
