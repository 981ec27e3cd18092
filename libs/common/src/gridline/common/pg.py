"""PostgreSQL plumbing: a pool bound to the service's schema, migrations, outbox writes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import asyncpg
from asyncpg import Connection, Pool

from gridline.common.events import EventData, envelope_for
from gridline.common.settings import PostgresSettings

log = logging.getLogger(__name__)

__all__ = [
    "OUTBOX_INSERT",
    "BoundedPool",
    "Connection",
    "OutboxRows",
    "Outgoing",
    "Pool",
    "add_to_outbox",
    "is_transient",
    "migrate",
    "open_pool",
    "outbox_channel",
    "outbox_rows",
    "run_on_notify",
]

PLUMBING = resources.files("gridline.common").joinpath("migrations")

# Failures outside the server's own error codes: the network (OSError, which includes
# TimeoutError), a connection asyncpg has given up on, and the protocol state asyncpg is
# left in when the server goes away in the middle of a transaction.
TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)
# SQLSTATE classes that say the server, not the event, is the problem: connection (08),
# transaction rollback such as serialization failures and deadlocks (40), insufficient
# resources such as too many connections (53), operator intervention such as a shutdown,
# restart or statement timeout (57), system error (58).
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})


def is_transient(exc: BaseException) -> bool:
    """True when retrying later can succeed: the event is fine, the database or network is not."""
    if isinstance(exc, TRANSIENT):
        return True
    state = getattr(exc, "sqlstate", None)
    return isinstance(exc, asyncpg.PostgresError) and str(state)[:2] in TRANSIENT_SQLSTATE_CLASSES


def rows_affected(status: str) -> int:
    """The row count of a command status such as `INSERT 0 5`, `UPDATE 3` or `DELETE 2`."""
    return int(status.rsplit(" ", 1)[-1])


def _validate_schema(schema: str) -> str:
    if not schema.isidentifier() or schema.lower() != schema:
        raise ValueError(f"schema name must be a lowercase identifier, got {schema!r}")
    return schema


async def _init_connection(conn: Connection) -> None:
    # JSON columns come and go as Python objects.
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(typ, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: Connection) -> None:
    """Released connections skip asyncpg's reset query (a round trip on every release):
    nothing here changes session state. asyncpg still rolls back an unfinished transaction
    and drops listeners; advisory locks are transaction-scoped or released explicitly."""


class BoundedPool(Pool):  # type: ignore[misc]  # asyncpg ships no types
    """asyncpg's pool, whose `acquire` waits at most `acquire_timeout` seconds for a free
    connection unless the caller says otherwise (its own `fetch`, `execute`, … acquire
    through it too). Nothing that waits on the database waits without bound: a pool that
    hands out nothing raises TimeoutError, which is transient (`is_transient`), so a loop
    logs and retries it and a request gets 503, never a silent stop."""

    __slots__ = ("_acquire_timeout",)

    def __init__(self, *args: Any, acquire_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._acquire_timeout = acquire_timeout

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=self._acquire_timeout if timeout is None else timeout)


@asynccontextmanager
async def open_pool(settings: PostgresSettings, schema: str) -> AsyncIterator[Pool]:
    """A pool whose connections see `schema` first; closed when the block ends."""
    schema = _validate_schema(schema)
    # What asyncpg.create_pool does, with the bounded pool (it takes no pool class); the
    # first five are its defaults.
    pool = await BoundedPool(
        settings.url,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=Connection,
        record_class=asyncpg.Record,
        acquire_timeout=settings.acquire_timeout_s,
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        server_settings={
            "search_path": schema,
            "application_name": f"gridline-{schema}",
            "plan_cache_mode": "force_custom_plan",
            # The working set is in memory, so an index probe costs about what a
            # sequential page does. At the default (4), before a young table's first
            # ANALYZE, the planner hash-joined a batch of 70 ids against a scan of the whole
            # table: 8.5 ms for sla's deadlines at 19,000 rows, 0.7 ms by index at 1.1
            # (docs/performance.md).
            "random_page_cost": "1.1",
        },
        init=_init_connection,
        reset=_keep_session,
        command_timeout=30,
    )
    try:
        yield pool
    finally:
        await pool.close()


def _sql_files(directory: Traversable) -> list[Traversable]:
    return sorted((f for f in directory.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)


async def migrate(pool: Pool, schema: str, directories: Sequence[Traversable]) -> list[str]:
    """Create the schema and apply, once and in name order, the plumbing and the service's
    own .sql files. An advisory lock keeps two starting instances from racing."""
    schema = _validate_schema(schema)
    applied: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"migrate:{schema}")
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {
                r["name"]
                for r in await conn.fetch(f'SELECT name FROM "{schema}".schema_migrations')
            }
            for directory in (PLUMBING, *directories):
                for file in _sql_files(directory):
                    if file.name in done:
                        continue
                    async with conn.transaction():
                        await conn.execute(f'SET LOCAL search_path TO "{schema}"')
                        await conn.execute(file.read_text(encoding="utf-8"))
                        await conn.execute(
                            f'INSERT INTO "{schema}".schema_migrations (name) VALUES ($1)',
                            file.name,
                        )
                    applied.append(file.name)
                    done.add(file.name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"migrate:{schema}")
    if applied:
        log.info("migrations applied", extra={"schema": schema, "files": applied})
    return applied


def outbox_channel(schema: str) -> str:
    return f"{schema}_outbox"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An event to publish: its payload, the clock time it happened, and optionally a
    stable id (so that an event produced twice is still applied once) or another topic."""

    data: EventData
    time: datetime
    event_id: str | None = None
    topic: str | None = None


# event ids, topics, keys, payloads: one array each, for unnest
OutboxRows = tuple[list[str], list[str], list[str], list[bytes]]

# The outbox insert with its four arrays' placeholders to fill in: add_to_outbox runs it as
# a statement of its own; a store may put it in a writable CTE beside the rows the events
# announce (intake's group commit: one statement, atomic without BEGIN and COMMIT).
OUTBOX_INSERT = (
    "INSERT INTO outbox (event_id, topic, key, payload)"
    " SELECT * FROM unnest({ids}::text[], {topics}::text[], {keys}::text[], {payloads}::bytea[])"
)


def outbox_rows(source: str, events: Sequence[Outgoing]) -> OutboxRows:
    """The outbox arrays of `events`: each wrapped in its CloudEvents envelope."""
    envelopes = [
        envelope_for(e.data, source=source, time=e.time, event_id=e.event_id) for e in events
    ]
    return (
        [env.id for env in envelopes],
        [e.topic or e.data.TOPIC for e in events],
        [e.data.key() for e in events],
        [env.model_dump_json().encode() for env in envelopes],
    )


async def add_to_outbox(conn: Connection, source: str, events: Sequence[Outgoing]) -> list[str]:
    """Write events in the caller's transaction, in one statement; they reach Kafka only if
    that transaction commits. Returns their event ids."""
    if not events:
        return []
    rows = outbox_rows(source, events)
    await conn.execute(OUTBOX_INSERT.format(ids="$1", topics="$2", keys="$3", payloads="$4"), *rows)
    # A trigger notifies the relay at commit (migrations/0001_plumbing_outbox_notify.sql).
    return rows[0]


async def run_on_notify(
    pool: Pool,
    channel: str,
    work: Callable[[Connection], Awaitable[bool]],
    *,
    wake: asyncio.Event,
    idle: Callable[[], float],
    linger: float = 0.0,
    prepare: Callable[[Connection], Awaitable[None]] | None = None,
    failed: Callable[[Exception], None] | None = None,
) -> None:
    """Run `work` in rounds on one pool connection that LISTENs on `channel`: at once when
    it says more is waiting (returns True), else after a notification (then `linger`
    seconds more, so that the commits of those milliseconds share the round) or after
    `idle()` seconds. Anyone may also set `wake`. A failed round is retried with
    backoff on a fresh connection: the database or broker is down, nothing is dropped.
    The connection is closed, never pooled again, since it carries the LISTEN and
    whatever session settings `prepare` made. A wait for a pooled connection longer than
    the pool's bound (`BoundedPool`) is a failed round too: logged and retried."""
    conn: Connection | None = None

    def notified(*_: object) -> None:
        wake.set()

    # When the server ends a connection (a crash, pg_terminate_backend), asyncpg hands it
    # back to the pool itself and detaches it: every call on it then raises InterfaceError.
    def usable(c: Connection) -> bool:
        try:
            return not c.is_closed()
        except asyncpg.InterfaceError:
            return False

    async def discard() -> None:
        nonlocal conn
        if conn is not None:
            with contextlib.suppress(asyncpg.InterfaceError):  # already given back
                conn.terminate()
            with contextlib.suppress(Exception):
                await pool.release(conn)  # a terminated connection is only counted back
        conn = None

    backoff = 0.2
    try:
        while True:
            wake.clear()
            try:
                if conn is None or not usable(conn):
                    await discard()
                    conn = await pool.acquire()
                    await conn.add_listener(channel, notified)
                    if prepare is not None:
                        await prepare(conn)
                more = await work(conn)
                backoff = 0.2
            except Exception as exc:
                log.warning("%s: round failed, retrying: %r", channel, exc, exc_info=True)
                if failed is not None:
                    failed(exc)
                await discard()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if more:
                continue
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that
            # arrives as the wake-up is set, and the task would never stop.
            try:
                async with asyncio.timeout(idle()):
                    await wake.wait()
            except TimeoutError:
                continue
            if linger:
                await asyncio.sleep(linger)
    finally:
        await discard()
