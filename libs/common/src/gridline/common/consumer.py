"""The idempotent, batch-first consumer loop every service uses.

One poll (`getmany`, across every assigned partition, bounded by count and bytes) is
applied in ONE PostgreSQL transaction: one statement records the new event ids in the
inbox and returns them, the handlers receive lists of typed events and write set-based.
A handler marked `idempotent` (its writes change nothing when applied again) is given its
events without an inbox row.
Offsets of every partition are committed in one call after the transactions that applied
them, at most every `commit_interval_ms` (and when partitions are revoked or on stop).

A message that cannot be parsed, or that a handler refuses, is isolated by splitting the
batch and goes to the dead-letter topic with its reason; its neighbours are applied once.
Database or broker outages are retried, never dropped. The events of one Kafka key (one
work order) reach the handlers in the order they were produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import ValidationError

from gridline.common import inbox
from gridline.common.events import EVENT_TYPES, Envelope, EventData
from gridline.common.kafka import DEADLETTER_TOPIC, deadletter_headers, start_with_retry
from gridline.common.pg import Connection, Pool, is_transient
from gridline.common.settings import KafkaSettings

log = logging.getLogger(__name__)

E = TypeVar("E", bound=EventData)


# Covariant: an Incoming of one event type is an Incoming of a union that includes it.
E_co = TypeVar("E_co", bound=EventData, covariant=True)


@dataclass(frozen=True, slots=True)
class Incoming(Generic[E_co]):
    """One event as a handler sees it: the typed payload and its CloudEvents envelope."""

    data: E_co
    envelope: Envelope


# What a handler leaves to do once its transaction has committed (e.g. count metrics): a
# batch that is rolled back and split is applied again, and must not be counted twice.
AfterCommit = Callable[[], None]
# A handler applies a list of events, in the caller's transaction, set-based where it can.
Handler = Callable[[Connection, list[Incoming[Any]]], Awaitable[AfterCommit | None]]


H = TypeVar("H", bound=Callable[..., Any])


def idempotent(handler: H) -> H:
    """Mark a handler whose every write is idempotent by itself: keyed by the event's id
    (ON CONFLICT DO NOTHING) or guarded by the order's version. Its events skip the inbox,
    a row and an index entry each; an event applied again changes nothing. A handler that
    counts or moves anything per event must not be marked."""
    handler.idempotent = True  # type: ignore[attr-defined]
    return handler


class Rejected(Exception):
    """A handler's verdict that an event can never be applied; it is dead-lettered alone."""


class NotReadyYet(Exception):
    """A handler's verdict that the events must wait (e.g. no policy loaded); retried."""


@dataclass(frozen=True, slots=True)
class _Item:
    record: ConsumerRecord
    incoming: Incoming[Any]
    handler: Handler
    idempotent: bool  # applied without an inbox row


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def in_key_order(items: Sequence[_Item]) -> list[tuple[Handler, list[Incoming[Any]]]]:
    """The handler calls that apply `items`, as few as possible, keeping each key's order.

    An event goes to layer n when it is the n-th of its key in the batch. Events of one
    layer have distinct keys, so they commute and are grouped by handler; layers run in
    order. A batch with one event per work order (the usual case) is one call per handler.
    """
    depth: dict[bytes, int] = {}
    layers: list[dict[Handler, list[Incoming[Any]]]] = []
    for item in items:
        key = item.record.key
        n = depth.get(key, 0) if key is not None else 0
        if key is not None:
            depth[key] = n + 1
        if n == len(layers):
            layers.append({})
        layers[n].setdefault(item.handler, []).append(item.incoming)
    return [(handler, events) for layer in layers for handler, events in layer.items()]


async def _stop_quietly(client: AIOKafkaConsumer) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(5):
            await client.stop()


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: EventConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Hand over what was applied: the next owner starts after it.
        log.info("%s: partitions revoked %s", self._owner.group_id, sorted(map(str, revoked)))
        await self._owner.commit_applied(set(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("%s: partitions assigned %s", self._owner.group_id, sorted(map(str, assigned)))
        await self._owner.resume_where_forgotten(assigned)


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
    ) -> None:
        self.group_id = group_id
        self._pool = pool
        self._producer = producer
        self._kafka = kafka
        self._handlers = {
            cls.TYPE: (cls, h, getattr(h, "idempotent", False) is True)
            for cls, h in handlers.items()
        }
        self._topics = topics or sorted({cls.TOPIC for cls in handlers})
        self._max_attempts = max_handler_attempts
        self._consumer: AIOKafkaConsumer | None = None
        self._applied: dict[TopicPartition, int] = {}  # next offset, not yet committed
        # What this consumer committed, for the inbox's retention sweep (gridline.common.inbox).
        self.committed: dict[TopicPartition, int] = {}
        self.stalled = False
        self._events = Counter(
            "gridline_consumer_events_total",
            "Messages consumed, by outcome: processed, duplicate, ignored, deadletter.",
            ["group", "topic", "outcome"],
            registry=registry,
        )
        self._batches = Counter(
            "gridline_consumer_transactions_total",
            "Database transactions that applied consumed events (one per clean poll).",
            ["group"],
            registry=registry,
        )
        self._lag = Gauge(
            "gridline_consumer_lag",
            "Messages on a partition not yet consumed by this group (the partition's log end,"
            " asked of the broker, minus the consumer's position), measured about once a"
            " second.",
            ["group", "topic", "partition"],
            registry=registry,
        )
        self._lag_shown: set[TopicPartition] = set()
        self._restarts = Counter(
            "gridline_consumer_restarts_total",
            "Consumers closed and replaced because they stood still while events waited.",
            ["group"],
            registry=registry,
        )
        self._restarts.labels(group_id)  # 0 from the start, not absent
        # Watched by _watch: when the loop last came round, when it last applied events or
        # found nothing waiting, and whether a handler is running now.
        self._beat_at = self._progress_at = time.monotonic()
        self._held_partitions = False  # whether the current client was seen working one
        self._processing = False
        self._reading_floors = False  # an assignment's floors are being read (paused)

    @property
    def ready(self) -> bool:
        """True while the consumer holds partitions and is not stuck retrying."""
        return self._consumer is not None and bool(self._consumer.assignment()) and not self.stalled

    async def run(self) -> None:
        """Consume until cancelled. A consumer that stands still while the broker holds
        events for it (a client stuck after a broker restart, say) is closed and replaced:
        the new one resumes from the committed offsets, and the inbox skips what the old
        one applied but did not commit."""
        consumer = await self._open()  # no broker at start: fail, as any other setting would
        while True:
            consuming = asyncio.create_task(self._consume(consumer))
            watching = asyncio.create_task(self._watch(consumer))
            try:
                done, _ = await asyncio.wait(
                    {consuming, watching}, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    task.result()  # a failure of either is raised here
            finally:
                for task in (consuming, watching):
                    task.cancel()
                await asyncio.gather(consuming, watching, return_exceptions=True)
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(5):
                        await self.commit_applied()
                self._consumer = None
                self._applied.clear()
                await _stop_quietly(consumer)
            self._restarts.labels(self.group_id).inc()
            consumer = await self._reopen()

    async def _open(self) -> AIOKafkaConsumer:
        k = self._kafka
        consumer = AIOKafkaConsumer(
            bootstrap_servers=k.bootstrap,
            group_id=self.group_id,
            client_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_interval_ms=600_000,
            fetch_max_wait_ms=k.fetch_max_wait_ms,
            fetch_max_bytes=k.fetch_max_bytes,
        )
        try:
            await start_with_retry(consumer.start, what=f"consumer {self.group_id}")
        except BaseException:
            await _stop_quietly(consumer)
            raise
        self._consumer = consumer
        consumer.subscribe(self._topics, listener=_Listener(self))
        self._progress_at = self._beat_at = time.monotonic()
        self._held_partitions = False  # until this client is seen working a partition
        return consumer

    async def _reopen(self) -> AIOKafkaConsumer:
        """A new consumer for the group, however long the broker takes to answer."""
        while True:
            try:
                return await self._open()
            except KafkaError as exc:
                log.warning("%s: consumer not started again yet: %r", self.group_id, exc)
                await asyncio.sleep(2.0)

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        interval = self._kafka.commit_interval_ms / 1000
        last_commit = time.monotonic()
        while True:
            self._beat_at = time.monotonic()
            polled = await self._poll(consumer)
            if polled:
                self._processing = True
                try:
                    await self.process([r for records in polled.values() for r in records])
                finally:
                    self._processing = False
                for tp, records in polled.items():
                    self._applied[tp] = records[-1].offset + 1
                self._progress_at = time.monotonic()
            # Offsets are committed on an interval, not per poll: each commit is a write on
            # the broker, and what is applied again after a crash is only what the inbox
            # skips.
            if self._applied and time.monotonic() - last_commit >= interval:
                self._beat_at = time.monotonic()
                await self.commit_applied()
                last_commit = time.monotonic()

    async def _watch(self, consumer: AIOKafkaConsumer) -> None:
        """About once a second: the lag of every assigned partition against the log end,
        asked of the broker through a client of the watchdog's own (so that the lag shows,
        and the broker is known to answer, even when the consumer's own connection has gone
        silent, as aiokafka's was seen to after a broker restart). Returns, so that `run`
        replaces the consumer, when with the broker answering it has stood still for
        `consumer_stall_s`: a poll or commit that does not return, events waiting while
        none is applied, or no partition worked any more (lost, or its position never
        learnt). A running handler is never judged."""
        stall = self._kafka.consumer_stall_s
        answering_since: float | None = None  # the broker answers again since then
        unassigned_since: float | None = None  # it holds no partition since then
        probe: AIOKafkaConsumer | None = None
        try:
            while True:
                await asyncio.sleep(1.0)
                if probe is None:
                    probe = await self._open_probe()
                measured = None if probe is None else await self._measure_lag(consumer, probe)
                now = time.monotonic()
                if measured is None:  # the broker did not answer (an outage): nothing to judge
                    answering_since = None
                    if probe is not None:  # its connection may be the silent one: a new one
                        await _stop_quietly(probe)
                        probe = None
                    continue
                behind, working = measured
                if answering_since is None:
                    answering_since = now
                if working:
                    self._held_partitions = True
                # A handler's own waits (database down, policy), or the floors' read of a
                # new assignment, whose partitions wait paused meanwhile.
                if self._processing or self._reading_floors:
                    continue
                # A client that worked partitions and now works none (its session expired in
                # a broker outage: no assignment, or one whose positions it never learns)
                # and has not recovered: aiokafka was seen to wait 80 s or more before even
                # asking to rejoin. One never seen working any (more members than
                # partitions) is left alone.
                if working or not self._held_partitions:
                    unassigned_since = None
                else:
                    unassigned_since = unassigned_since or now
                    if now - max(unassigned_since, answering_since) > stall:
                        log.error(
                            "%s: it has worked no partition for %.0f s (lost or position"
                            " unknown) while the broker answers; replacing the consumer",
                            self.group_id,
                            now - max(unassigned_since, answering_since),
                        )
                        return
                # Waits that began before the broker came back are timed from its return.
                since_beat = now - max(self._beat_at, answering_since)
                since_progress = now - max(self._progress_at, answering_since)
                if since_beat > stall:
                    log.error(
                        "%s: a poll or commit has not returned for %.0f s while the broker"
                        " answers; replacing the consumer",
                        self.group_id,
                        since_beat,
                    )
                    return
                if behind == 0:
                    self._progress_at = now
                elif since_progress > stall:
                    log.error(
                        "%s: %d events wait on the broker but none was applied for %.0f s;"
                        " replacing the consumer",
                        self.group_id,
                        behind,
                        since_progress,
                    )
                    return
        finally:
            if probe is not None:
                await _stop_quietly(probe)

    async def _open_probe(self) -> AIOKafkaConsumer | None:
        """A client of no group that only asks for log ends; None while the broker is away."""
        probe = AIOKafkaConsumer(
            bootstrap_servers=self._kafka.bootstrap,
            client_id=f"{self.group_id}-watchdog",
            enable_auto_commit=False,
            request_timeout_ms=5_000,
        )
        try:
            async with asyncio.timeout(5):
                await probe.start()
        except (TimeoutError, KafkaError):
            await _stop_quietly(probe)
            return None
        return probe

    async def _measure_lag(
        self, consumer: AIOKafkaConsumer, probe: AIOKafkaConsumer
    ) -> tuple[int, int] | None:
        """Set the lag gauge of every assigned partition whose position the consumer knows
        (a revoked partition's series is dropped) and return the total lag and how many
        partitions it knows a position of; None when the broker does not tell the log
        ends within a few seconds."""
        assigned = list(consumer.assignment())
        try:
            async with asyncio.timeout(5):
                ends = await probe.end_offsets(assigned) if assigned else {}
        except (TimeoutError, KafkaError):
            return None
        shown: set[TopicPartition] = set()
        total = 0
        for tp in assigned:
            try:
                async with asyncio.timeout(0.5):  # unknown while it waits for its offset
                    position = await consumer.position(tp)
            except (TimeoutError, KafkaError):
                continue
            lag = max(0, ends[tp] - position)
            self._lag.labels(self.group_id, tp.topic, str(tp.partition)).set(lag)
            shown.add(tp)
            total += lag
        for tp in self._lag_shown - shown:
            self._lag.remove(self.group_id, tp.topic, str(tp.partition))
        self._lag_shown = shown
        return total, len(shown)

    async def _poll(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, list[ConsumerRecord]]:
        """One batch: what has arrived, topped up with what arrives during `consumer_linger_ms`
        when it is not full. A few ms per hop buy batches several times larger at moderate
        rates: fewer transactions, fetches and commits for the same events."""
        k = self._kafka
        polled: dict[TopicPartition, list[ConsumerRecord]] = await consumer.getmany(
            timeout_ms=500, max_records=k.max_poll_records
        )
        room = k.max_poll_records - sum(len(records) for records in polled.values())
        if polled and room > 0 and k.consumer_linger_ms > 0:
            await asyncio.sleep(k.consumer_linger_ms / 1000)
            more = await consumer.getmany(timeout_ms=0, max_records=room)
            for tp, records in more.items():  # later records of a partition go after
                polled.setdefault(tp, []).extend(records)
        return polled

    async def commit_applied(self, only: set[TopicPartition] | None = None) -> None:
        """Commit the offsets after what this consumer applied (of `only` these partitions)."""
        offsets = {tp: offset for tp, offset in self._applied.items() if only is None or tp in only}
        if not offsets or self._consumer is None:
            return
        for tp in offsets:
            del self._applied[tp]
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # A partition moved to another member; it resumes from the last committed
            # offset and the inbox skips what was already applied.
            log.warning("%s: commit failed: %s", self.group_id, exc)
        else:
            self.committed.update(offsets)

    async def resume_where_forgotten(self, assigned: Sequence[TopicPartition]) -> None:
        """Of newly assigned partitions, seek those for which the broker holds no committed
        offset (expired, or the group deleted) but the inbox sweep recorded a floor: from
        the start of the log, events whose inbox rows are forgotten would apply again.
        Waits out a database outage: resuming anywhere else could apply events twice."""
        consumer = self._consumer
        if consumer is None or not assigned:
            return
        # Paused until checked, and before this callback's first await: aiokafka ends its
        # reassignment before calling it, so a poll meanwhile would hand out the records a
        # fetch from the start of the log brought, and they would be applied before the seek.
        assigned = [tp for tp in assigned if tp in consumer.assignment()]
        consumer.pause(*assigned)
        self._reading_floors = True
        try:
            await self._seek_to_floors(consumer, assigned)
        finally:
            held = consumer.assignment()  # a rebalance meanwhile may have taken some away
            consumer.resume(*(tp for tp in assigned if tp in held))
            self._reading_floors = False
            self._progress_at = time.monotonic()  # that wait was not standing still

    async def _seek_to_floors(
        self, consumer: AIOKafkaConsumer, assigned: Sequence[TopicPartition]
    ) -> None:
        delay = 0.2
        while True:
            try:
                floors = await inbox.resume_points(self._pool, self.group_id, assigned)
                break
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("%s: floors not readable yet, retrying: %r", self.group_id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        if not floors:
            return
        tps = sorted(floors)
        committed = await asyncio.gather(*(consumer.committed(tp) for tp in tps))
        for tp, offset in zip(tps, committed, strict=True):
            if offset is None:
                log.warning(
                    "%s: no committed offset for %s; resuming at the recorded floor %d",
                    self.group_id,
                    tp,
                    floors[tp],
                )
                consumer.seek(tp, floors[tp])

    async def process(self, records: Sequence[ConsumerRecord]) -> None:
        """Apply one poll's records. Returns once every record is applied, skipped as a
        duplicate or dead-lettered (acknowledged); never raises for bad input."""
        letters: list[tuple[ConsumerRecord, str]] = []
        items: list[_Item] = []
        for record in records:
            decoded = self._decode(record)
            if isinstance(decoded, _Item):
                items.append(decoded)
            elif decoded is not None:
                letters.append((record, decoded))
        await self._apply(items, letters)
        await self._dead_letter(letters)

    def _decode(self, record: ConsumerRecord) -> _Item | str | None:
        """The typed event and its handler; the dead-letter reason; or None to ignore."""
        if record.value is None:
            return "empty message (no value)"
        try:
            envelope = Envelope.model_validate_json(record.value)
        except ValidationError as exc:
            return f"not a valid CloudEvent: {_describe(exc)}"
        entry = self._handlers.get(envelope.type)
        if entry is None:
            if envelope.type in EVENT_TYPES:
                self._events.labels(self.group_id, record.topic, "ignored").inc()
                return None
            return f"unknown event type {envelope.type!r}"
        cls, handler, idempotent = entry
        try:
            data = cls.model_validate(envelope.data)
        except ValidationError as exc:
            return f"invalid data for {envelope.type}: {_describe(exc)}"
        return _Item(record, Incoming(data, envelope), handler, idempotent)

    async def _apply(self, items: list[_Item], letters: list[tuple[ConsumerRecord, str]]) -> None:
        """Apply `items` in one transaction; on a refusal, split the batch until the event
        at fault stands alone and goes to `letters`. Outages are waited out."""
        if not items:
            return
        failures = 0
        delay = 0.2
        waiting_logged = False
        while True:
            try:
                await self._transaction(items)
                self.stalled = False
                return
            except NotReadyYet as exc:
                # Waiting for something another party provides (e.g. a policy load); the
                # connections work, so this does not make the service unready.
                if not waiting_logged:
                    log.warning("%s: %d events wait: %s", self.group_id, len(items), exc)
                    waiting_logged = True
            except Exception as exc:
                if is_transient(exc):
                    # The database or network is down: wait however long it takes; readiness
                    # reports the stall. Never dead-letter a valid event for it.
                    self.stalled = True
                    log.warning("%s: transient failure, retrying: %r", self.group_id, exc)
                elif len(items) > 1:
                    # Someone in here is at fault: halves, in order, keep each key's order.
                    half = len(items) // 2
                    await self._apply(items[:half], letters)
                    await self._apply(items[half:], letters)
                    return
                elif isinstance(exc, Rejected):
                    self.stalled = False
                    letters.append((items[0].record, f"rejected by {self.group_id}: {exc}"))
                    return
                else:
                    failures += 1
                    log.exception(
                        "%s: handler failed on event %s",
                        self.group_id,
                        items[0].incoming.envelope.id,
                    )
                    if failures >= self._max_attempts:
                        self.stalled = False
                        reason = f"handler failed {failures} times: {type(exc).__name__}: {exc}"
                        letters.append((items[0].record, reason))
                        return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _transaction(self, items: list[_Item]) -> None:
        """Record the new event ids and apply their events, all in one transaction. The
        events of idempotent handlers are applied without an inbox row."""
        async with self._pool.acquire() as conn, conn.transaction():
            guarded = [i for i in items if not i.idempotent]
            fresh = (
                {
                    r[0]
                    for r in await conn.fetch(
                        "INSERT INTO inbox (event_id, topic, kafka_partition, kafka_offset)"
                        " SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[])"
                        " ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                        [i.incoming.envelope.id for i in guarded],
                        [i.record.topic for i in guarded],
                        [i.record.partition for i in guarded],
                        [i.record.offset for i in guarded],
                    )
                }
                if guarded
                else set()
            )
            todo: list[_Item] = []
            taken: set[str] = set()
            for item in items:
                event_id = item.incoming.envelope.id
                if event_id in taken:
                    continue  # a second copy in one poll
                if event_id in fresh or item.idempotent:
                    taken.add(event_id)
                    todo.append(item)
            after: list[AfterCommit] = []
            for handler, events in in_key_order(todo):
                if (then := await handler(conn, events)) is not None:
                    after.append(then)
        for then in after:
            then()
        self._batches.labels(self.group_id).inc()
        done = {id(i) for i in todo}
        for item in items:
            outcome = "processed" if id(item) in done else "duplicate"
            self._events.labels(self.group_id, item.record.topic, outcome).inc()

    async def _dead_letter(self, letters: list[tuple[ConsumerRecord, str]]) -> None:
        """Publish every dead letter of the poll and wait for all acknowledgements; the
        offsets are not committed before that."""
        if not letters:
            return
        for record, reason in letters:
            log.warning(
                "%s: dead-lettering %s[%d]@%d: %s",
                self.group_id,
                record.topic,
                record.partition,
                record.offset,
                reason,
            )
        delay = 0.2
        while True:
            try:
                sent = [
                    await self._producer.send(
                        DEADLETTER_TOPIC,
                        value=record.value or b"",
                        key=record.key,
                        headers=deadletter_headers(
                            reason=reason,
                            topic=record.topic,
                            partition=record.partition,
                            offset=record.offset,
                            group=self.group_id,
                        ),
                    )
                    for record, reason in letters
                ]
                await asyncio.gather(*sent)
                break
            except KafkaError as exc:
                self.stalled = True
                log.warning("%s: dead-letter publish failed, retrying: %r", self.group_id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.stalled = False
        for record, _ in letters:
            self._events.labels(self.group_id, record.topic, "deadletter").inc()
