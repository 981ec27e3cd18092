"""The bench driver (`make bench`): starts the webhook receiver and Alertmanager, runs the
end-to-end rates for Gridline and its peer, the floors and intake alone, and writes
docs/benchmarks.md. scripts/bench.sh starts the private stack first and passes its facts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import e2e
import floor_pipeline
import floors
import intake_bench
import page
import peer
import report
import where
from procs import Meter, cpu_seconds, stack_meters
from shapely.geometry import Point, shape

from gridline.common.settings import KafkaSettings

SERVICE_CODE = "exposed-garbage"  # routed to the comprehensive grid the point falls in


def points(city: Path, out: Path, per_grid: int, seed: int = 6) -> list[tuple[str, float, float]]:
    """Random points inside every comprehensive grid (fixed seed): reports land on many
    grids, so work orders, assignees and Kafka keys differ."""
    rng = random.Random(seed)
    pts: list[tuple[str, float, float]] = []
    for f in json.loads(city.read_text())["features"]:
        if f["properties"].get("grid_kind") != "comprehensive":
            continue
        poly = shape(f["geometry"])
        minx, miny, maxx, maxy = poly.bounds
        got = 0
        while got < per_grid:
            x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
            if poly.contains(Point(x, y)):
                pts.append((SERVICE_CODE, y, x))
                got += 1
    rng.shuffle(pts)
    out.write_text("".join(f"{c} {lat:.6f} {lon:.6f}\n" for c, lat, lon in pts))
    return pts


def machine(
    loadgen_go: str, am_version: str | None, pg_version: str, kafka_version: str
) -> list[str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    mem = next(
        line
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    load = Path("/proc/loadavg").read_text().split()[:3]
    return [
        f"machine: {os.cpu_count()} cores ({cpu}), {int(mem.split()[1]) // 1024} MiB, Linux {platform.release()}, "
        f"load average at start {' '.join(load)} (the machine is shared)",
        f"software: Python {platform.python_version()}, {loadgen_go}, PostgreSQL {pg_version} (fsync on), "
        f"Kafka {kafka_version}, Alertmanager: {am_version or 'not run'}",
    ]


async def pg_version(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return str(await conn.fetchval("SHOW server_version")).split()[0]
    finally:
        await conn.close()


async def analyze(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def kafka_version(cache: Path) -> str:
    jars = sorted(cache.glob("kafka-lib/kafka-server-*.jar")) or sorted(
        cache.glob("kafka-lib/kafka_*.jar")
    )
    return jars[0].stem.rsplit("-", 1)[-1] if jars else "?"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--rates", default="100,500,1000,2000,max", help="reports/s, comma list; max = closed loop"
    )
    p.add_argument("--seconds", type=float, default=10, help="sending time per rate")
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=40,
        help="bound on the wait for notifications after sending",
    )
    p.add_argument(
        "--idle-seconds", type=float, help="idle window for the CPU baseline (default: --seconds)"
    )
    p.add_argument(
        "--warmup-seconds",
        type=float,
        default=15.0,
        help="traffic at 200/s before measuring, not reported (0: none)",
    )
    p.add_argument(
        "--skip", default="", help="comma list of e2e, peer, pipeline, floors, intake, deadlines"
    )
    p.add_argument(
        "--concurrency", type=int, default=128, help="requests in flight for the max rate"
    )
    p.add_argument(
        "--max-inflight", type=int, default=1024, help="open loop: requests waiting at once"
    )
    p.add_argument(
        "--profile-seconds",
        type=float,
        default=10,
        help="the profiled max run (py-spy, statements)",
    )
    p.add_argument("--rounds", type=int, default=3, help="intake alone: rounds per server")
    p.add_argument("--wrk-seconds", type=int, default=10)
    p.add_argument("--floor-seconds", type=float, default=5, help="bound on each floor")
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--intake", required=True)
    p.add_argument("--bare", required=True)
    p.add_argument("--receiver-port", type=int, required=True)
    p.add_argument("--alertmanager-port", type=int, required=True)
    p.add_argument("--floor-port", type=int, required=True, help="the pipeline floor's front")
    p.add_argument("--loadgen", type=Path, required=True)
    p.add_argument("--out", default="docs/benchmarks.md")
    p.add_argument("--command", default="make bench")
    args = p.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - {
        "e2e",
        "peer",
        "pipeline",
        "floors",
        "intake",
        "deadlines",
        "profile",
    }  # deadlines: its own
    if unknown:
        p.error(f"--skip: unknown {sorted(unknown)}")
    rates: list[float | None] = [
        None if r.strip() == "max" else float(r) for r in args.rates.split(",") if r.strip()
    ]
    run_dir: Path = args.run_dir
    creds = json.loads((run_dir / "credentials.json").read_text())
    database_url = os.environ["DATABASE_URL"]
    # Enough points that one comes round again only well after the catalogue's duplicate
    # window (scripts/bench.sh: 5 cm, 5 s), even when intake, saturated, accepts reports
    # bunched up: at 2,000/s a cycle of 36,000 points takes 18 s.
    pts = points(run_dir / "city.geojson", run_dir / "points.txt", per_grid=300)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    go_version = subprocess.run(
        ["/usr/local/go/bin/go", "version"], capture_output=True, text=True
    ).stdout.strip()

    receiver = e2e.Receiver(
        args.loadgen, args.receiver_port, creds["webhook_secret"], run_dir / "logs" / "receiver.log"
    )
    am = peer.Alertmanager(
        run_dir / "alertmanager",
        args.alertmanager_port,
        f"http://127.0.0.1:{args.receiver_port}/alertmanager",
    )
    pipeline = floor_pipeline.FloorPipeline(
        args.floor_port,
        f"http://127.0.0.1:{args.receiver_port}/gridline",
        creds["webhook_secret"],
        run_dir / "logs",
    )
    runs: list[e2e.Run] = []
    floor_results: list[floors.Floor] = []
    intake_result: intake_bench.IntakeVsBare | None = None
    where_lines: list[str] = []
    meters = stack_meters(run_dir)
    idle: dict[str, float] = {}
    try:
        receiver_pid = receiver.start()
        meters["receiver"] = lambda: cpu_seconds(receiver_pid)
        am_meters = {}
        if "peer" not in skip:
            am_pid = am.start()
            am_meters = {
                "alertmanager": lambda: cpu_seconds(am_pid),
                "receiver": meters["receiver"],
            }
        pipeline_meters: dict[str, Meter] = {}
        if "pipeline" not in skip and "e2e" not in skip:
            for name, pid in pipeline.start().items():
                pipeline_meters[name] = lambda pid=pid: cpu_seconds(pid)  # type: ignore[misc]
            pipeline_meters.update(kafka=meters["kafka"], postgres=meters["postgres"])
            pipeline_meters["receiver"] = meters["receiver"]
        gridline = e2e.Target(
            "gridline", "open311", f"{args.intake}/open311/v2/requests.json", ("gridline", "workorder.assigned"),
            meters, idle, {"BENCH_API_KEY": creds["open311_api_key"]},
            ["-points", str(run_dir / "points.txt"), "-max-inflight", str(args.max_inflight)],
        )  # fmt: skip
        alerts = e2e.Target(
            "alertmanager", "alertmanager", f"{am.url}/api/v2/alerts", ("alertmanager", "alert"),
            am_meters, idle, {}, ["-max-inflight", str(args.max_inflight)],
        )  # fmt: skip
        floor = e2e.Target(
            "floor", "open311", pipeline.url, ("gridline", "workorder.assigned"),
            pipeline_meters, idle, {}, ["-points", str(run_dir / "points.txt"), "-max-inflight", str(args.max_inflight)],
        )  # fmt: skip
        systems = (
            [gridline]
            + ([alerts] if "peer" not in skip else [])
            + ([floor] if pipeline_meters else [])
        )
        if "e2e" not in skip and args.warmup_seconds > 0:
            # A fresh JVM (Kafka) compiles its hot paths during the first tens of seconds
            # of traffic; that cost is no part of the steady state measured below.
            for target in systems:
                print(f"bench: warm-up, {target.system} at 200/s", flush=True)
                if target is alerts:
                    target.extra = [*target.extra[:2], "-id-prefix", "warm"]
                e2e.run(
                    target, receiver, args.loadgen, 200.0, args.warmup_seconds,
                    args.drain_timeout, run_dir / f"warmup-{target.system}.tsv", args.concurrency,
                )  # fmt: skip
            receiver.wait_quiet(quiet=2.0, limit=args.drain_timeout)
        # A stack that has run a while has planner statistics for its tables; a fresh one
        # gets them at autovacuum's first pass, a minute or more in. Without them the
        # planner scanned whole young tables for batch look-ups (docs/performance.md).
        asyncio.run(analyze(database_url))
        idle_seconds = args.idle_seconds or args.seconds
        print(f"bench: idle window, {idle_seconds:.0f} s", flush=True)
        idle.update(e2e.measure_idle({**meters, **am_meters, **pipeline_meters}, idle_seconds))
        if "e2e" not in skip:
            for i, rate in enumerate(rates):
                for target in systems:
                    if target is alerts:
                        target.extra = [*target.extra[:2], "-id-prefix", f"r{i}"]
                    print(
                        f"bench: {target.system} at {rate or 'max'}{'/s' if rate else ''}",
                        flush=True,
                    )
                    r = e2e.run(
                        target, receiver, args.loadgen, rate, args.seconds, args.drain_timeout,
                        run_dir / f"sent-{target.system}-{i}.tsv", args.concurrency,
                    )  # fmt: skip
                    print(
                        f"bench:   accepted {len(r.accepted)}, notified {len(r.notified)}, lost {r.lost}, "
                        f"p99 {r.percentile(99)} ms, CPU {r.cpu_total_ms} ms each",
                        flush=True,
                    )
                    runs.append(r)
            receiver.wait_quiet(quiet=2.0, limit=args.drain_timeout)
            e2e.settle(runs, receiver)
        if "e2e" not in skip and "profile" not in skip:
            print(f"bench: gridline at max, profiled, {args.profile_seconds:g} s", flush=True)
            asyncio.run(where.reset_counters(database_url))
            profiler = where.Profiler(run_dir)
            profiler.start(args.profile_seconds)
            profiled = e2e.run(
                gridline, receiver, args.loadgen, None, args.profile_seconds, args.drain_timeout,
                run_dir / "sent-gridline-profiled.tsv", args.concurrency,
            )  # fmt: skip
            profiles = profiler.collect(timeout=args.profile_seconds + 30)
            statements, tables = asyncio.run(where.read_counters(database_url))
            where_lines = where.section(
                args.profile_seconds, len(profiled.accepted), profiled.cpu_ms, profiles,
                profiler.problems, statements, tables,
            )  # fmt: skip
        am.stop()
        pipeline.stop()
        if "floors" not in skip:
            print("bench: floors", flush=True)
            floor_meters = {"kafka": meters["kafka"], "postgres": meters["postgres"]}

            async def all_floors() -> list[floors.Floor]:
                events = await floors.sample_events(KafkaSettings())
                result = await floors.kafka_floors(
                    KafkaSettings(), events, floor_meters, idle, 20_000, args.floor_seconds
                )
                return result + await floors.pg_floors(
                    database_url, events["report.submitted"], floor_meters, idle, args.floor_seconds
                )

            floor_results = asyncio.run(all_floors())
        if "intake" not in skip:
            print("bench: intake alone against the bare endpoint", flush=True)
            code, lat, lon = pts[0]
            form = {
                "api_key": creds["open311_api_key"], "service_code": code, "lat": str(lat), "long": str(lon),
                "description": "bench: 路边垃圾 rubbish by the road",
            }  # fmt: skip
            partner = intake_bench.register_partner(
                args.intake, creds["admin_key"], run_dir / "signed_tips.txt", code, pts
            )
            intake_result = intake_bench.intake_vs_bare(
                args.intake, args.bare, form, database_url, args.wrk_seconds, rounds=args.rounds,
                partner=partner,
            )  # fmt: skip
            print("bench: batch intake, 500 reports a request", flush=True)
            intake_result.batch = intake_bench.batch_intake(
                args.intake,
                creds["open311_api_key"],
                {"service_code": code, "lat": lat, "long": lon, "description": form["description"]},
            )
    finally:
        am.stop()
        pipeline.stop()
        receiver.stop()
    ctx = report.Context(
        command=args.command,
        commit=page.commit(),
        started=started,
        machine=machine(
            go_version,
            peer.version() if "peer" not in skip else None,
            asyncio.run(pg_version(database_url)),
            kafka_version(Path(os.environ.get("GRIDLINE_CACHE_DIR", ".run/cache"))),
        ),
        settings=[
            f"end to end: {args.seconds:g} s per rate, drain timeout {args.drain_timeout:g} s, open loop with at most "
            f"{args.max_inflight} requests waiting, `max` = closed loop with {args.concurrency} in flight; "
            f"{len(pts)} points over the demo city's comprehensive grids (service `{SERVICE_CODE}`); "
            f"before measuring, {args.warmup_seconds:g} s at 200/s for each system (not reported) so "
            "that Kafka's JVM has compiled its hot paths, then `ANALYZE` (the statistics a "
            "stack that has run a while has)",
            "services: one uvicorn process each, uvloop + httptools, default settings (notify: NOTIFY_WEBHOOK_URLS = the receiver)",
            "catalogue: the demo's, with tagging and duplicate detection on; the duplicate radius "
            "is 5 cm and the window 5 s (scripts/bench.sh), so every group commit runs the "
            "look-up while the random points, which come round again only after the window, "
            "each open their own work order; no routing rules (with them, the points coming "
            "round after 30 s are repeated complaints that a demo rule raises to the "
            "community at open: two events a report instead of one; rule evaluation is "
            "measured alone in 'Routing alone')",
        ],
        idle=idle,
        idle_seconds=args.idle_seconds or args.seconds,
    )
    text = report.render(ctx, runs, floor_results, intake_result, where_lines)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    ok = intake_result is None or intake_result.stored >= intake_result.acknowledged
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
