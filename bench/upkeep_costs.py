"""Two upkeep costs quoted in docs/operations.md and docs/performance.md, measured on a
scratch schema of a running PostgreSQL (`make up`'s, say), dropped after:

- the inbox's retention sweep (gridline.common.inbox.forget_inbox) over two million inbox
  rows spread over eight days: the first sweep (a day's rows to delete), a sweep with
  nothing to delete, and one ten minutes later;
- building intake's duplicate look-up index (migration 0014's statement) over one million
  first reports, a bare table of the indexed columns, per million rows.

`.venv/bin/python bench/upkeep_costs.py [DATABASE_URL]`
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import timedelta
from importlib import resources

import asyncpg

from gridline.common.inbox import forget_inbox

URL = sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:25432/gridline"
SCHEMA = "upkeep_costs"
INBOX_ROWS = 2_000_000
REPORTS = 1_000_000


def sql(package: str, name: str) -> str:
    return (resources.files(package) / "migrations" / name).read_text("utf-8")


async def sweep(conn: asyncpg.Connection) -> None:
    await conn.execute(sql("gridline.common", "0000_plumbing.sql"))
    await conn.execute(sql("gridline.common", "0002_plumbing_inbox_floors.sql"))
    # Six partitions, processed evenly over the last eight days.
    await conn.execute(
        "INSERT INTO inbox SELECT gen_random_uuid()::text, 'gridline.workorders', i % 6, i / 6,"
        " now() - interval '8 days' + (i::float8 / $1) * interval '8 days'"
        " FROM generate_series(0, $1 - 1) AS i",
        INBOX_ROWS,
    )
    await conn.execute(
        "INSERT INTO inbox_floors SELECT 'g', 'gridline.workorders', p, 1000000000"
        " FROM generate_series(0, 5) AS p"
    )
    await conn.execute("VACUUM ANALYZE inbox")
    print(f"inbox: {INBOX_ROWS:,} rows over 8 days, retention 7 days")
    for label, hours in (
        ("first sweep", 168.0),
        ("again, nothing to delete", 168.0),
        ("ten minutes later", 168.0 - 1 / 6),
    ):
        t = time.perf_counter()
        n = await forget_inbox(conn, ["g"], timedelta(hours=hours))
        print(f"  {label}: {n:,} rows deleted in {(time.perf_counter() - t) * 1000:.0f} ms")


async def lookup_index(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "CREATE TABLE requests (service_code text, lat float8, lon float8,"
        " requested_datetime timestamptz, duplicate_of text)"
    )
    await conn.execute(
        "INSERT INTO requests SELECT 'exposed-garbage', 31.7 + random() * 0.3,"
        " 119.8 + random() * 0.3, now() - i * interval '1 second', NULL"
        " FROM generate_series(1, $1) AS i",
        REPORTS,
    )
    await conn.execute("VACUUM ANALYZE requests")
    statement = sql("gridline.intake", "0014_roots_near.sql")
    t = time.perf_counter()
    await conn.execute(statement)
    seconds = time.perf_counter() - t
    print(
        f"look-up index (0014) over {REPORTS:,} reports: {seconds / (REPORTS / 1e6):.2f} s a million"
    )


async def main() -> None:
    conn = await asyncpg.connect(URL)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")
        await conn.execute(f"SET search_path TO {SCHEMA}")
        await sweep(conn)
        await lookup_index(conn)
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
