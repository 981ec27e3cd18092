"""The duplicate look-up's two indexes side by side, quoted in docs/performance.md: by cell
(intake migration 0013) and by cell with the coordinates as last keys (0014).

Two copies of one table at `make bench`'s density (32,400 points over 0.1 × 0.1 degree,
400 cells; a report a millisecond for 300 s, so 5,000 in the bench's 5 s window), one
index each; then, alternately, intake's look-up statement for batches of 27 new reports
(the group commit's size at 1,000/s) with the bench's 5 cm radius, and 5,000-row inserts.
Needs a PostgreSQL (`make up`'s, say); works in two scratch schemas it drops after:
`.venv/bin/python bench/duplicate_lookup.py [DATABASE_URL]`.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from gridline.intake.adapters.store import EARLIER_REPORTS, cell_sql, earlier_arguments
from gridline.intake.domain.duplicates import NewReport

URL = sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:25432/gridline"
CODE = "exposed-garbage"
INDEXES = {
    "lookup_by_cell": "requested_datetime",
    "lookup_by_cell_place": "requested_datetime, lat, lon",
}


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(n for child in plan.get("Plans", []) for n in nodes(child))]


async def main() -> None:
    conn = await asyncpg.connect(URL)
    rng = random.Random(1)
    now = datetime.now(UTC)
    points = [(31.76 + rng.random() * 0.1, 119.90 + rng.random() * 0.1) for _ in range(32_400)]
    n = 300_000
    for schema, last_keys in INDEXES.items():
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
        await conn.execute(
            f"CREATE TABLE {schema}.requests (service_request_id text PRIMARY KEY,"
            " work_order_id text, service_code text, lat float8, lon float8,"
            " requested_datetime timestamptz, duplicate_of text, status text)"
        )
        await conn.copy_records_to_table(
            "requests",
            schema_name=schema,
            records=[
                (
                    f"r{i}",
                    f"r{i}",
                    CODE,
                    *points[i % len(points)],
                    now - timedelta(milliseconds=n - i),
                    None,
                    "open",
                )
                for i in range(n)
            ],
        )
        await conn.execute(
            f"CREATE INDEX ON {schema}.requests (service_code, ({cell_sql()}), {last_keys})"
            " WHERE duplicate_of IS NULL"
        )
        await conn.execute(f"ANALYZE {schema}.requests")
    looked: dict[str, list[float]] = {s: [] for s in INDEXES}
    inserted: dict[str, list[float]] = {s: [] for s in INDEXES}
    args: list[Any] = []
    for k in range(300):
        batch = [points[rng.randrange(len(points))] for _ in range(27)]
        new = [NewReport(f"n{i}", CODE, lat + 1e-7, lon, now) for i, (lat, lon) in enumerate(batch)]
        args = earlier_arguments(new, 0.05, timedelta(seconds=5), timedelta(days=30))
        for schema in INDEXES if k % 2 else reversed(INDEXES):
            await conn.execute(f"SET search_path TO {schema}")
            t = time.perf_counter()
            await conn.fetch(EARLIER_REPORTS, *args)
            looked[schema].append((time.perf_counter() - t) * 1000)
    for k in range(20):
        for schema in INDEXES if k % 2 else reversed(INDEXES):
            rows = [
                (
                    f"i{k}-{i}",
                    f"i{k}-{i}",
                    CODE,
                    *points[rng.randrange(len(points))],
                    now,
                    None,
                    "open",
                )
                for i in range(5_000)
            ]
            t = time.perf_counter()
            await conn.executemany(
                f"INSERT INTO {schema}.requests VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", rows
            )
            inserted[schema].append((time.perf_counter() - t) * 1000 / len(rows))
    print(
        "| index | look-up ms (median, p90) | buffers | rows read and dropped | insert µs a row |"
    )
    print("|---|---:|---:|---:|---:|")
    for schema in INDEXES:
        await conn.execute(f"SET search_path TO {schema}")
        out = await conn.fetchval(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + EARLIER_REPORTS, *args
        )
        plan = json.loads(out)[0]["Plan"]
        scans = [x for x in nodes(plan) if x.get("Relation Name") == "requests"]
        times = sorted(looked[schema])
        print(
            f"| (service_code, cell, {INDEXES[schema]}) | {statistics.median(times):.2f}, {times[len(times) * 9 // 10]:.2f}"
            f" | {plan.get('Shared Hit Blocks', 0) + plan.get('Shared Read Blocks', 0)}"
            f" | {sum(x.get('Rows Removed by Filter', 0) for x in scans)}"
            f" | {statistics.median(inserted[schema]) * 1000:.1f} |"
        )
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
