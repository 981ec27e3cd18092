"""How long the inbox remembers, and where a consumer resumes when the broker forgot.

The inbox (migration 0000) holds the id of every event a guarded handler applied, so that
a copy is skipped. Copies come from two places:
- a consumer resuming from its group's committed offset reads again what it applied but
  had not committed (at most `commit_interval_ms` of events), and
- an outbox relay stopped between the broker's acknowledgement and its delete sends the
  event again, at a new offset, when its service starts again (however long it was down).
So a row is needed only while such a copy can still come. The sweep forgets rows that were
processed more than `GRIDLINE_INBOX_RETENTION_HOURS` ago and lie below the offset their
group had committed (its floor, recorded in `inbox_floors` by the same sweep); a service
adds its own natural-key guards with `RetentionSweep.also`.

The broker forgets too: a group's committed offsets expire once the group has had no
member for `offsets.retention.minutes` (7 days by default), and a consumer without them
would start again from the earliest event still in the log (`auto_offset_reset`), whose
inbox rows may be gone. A consumer whose group has no committed offset for a partition
therefore resumes from the recorded floor (`resume_points`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta

from aiokafka.structs import TopicPartition
from prometheus_client import CollectorRegistry, Counter

from gridline.common.pg import Connection, Pool, rows_affected
from gridline.common.settings import InboxSettings

log = logging.getLogger(__name__)

Forget = Callable[[Connection, timedelta], Awaitable[int]]
"""Deletes the rows a guard keeps that are older than the retention; returns how many."""

Committed = Callable[[], Mapping[str, Mapping[TopicPartition, int]]]
"""For each consumer group of this process, the offsets it has committed."""


async def record_floors(
    conn: Connection, group_id: str, committed: Mapping[TopicPartition, int]
) -> None:
    """Raise `group_id`'s floors to these committed offsets (never lower them)."""
    if not committed:
        return
    items = sorted(committed.items())
    await conn.execute(
        "INSERT INTO inbox_floors AS f (group_id, topic, kafka_partition, next_offset)"
        " SELECT $1, * FROM unnest($2::text[], $3::int[], $4::bigint[])"
        " ON CONFLICT (group_id, topic, kafka_partition) DO UPDATE"
        " SET next_offset = EXCLUDED.next_offset, recorded_at = now()"
        " WHERE f.next_offset < EXCLUDED.next_offset",
        group_id,
        [tp.topic for tp, _ in items],
        [tp.partition for tp, _ in items],
        [offset for _, offset in items],
    )


async def resume_points(
    pool: Pool, group_id: str, partitions: Sequence[TopicPartition]
) -> dict[TopicPartition, int]:
    """The recorded floors of `group_id` for these partitions (none recorded: absent)."""
    rows = await pool.fetch(
        "SELECT topic, kafka_partition, next_offset FROM inbox_floors"
        " WHERE group_id = $1 AND (topic, kafka_partition) IN"
        "  (SELECT * FROM unnest($2::text[], $3::int[]))",
        group_id,
        [tp.topic for tp in partitions],
        [tp.partition for tp in partitions],
    )
    return {TopicPartition(r["topic"], r["kafka_partition"]): r["next_offset"] for r in rows}


async def forget_inbox(conn: Connection, groups: Sequence[str], retention: timedelta) -> int:
    """Delete the inbox rows older than `retention` that lie below the floor of their
    partition (of these groups, the ones consuming into this schema). A partition without
    a floor keeps its rows."""
    return rows_affected(
        await conn.execute(
            "DELETE FROM inbox AS i"
            " USING (SELECT topic, kafka_partition, min(next_offset) AS floor"
            "  FROM inbox_floors WHERE group_id = ANY($1::text[])"
            "  GROUP BY topic, kafka_partition) AS f"
            " WHERE i.topic = f.topic AND i.kafka_partition = f.kafka_partition"
            " AND i.kafka_offset < f.floor AND i.processed_at < now() - $2::interval",
            list(groups),
            retention,
        )
    )


class RetentionSweep:
    """Every `sweep_interval_s`: record how far this process's consumers committed, then
    forget the inbox rows (and the rows of every guard added with `also`) older than the
    retention. Each statement commits alone; any number of instances may sweep at once,
    since a DELETE of what is already gone deletes nothing and a floor only grows."""

    def __init__(
        self,
        pool: Pool,
        settings: InboxSettings,
        registry: CollectorRegistry,
        committed: Committed,
    ) -> None:
        self._pool = pool
        self._retention = timedelta(hours=settings.retention_hours)
        self._interval = settings.sweep_interval_s
        self._committed = committed
        self._guards: dict[str, Forget] = {}
        self._forgotten = Counter(
            "gridline_retention_forgotten_total",
            "Rows the retention sweep deleted (inbox rows and natural-key guards older than"
            " GRIDLINE_INBOX_RETENTION_HOURS), by table.",
            ["table"],
            registry=registry,
        )
        self._forgotten.labels("inbox")  # 0 from the start, not absent
        self._failures = Counter(
            "gridline_retention_sweep_failures_total",
            "Retention sweeps that failed (tried again an interval later).",
            registry=registry,
        )

    def also(self, table: str, forget: Forget) -> None:
        """Sweep `table` too, with `forget`, at the same retention."""
        self._guards[table] = forget
        self._forgotten.labels(table)

    async def sweep_once(self) -> dict[str, int]:
        """One sweep; returns the rows deleted per table."""
        committed = self._committed()
        async with self._pool.acquire() as conn:
            for group_id, offsets in sorted(committed.items()):
                await record_floors(conn, group_id, offsets)
            counts = {"inbox": await forget_inbox(conn, sorted(committed), self._retention)}
            for table, forget in self._guards.items():
                counts[table] = await forget(conn, self._retention)
        for table, n in counts.items():
            self._forgotten.labels(table).inc(n)
        if any(counts.values()):
            log.info("retention sweep", extra={"forgotten": counts})
        return counts

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sweep_once()
            except Exception:  # PostgreSQL away, say: nothing is lost by sweeping later
                self._failures.inc()
                log.exception("retention sweep failed; trying again in %.0f s", self._interval)
