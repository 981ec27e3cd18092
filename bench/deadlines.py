"""sla's deadline scheduler at city scale: one million open deadlines, a burst due at more
than 10,000 a second, fired by the service's own scheduler and outbox relay in a process
of their own, to the real Kafka.

    .venv/bin/python bench/deadlines.py                       # print the section
    .venv/bin/python bench/deadlines.py --append docs/benchmarks.md

It needs DATABASE_URL and GRIDLINE_KAFKA_BOOTSTRAP (scripts/bench.sh sets them, after
stopping the stack's services so that nothing else consumes the breaches or the CPU).
It COPYs the deadlines into a fresh schema `sla_bench` (migrated with sla's migrations),
starts `--child`: sla's Scheduler (SLA_SCAN_* settings) and the common OutboxRelay, as
sla's bootstrap wires them, without its consumer and metric loops; then waits until the
burst has fired and the outbox is empty. Lags are fire time - due time: `fired_at` (the
transaction that wrote the breach to the outbox) and the Kafka record's timestamp (set by
the relay's producer when it sent the breach). The child's peak RSS is VmHWM of
/proc/<pid>/status. Arguments of scripts/bench.sh it does not know are ignored;
`--skip deadlines` skips it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import procs  # bench/procs.py, beside this file
from page import replace_section, stamp

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- deadlines:start -->", "<!-- deadlines:end -->"
SCHEMA = "sla_bench"


async def child() -> None:
    """The scheduler and the relay, wired as sla's bootstrap wires them."""
    from prometheus_client import CollectorRegistry

    from gridline.common.clock import ScaledClock
    from gridline.common.kafka import open_producer
    from gridline.common.outbox import OutboxRelay
    from gridline.common.pg import open_pool
    from gridline.sla.config import SlaSettings
    from gridline.sla.handlers import Sla
    from gridline.sla.scheduler import Scheduler

    settings = SlaSettings()
    clock = ScaledClock(settings.clock.speed, settings.clock.epoch)
    async with (
        open_pool(settings.postgres, SCHEMA) as pool,
        open_producer(settings.kafka, client_id="gridline-sla-bench") as producer,
    ):
        relay = OutboxRelay(
            pool,
            producer,
            SCHEMA,
            CollectorRegistry(),
            linger=settings.kafka.relay_linger_ms / 1000,
        )
        sla = Sla(clock, "/gridline/sla", settings.bucket_seconds)
        scheduler = Scheduler(
            sla,
            pool,
            clock,
            settings.scan_interval,
            settings.scan_batch,
            settings.scan_batch_max,
        )
        print("ready", flush=True)
        await asyncio.gather(scheduler.run(), relay.run())


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def postgres_cpu() -> Callable[[], float]:
    """CPU seconds of the PostgreSQL tree of the run directory, if it is a private one."""
    postmaster = procs.pid_from_file(
        Path(os.environ.get("GRIDLINE_RUN_DIR", "/nonexistent")) / "pg" / "data" / "postmaster.pid"
    )
    if postmaster is None:
        return lambda: float("nan")
    return lambda: procs.tree_seconds(postmaster)


async def load(url: str, total: int, burst: int, span: float, lead: float) -> datetime:
    """A fresh schema with `total` open deadlines: `burst` of them due evenly over `span`
    seconds from `lead` seconds after loading ends (ids b0..; COPYed last, so that their
    times do not depend on how long the rest took), the rest over the next 30 days.
    Returns when the burst starts."""
    import asyncpg

    from gridline.common.pg import migrate, open_pool
    from gridline.common.settings import PostgresSettings

    conn = await asyncpg.connect(url)
    await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    await conn.close()
    columns = ["work_order_id", "assignment_seq", "tier", "unit_id", "due_at"]
    async with open_pool(PostgresSettings(), SCHEMA) as pool:
        await migrate(pool, SCHEMA, [resources.files("gridline.sla") / "migrations"])
        far = datetime.now(UTC) + timedelta(seconds=span + lead + 600)
        later = timedelta(days=30) / max(1, total - burst)
        async with pool.acquire() as conn:
            await conn.copy_records_to_table(
                "deadlines",
                records=[
                    (f"o{i}", 1, "grid", "grid-unit", far + later * i) for i in range(total - burst)
                ],
                columns=columns,
                schema_name=SCHEMA,
            )
            start = datetime.now(UTC) + timedelta(seconds=lead)
            step = timedelta(seconds=span / burst)
            await conn.copy_records_to_table(
                "deadlines",
                records=[(f"b{i}", 1, "grid", "grid-unit", start + step * i) for i in range(burst)],
                columns=columns,
                schema_name=SCHEMA,
            )
            await conn.execute("ANALYZE deadlines")
    return start


async def kafka_offsets(bootstrap: str) -> dict[Any, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer("gridline.sla", bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        parts = [
            TopicPartition("gridline.sla", p)
            for p in consumer.partitions_for_topic("gridline.sla") or []
        ]
        return dict(await consumer.end_offsets(parts))
    finally:
        await consumer.stop()


async def kafka_lags(
    bootstrap: str, since: dict[Any, int], due: dict[str, float], wait: float
) -> list[float]:
    """Seconds from due time to the Kafka record's timestamp, for each burst breach."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer("gridline.sla", bootstrap_servers=bootstrap)
    await consumer.start()
    lags: dict[str, float] = {}
    try:
        for tp, offset in since.items():
            consumer.seek(tp, offset)
        deadline = time.monotonic() + wait
        while len(lags) < len(due) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for records in batch.values():
                for r in records:
                    key = r.key.decode() if r.key else ""
                    if key in due and key not in lags:
                        lags[key] = r.timestamp / 1000 - due[key]
    finally:
        await consumer.stop()
    return list(lags.values())


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    import asyncpg

    url = os.environ["DATABASE_URL"]
    bootstrap = os.environ.get("GRIDLINE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    since = await kafka_offsets(bootstrap)
    started = time.monotonic()
    start = await load(url, args.total, args.burst, args.span, args.lead)
    loaded_s = time.monotonic() - started
    if datetime.now(UTC) > start - timedelta(seconds=2):
        raise SystemExit("bench: loading the burst took too long; use a larger --lead")

    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--child", stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    if (await proc.stdout.readline()).strip() != b"ready":
        raise SystemExit("bench: the scheduler process did not start")
    conn = await asyncpg.connect(url, server_settings={"search_path": SCHEMA})
    samples: list[int] = []
    try:
        pg_cpu = postgres_cpu()
        cpu0, pg0 = procs.cpu_seconds(proc.pid), pg_cpu()
        end_by = time.monotonic() + (start - datetime.now(UTC)).total_seconds() + args.span + 60
        while time.monotonic() < end_by:
            await asyncio.sleep(0.25)
            samples.append(rss_kib(proc.pid, "VmRSS"))
            left = await conn.fetchval(
                "SELECT count(*) FROM deadlines WHERE fired_at IS NULL AND work_order_id LIKE 'b%'"
                " AND due_at <= now() + interval '1 hour'"
            )
            past = datetime.now(UTC) > start + timedelta(seconds=args.span)
            if past and left == 0 and await conn.fetchval("SELECT count(*) FROM outbox") == 0:
                break
        cpu, pg = procs.cpu_seconds(proc.pid) - cpu0, pg_cpu() - pg0
        peak = rss_kib(proc.pid, "VmHWM")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(10):
                await proc.wait()
        except TimeoutError:
            proc.kill()
    row = await conn.fetchrow(
        "SELECT count(*) AS n, count(*) FILTER (WHERE fired_at IS NOT NULL) AS fired,"
        " extract(epoch FROM max(fired_at) - min(fired_at)) AS spread,"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM fired_at - due_at)) AS p50,"
        " percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM fired_at - due_at)) AS p99,"
        " max(extract(epoch FROM fired_at - due_at)) AS max"
        " FROM deadlines WHERE work_order_id LIKE 'b%'"
    )
    pending = await conn.fetchval("SELECT count(*) FROM deadlines WHERE fired_at IS NULL")
    due_rows = await conn.fetch(
        "SELECT work_order_id, extract(epoch FROM due_at) AS due FROM deadlines"
        " WHERE work_order_id LIKE 'b%'"
    )
    await conn.close()
    due = {r["work_order_id"]: float(r["due"]) for r in due_rows}
    kafka = await kafka_lags(bootstrap, since, due, wait=60)
    return {
        "total": args.total,
        "burst": args.burst,
        "span": args.span,
        "loaded_s": loaded_s,
        "fired": row["fired"],
        "pending": pending,
        "spread": float(row["spread"] or 0),
        "p50": float(row["p50"] or 0),
        "p99": float(row["p99"] or 0),
        "max": float(row["max"] or 0),
        "kafka": kafka,
        "cpu": cpu,
        "pg_cpu": pg,
        "peak_mib": peak / 1024,
        "median_rss_mib": statistics.median(samples) / 1024 if samples else 0.0,
        "settings": {
            k: os.environ.get(k, "default")
            for k in ("SLA_SCAN_INTERVAL", "SLA_SCAN_BATCH", "SLA_SCAN_BATCH_MAX")
        },
    }


def section(m: dict[str, Any], command: str) -> str:
    offered = m["burst"] / m["span"]
    k = m["kafka"]
    kafka_line = (
        f"| lag to Kafka (record timestamp − due time), {len(k):,} breaches read back"
        f" | {pct(k, 0.5) * 1000:,.0f} ms | {pct(k, 0.99) * 1000:,.0f} ms"
        f" | {max(k) * 1000:,.0f} ms |"
        if k
        else "| lag to Kafka | not read back | | |"
    )
    return "\n".join(
        [
            START,
            "## sla's deadline scheduler: a million open deadlines",
            "",
            f"Command: `{command}` (this section alone, with DATABASE_URL and"
            f" GRIDLINE_KAFKA_BOOTSTRAP set: `.venv/bin/python bench/deadlines.py`),"
            f" {stamp()}. {m['total']:,} open deadlines COPYed into a fresh schema"
            f" ({m['loaded_s']:.0f} s with migration and ANALYZE); {m['burst']:,} of them due"
            f" evenly over {m['span']:.0f} s ({offered:,.0f} a second), the rest over the"
            " next 30 days. One process runs sla's Scheduler and the outbox relay to the real"
            f" Kafka (settings: {m['settings']}); nothing else of the stack runs.",
            "",
            "| measure | p50 | p99 | max |",
            "|---|---:|---:|---:|",
            f"| fire lag (`fired_at` − due time: the transaction writing the breach to the"
            f" outbox) | {m['p50'] * 1000:,.0f} ms | {m['p99'] * 1000:,.0f} ms"
            f" | {m['max'] * 1000:,.0f} ms |",
            kafka_line,
            "",
            f"Fired {m['fired']:,} of the {m['burst']:,} due, between the first and the last"
            f" {m['spread']:.1f} s apart: {m['fired'] / max(m['spread'], 1e-9):,.0f} firings a"
            f" second sustained (offered {offered:,.0f}); {m['pending']:,} deadlines still"
            f" pending, as they should. The scheduler process: peak RSS {m['peak_mib']:,.0f}"
            f" MiB (VmHWM; median {m['median_rss_mib']:,.0f} MiB while firing), CPU"
            f" {m['cpu']:.1f} s over the run ({m['cpu'] / max(m['spread'], 1e-9):.0%} of one core"
            f" while firing, the relay's sends included); PostgreSQL "
            + (
                f"{m['pg_cpu']:.1f} s."
                if m["pg_cpu"] == m["pg_cpu"]  # not NaN
                else "not measured (not the run directory's own server)."
            ),
            END,
            "",
        ]
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, allow_abbrev=False)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--total", type=int, default=1_000_000)
    p.add_argument("--burst", type=int, default=200_000)
    p.add_argument("--span", type=float, default=15.0, help="seconds the burst is due over")
    p.add_argument("--lead", type=float, default=12.0, help="seconds from loaded to the burst")
    p.add_argument("--skip", default="", help="comma list; 'deadlines' skips this bench")
    p.add_argument("--append", help="replace (or add) this section in this Markdown file")
    p.add_argument("--command", default="make bench")
    args, _ = p.parse_known_args()  # the rest belongs to bench/run.py
    if args.child:
        asyncio.run(child())
        return 0
    if "deadlines" in {s.strip() for s in args.skip.split(",")}:
        print("deadlines bench skipped")
        return 0
    text = section(asyncio.run(measure(args)), args.command)
    if not args.append:
        print(text)
        return 0
    page = Path(args.append)
    replace_section(page, START, END, text)
    print(f"deadline figures written to {page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
