"""A service's running parts: pool, producer, outbox relay, consumers, the inbox's
retention sweep, background loops.

Each service's bootstrap opens one Runtime; everything it starts stops when it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable

from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from gridline.common.clock import Clock, ScaledClock
from gridline.common.consumer import EventConsumer, Handler
from gridline.common.events import EventData
from gridline.common.inbox import RetentionSweep
from gridline.common.kafka import open_producer
from gridline.common.outbox import OutboxRelay
from gridline.common.pg import Pool, migrate, open_pool
from gridline.common.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    service: str
    settings: ServiceSettings
    clock: Clock
    registry: CollectorRegistry
    pool: Pool
    producer: AIOKafkaProducer
    relay: OutboxRelay
    sweep: RetentionSweep
    consumers: list[EventConsumer] = field(default_factory=list)
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _alive: dict[str, bool] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """CloudEvents `source` of what this service emits."""
        return f"/gridline/{self.service}"

    def background(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        """Run `loop` until shutdown; if it crashes it is logged and restarted."""
        self._tasks[name] = asyncio.create_task(self._supervise(name, loop), name=name)

    def consume(self, group_id: str, handlers: Mapping[type[EventData], Handler]) -> EventConsumer:
        consumer = EventConsumer(
            group_id=group_id,
            pool=self.pool,
            producer=self.producer,
            kafka=self.settings.kafka,
            handlers=handlers,
            registry=self.registry,
        )
        self.consumers.append(consumer)
        self.background(f"consumer:{group_id}", consumer.run)
        return consumer

    async def _supervise(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        delay = 0.5
        while True:
            self._alive[name] = True
            try:
                await loop()
                log.error("%s stopped unexpectedly; restarting", name)
            except Exception:
                log.exception("%s crashed; restarting", name)
            self._alive[name] = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def readiness(self) -> dict[str, bool]:
        checks: dict[str, bool] = {}
        try:
            async with asyncio.timeout(2):
                checks["postgres"] = await self.pool.fetchval("SELECT 1") == 1
        except Exception:
            checks["postgres"] = False
        try:
            async with asyncio.timeout(2):
                await self.producer.client.fetch_all_metadata()
            checks["kafka"] = True
        except Exception:
            checks["kafka"] = False
        checks["outbox_relay"] = self.relay.healthy
        for consumer in self.consumers:
            checks[f"consumer:{consumer.group_id}"] = consumer.ready
        for name, alive in self._alive.items():
            checks[f"task:{name}"] = alive
        return checks

    async def _stop_tasks(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


@asynccontextmanager
async def open_runtime(
    service: str,
    settings: ServiceSettings,
    *,
    migrations: Sequence[Traversable],
    registry: CollectorRegistry | None = None,
) -> AsyncIterator[Runtime]:
    clock = ScaledClock(settings.clock.speed, settings.clock.epoch)
    registry = registry or CollectorRegistry()
    async with open_pool(settings.postgres, schema=service) as pool:
        await migrate(pool, service, migrations)
        async with open_producer(settings.kafka, client_id=f"gridline-{service}") as producer:
            relay = OutboxRelay(
                pool, producer, service, registry, linger=settings.kafka.relay_linger_ms / 1000
            )
            consumers: list[EventConsumer] = []
            sweep = RetentionSweep(
                pool,
                settings.inbox,
                registry,
                committed=lambda: {c.group_id: c.committed for c in consumers},
            )
            runtime = Runtime(
                service, settings, clock, registry, pool, producer, relay, sweep, consumers
            )
            runtime.background("outbox-relay", relay.run)
            runtime.background("outbox-backlog", relay.measure_backlog)
            runtime.background("retention-sweep", sweep.run)
            try:
                yield runtime
            finally:
                await runtime._stop_tasks()
