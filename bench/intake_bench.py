"""Intake throughput: reports accepted durably per second and their latency, next to a bare
FastAPI endpoint measured in the same run with the same client.

Run by `make bench`, which starts a private Kafka and PostgreSQL and the services first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass
class Result:
    name: str
    requests: int
    ok: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def load(url: str, form: dict[str, str], total: int, concurrency: int) -> Result:
    latencies: list[float] = []
    ok = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def worker() -> None:
            nonlocal ok
            while True:
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                response = await client.post(url, data=form)
                latencies.append(time.perf_counter() - started)
                if response.status_code == 200:
                    ok += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return Result(url, total, ok, seconds, latencies)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--intake", required=True, help="base URL of intake")
    p.add_argument("--bare", required=True, help="base URL of the bare FastAPI app")
    p.add_argument("--api-key", required=True)
    p.add_argument("--service-code", required=True)
    p.add_argument("--lat", type=float, required=True)
    p.add_argument("--lon", type=float, required=True)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default="docs/benchmarks.md")
    p.add_argument("--command", default="make bench")
    args = p.parse_args()
    form = {
        "api_key": args.api_key,
        "service_code": args.service_code,
        "lat": str(args.lat),
        "long": str(args.lon),
        "description": "bench: exposed garbage by the road 路边垃圾",
    }

    async def run() -> dict[str, list[Result]]:
        results: dict[str, list[Result]] = {"intake": [], "bare": []}
        # Warm both up, then alternate rounds so machine noise hits both alike.
        await load(f"{args.intake}/open311/v2/requests.json", form, 200, args.concurrency)
        await load(f"{args.bare}/open311/v2/requests.json", form, 200, args.concurrency)
        for _ in range(args.rounds):
            results["intake"].append(
                await load(
                    f"{args.intake}/open311/v2/requests.json", form, args.requests, args.concurrency
                )
            )
            results["bare"].append(
                await load(
                    f"{args.bare}/open311/v2/requests.json", form, args.requests, args.concurrency
                )
            )
        return results

    results = asyncio.run(run())

    def med(name: str, f: object) -> float:
        return statistics.median(f(r) for r in results[name])  # type: ignore[operator]

    rows = []
    for name, label in (
        (
            "intake",
            "intake `POST /open311/v2/requests.json` (validated, stored with its outbox event, committed)",
        ),
        ("bare", "bare FastAPI endpoint (form parse, JSON answer, nothing stored)"),
    ):
        failures = sum(r.requests - r.ok for r in results[name])
        rows.append(
            (
                label,
                med(name, lambda r: r.rate),
                med(name, lambda r: r.pct(0.5)),
                med(name, lambda r: r.pct(0.99)),
                failures,
            )
        )
    ratio = rows[0][1] / rows[1][1]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    lines = [
        "# Benchmarks",
        "",
        "Figures below are written by the command shown; rerun it to reproduce them. The machine is",
        "shared and noisy, so each figure is the median of several rounds, and intake is compared",
        "with a bare FastAPI endpoint measured in the same run, rounds alternating.",
        "",
        "## Intake throughput",
        "",
        f"- command: `{args.command}`",
        f"- when: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, commit `{commit}`",
        f"- machine: {os.cpu_count()} cores, Python {platform.python_version()}, one uvicorn worker per server,"
        f" client on the same machine ({args.concurrency} concurrent connections, {args.requests} requests a round, {args.rounds} rounds)",
        "- PostgreSQL with fsync on (each accepted report is a committed transaction); Kafka single-node KRaft",
        "",
        "| endpoint | reports/s (median) | p50 ms | p99 ms | failed requests |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {label} | {rate:.0f} | {p50:.1f} | {p99:.1f} | {fail} |"
        for label, rate, p50, p99, fail in rows
    ]
    lines += [
        "",
        f"Intake accepts reports durably at **{ratio:.2f}x** the rate of the bare endpoint in this run.",
        "",
        "Raw rounds (reports/s): "
        + "; ".join(
            f"{name}: " + ", ".join(f"{r.rate:.0f}" for r in results[name])
            for name in ("intake", "bare")
        ),
        "",
    ]
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    json.dump({k: [r.rate for r in v] for k, v in results.items()}, sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
