"""sla's read latency with ten million resolved work orders stored: any figure for any
scope, category and window through the running sla's API, as the issue asks (< 100 ms).

    .venv/bin/python bench/reads.py --dsn $DATABASE_URL --sla http://127.0.0.1:28002
    .venv/bin/python bench/reads.py ... --append docs/benchmarks.md

`make bench` runs it after the end-to-end figures, on the bench stack's own PostgreSQL:
it writes the resolutions into sla's schema (orders `bench-…`, spread over three years up to
the stack's today, in a Changzhou-sized city of 7,000 grids, 20 categories) and moves the
tallies and /metrics' hourly rows by exactly what those resolutions contribute, the way
the resolutions' own transactions would have (set-based SQL here, for speed; the same
columns and scopes as domain/measures.py). It then asks sla's API at random, checks a few
answers against a count of the stored resolutions, and replaces its section of the page.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from page import replace_section, stamp

START, END = "<!-- reads:start -->", "<!-- reads:end -->"
GRIDS, CATEGORIES, YEARS = 7_000, 20, 3
TIERS = "ARRAY['grid','grid','grid','grid','grid','grid','grid','community','street','department']"
# The generated resolutions: order i resolved at a time spread evenly over three years up
# to $2; grid, category, tier and time to resolve from a multiplicative hash of i.
GENERATE = f"""
INSERT INTO resolutions (work_order_id, tier, category, street_id, district_id, opened_at,
    resolved_at, version, resolution_seconds, grid_id, community_id, due_at, day)
SELECT 'bench-' || i, ({TIERS})[1 + (h % 10)], 'bench-cat-' || ((h / 10) % {CATEGORIES}),
    'bench-st-' || (g / 70), 'bench-d-' || (g / 700), r - secs, r, 3,
    extract(epoch FROM secs), 'bench-g-' || g, 'bench-c-' || (g / 7),
    r - secs + interval '1 day', (r AT TIME ZONE $3)::date
FROM generate_series(1, $1::bigint) AS i,
LATERAL (SELECT (i * 2654435761) % 4294967296 AS h) a,
LATERAL (SELECT (h / 200) % {GRIDS} AS g,
    make_interval(secs => 600 + (h / 7) % 172800) AS secs,
    $2::timestamptz - make_interval(secs => ($1 - i) * {YEARS * 365 * 86400.0} / $1) AS r) b
"""
# What those resolutions add to the tallies: every scope, the category and `*`, the day.
# The city's rows may exist already (the bench's traffic): upserted. The other scopes are
# the bench's own: appended with the primary key dropped, which is then built again in one
# sort (row by row into the index they would take many minutes).
TALLY_COLUMNS = """
    count(*) FILTER (WHERE r.tier = 'grid'), count(*) FILTER (WHERE r.tier = 'community'),
    count(*) FILTER (WHERE r.tier = 'street'), count(*) FILTER (WHERE r.tier = 'department'),
    count(*), count(*) FILTER (WHERE r.resolved_at <= r.due_at), sum(r.resolution_seconds)
"""
CITY_TALLY = f"""
INSERT INTO tallies AS t (scope, category, day, at_grid, at_community, at_street,
    at_department, timed, on_time, seconds)
SELECT 'city', c.category, r.day, {TALLY_COLUMNS}
FROM resolutions r CROSS JOIN LATERAL (VALUES (r.category), ('*')) AS c(category)
WHERE r.work_order_id LIKE 'bench-%'
GROUP BY 1, 2, 3
ON CONFLICT (scope, category, day) DO UPDATE SET at_grid = t.at_grid + EXCLUDED.at_grid,
    at_community = t.at_community + EXCLUDED.at_community,
    at_street = t.at_street + EXCLUDED.at_street,
    at_department = t.at_department + EXCLUDED.at_department,
    timed = t.timed + EXCLUDED.timed, on_time = t.on_time + EXCLUDED.on_time,
    seconds = t.seconds + EXCLUDED.seconds
"""
UNIT_TALLY = f"""
INSERT INTO tallies (scope, category, day, at_grid, at_community, at_street, at_department,
    timed, on_time, seconds)
SELECT s.scope, c.category, r.day, {TALLY_COLUMNS}
FROM resolutions r
CROSS JOIN LATERAL (VALUES ('district:' || r.district_id), ('street:' || r.street_id),
    ('community:' || r.community_id), ('grid:' || r.grid_id)) AS s(scope)
CROSS JOIN LATERAL (VALUES (r.category), ('*')) AS c(category)
WHERE r.work_order_id LIKE 'bench-%'
GROUP BY 1, 2, 3
"""
HOURLY = """
INSERT INTO hourly AS h (hour, scope, at_grid, at_community, at_street, at_department)
SELECT date_trunc('hour', r.resolved_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', s.scope,
    count(*) FILTER (WHERE r.tier = 'grid'), count(*) FILTER (WHERE r.tier = 'community'),
    count(*) FILTER (WHERE r.tier = 'street'), count(*) FILTER (WHERE r.tier = 'department')
FROM resolutions r
CROSS JOIN LATERAL (VALUES ('city'), ('district:' || r.district_id), ('street:' || r.street_id))
    AS s(scope)
WHERE r.work_order_id LIKE 'bench-%' AND r.resolved_at >= $1
GROUP BY 1, 2
ON CONFLICT (hour, scope) DO UPDATE SET at_grid = h.at_grid + EXCLUDED.at_grid,
    at_community = h.at_community + EXCLUDED.at_community,
    at_street = h.at_street + EXCLUDED.at_street,
    at_department = h.at_department + EXCLUDED.at_department
"""


async def load(conn: asyncpg.Connection, orders: int, now: datetime, zone: str) -> dict[str, Any]:
    """The resolutions and their tallies, unless this many are stored already."""
    stored = await conn.fetchval(
        "SELECT count(*) FROM resolutions WHERE work_order_id LIKE 'bench-%'"
    )
    if stored == orders:
        return {"loaded_s": 0.0, "reused": True}
    started = time.perf_counter()
    await conn.execute("SET work_mem = '512MB'")
    await conn.execute("SET maintenance_work_mem = '1GB'")
    async with conn.transaction():
        for table in ("tallies", "hourly"):  # the bench's earlier load taken back out first
            await conn.execute(f"DELETE FROM {table} WHERE scope LIKE '%bench-%'")
        await conn.execute("DELETE FROM resolutions WHERE work_order_id LIKE 'bench-%'")
        await conn.execute(GENERATE, orders, now, zone)
        await conn.execute(CITY_TALLY)
        await conn.execute("ALTER TABLE tallies DROP CONSTRAINT tallies_pkey")
        await conn.execute(UNIT_TALLY)
        await conn.execute("ALTER TABLE tallies ADD PRIMARY KEY (scope, category, day)")
        await conn.execute(HOURLY, now - timedelta(days=31))
    await conn.execute("ANALYZE resolutions")
    await conn.execute("ANALYZE tallies")
    return {"loaded_s": time.perf_counter() - started, "reused": False}


def _count(n: int) -> str:
    """10 million, 1 million, or 20,000 as written."""
    return f"{n / 1e6:g} million" if n >= 1_000_000 else f"{n:,}"


def grid_of(i: int) -> int:
    """The grid GENERATE gives resolution i (the same hash)."""
    return (i * 2654435761) % 4294967296 // 200 % GRIDS


def questions(n: int, orders: int, today: date, rng: random.Random) -> list[dict[str, str]]:
    """Random questions at every level: scope, category (or all), window or month; each
    about the place of a stored resolution (sla answers 404 for a unit it never heard
    of, which a grid no resolution fell in would be with few orders loaded)."""
    out = []
    for i in range(n):
        g = grid_of(rng.randrange(1, orders + 1))
        scope = [
            "city",
            f"district:bench-d-{g // 700}",
            f"street:bench-st-{g // 70}",
            f"community:bench-c-{g // 7}",
            f"grid:bench-g-{g}",
        ][i % 5]
        q = {
            "scope": scope,
            "category": rng.choice(["*", f"bench-cat-{rng.randrange(CATEGORIES)}"]),
        }
        if rng.random() < 0.25:
            back = rng.randrange(YEARS * 12)
            month = date(today.year, today.month, 1)
            for _ in range(back):
                month = (month - timedelta(days=1)).replace(day=1)
            q["month"] = month.strftime("%Y-%m")
        else:
            q["window"] = rng.choice(["1d", "7d", "30d"])
        out.append(q)
    return out


async def ask_all(sla: str, qs: list[dict[str, str]]) -> dict[str, list[float]]:
    """Each question's latency in ms, one at a time (a user's request, not a load test)."""
    by_level: dict[str, list[float]] = {}
    async with httpx.AsyncClient(base_url=sla, timeout=10) as client:
        for q in qs:
            started = time.perf_counter()
            r = await client.get("/v1/measures", params=q)
            elapsed = (time.perf_counter() - started) * 1000
            r.raise_for_status()
            by_level.setdefault(q["scope"].split(":")[0], []).append(elapsed)
    return by_level


async def check(conn: asyncpg.Connection, sla: str, orders: int, rng: random.Random) -> list[str]:
    """A few answers against a count of the stored resolutions (the ground truth)."""
    out = []
    async with httpx.AsyncClient(base_url=sla, timeout=30) as client:
        for scope, column in (
            ("street", "street_id"),
            ("grid", "grid_id"),
            ("community", "community_id"),
        ):
            g = grid_of(rng.randrange(1, orders + 1))
            unit = {
                "street": f"bench-st-{g // 70}",
                "grid": f"bench-g-{g}",
                "community": f"bench-c-{g // 7}",
            }[scope]
            answer = (
                await client.get(
                    "/v1/measures", params={"scope": f"{scope}:{unit}", "window": "30d"}
                )
            ).json()
            first, last = (
                date.fromisoformat(answer["first_day"]),
                date.fromisoformat(answer["last_day"]),
            )
            truth = await conn.fetchrow(
                f"SELECT count(*) AS n, count(*) FILTER (WHERE tier = 'grid') AS g FROM resolutions"
                f" WHERE {column} = $1 AND day BETWEEN $2 AND $3",
                unit,
                first,
                last,
            )
            assert truth is not None
            assert answer["resolved"] == truth["n"], (scope, answer, dict(truth))
            assert answer["resolved_by_tier"]["grid"] == truth["g"], (scope, answer, dict(truth))
            out.append(f"{scope}:{unit} 30d: {truth['n']} resolved, as stored")
    return out


def _ms(values: list[float]) -> str:
    s = sorted(values)
    p99 = s[min(len(s) - 1, round(0.99 * (len(s) - 1)))]
    return f"{statistics.median(s):.1f} | {p99:.1f} | {s[-1]:.1f}"


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    conn = await asyncpg.connect(args.dsn, server_settings={"search_path": "sla"})
    try:
        zone = await conn.fetchval("SELECT time_zone FROM targets LIMIT 1") or "UTC"
        async with httpx.AsyncClient(base_url=args.sla, timeout=10) as client:
            probe = (await client.get("/v1/measures", params={"window": "1d"})).json()
        today = date.fromisoformat(probe["last_day"])
        now = datetime.now(UTC)
        loaded = await load(conn, args.orders, now, zone)
        sizes = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM resolutions) AS resolutions,"
            " (SELECT count(*) FROM tallies) AS tallies,"
            " pg_total_relation_size('resolutions') AS resolutions_bytes,"
            " pg_total_relation_size('tallies') AS tallies_bytes"
        )
        rng = random.Random(7)
        await ask_all(args.sla, questions(100, args.orders, today, rng))  # warm up
        latencies = await ask_all(args.sla, questions(args.questions, args.orders, today, rng))
        checks = await check(conn, args.sla, args.orders, rng)
        started = time.perf_counter()
        async with httpx.AsyncClient(timeout=10) as client:
            scrape = []
            for _ in range(20):
                started = time.perf_counter()
                (await client.get(f"{args.sla}/metrics")).raise_for_status()
                scrape.append((time.perf_counter() - started) * 1000)
        return {**loaded, **dict(sizes), "latencies": latencies, "checks": checks, "scrape": scrape}
    finally:
        await conn.close()


def section(m: dict[str, Any], args: argparse.Namespace) -> str:
    every = [v for values in m["latencies"].values() for v in values]
    rows = [
        f"| {level} | {len(values)} | {_ms(values)} |"
        for level in ("city", "district", "street", "community", "grid")
        if (values := m["latencies"].get(level))
    ]
    load = (
        "reused from an earlier run"
        if m["reused"]
        else f"loaded in {m['loaded_s']:.0f} s (set-based SQL)"
    )
    return "\n".join(
        [
            START,
            f"## sla's reads with {_count(m['resolutions'])} resolved orders stored",
            "",
            f"Command: `{args.command}` (this section alone: `.venv/bin/python bench/reads.py"
            f" --dsn … --sla …` beside a running stack), {stamp()}.",
            "",
            f"Stored: {m['resolutions']:,} resolutions ({m['resolutions_bytes'] / 2**30:.1f} GiB"
            f" with indexes) and {m['tallies']:,} tally rows ({m['tallies_bytes'] / 2**30:.1f}"
            f" GiB), {load}: {GRIDS:,} grids, {CATEGORIES} categories, three years. Questions"
            " go one at a time to the running sla's `GET /v1/measures` over HTTP (scope at"
            " every level, a category or all, 1d/7d/30d or a month of the last three years),"
            " random with a fixed seed; latency is the client's, request to parsed answer.",
            "",
            "| scope level | questions | p50 ms | p99 ms | max ms |",
            "|---|---:|---:|---:|---:|",
            *rows,
            f"| **all** | {len(every)} | {_ms(every)} |",
            "",
            f"`GET /metrics` (its snapshot, refreshed in the background from `hourly`): p50 /"
            f" p99 / max {_ms(m['scrape']).replace(' |', ' /')} ms over {len(m['scrape'])} scrapes.",
            "",
            "Checked against a count of the stored resolutions: " + "; ".join(m["checks"]) + ".",
            END,
        ]
    )


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dsn", required=True)
    p.add_argument("--sla", required=True, help="the running sla's base URL")
    p.add_argument("--orders", type=int, default=10_000_000)
    p.add_argument("--questions", type=int, default=1_000)
    p.add_argument("--append", help="replace (or add) this section in this Markdown file")
    p.add_argument("--command", default="make bench")
    args = p.parse_args()
    text = section(asyncio.run(measure(args)), args)
    if args.append:
        replace_section(Path(args.append), START, END, text)
        print(f"read figures written to {args.append}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
