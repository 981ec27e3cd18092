"""Intake alone: reports accepted durably per second and their latency, next to a bare
FastAPI endpoint (uvloop + httptools) measured in the same run with the same load
generator (wrk, closed loop), rounds alternating between the two servers.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx

HERE = Path(__file__).resolve().parent
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass
class Round:
    requests: int
    non_2xx: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def ok_per_second(self) -> float:
        return (self.requests - self.non_2xx) / self.seconds


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * UNITS[unit]


def wrk(url: str, form: str, seconds: int, connections: int, threads: int) -> Round:
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(HERE / "post_form.lua"),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "BENCH_FORM": form},
    ).stdout
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    assert total, out
    elapsed = float(total.group(2)) * {"s": 1, "ms": 1e-3, "m": 60}[total.group(3)]
    non = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p50 = re.search(r"\s50%\s+([\d.]+\w+)", out)
    p99 = re.search(r"\s99%\s+([\d.]+\w+)", out)
    assert p50 and p99, out
    return Round(
        int(total.group(1)),
        int(non.group(1)) if non else 0,
        elapsed,
        _ms(p50.group(1)),
        _ms(p99.group(1)),
    )


async def stored_reports(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM intake.requests"))
    finally:
        await conn.close()


@dataclass
class BatchIntake:
    """POST /v1/reports/batch: full batches sent one after another by one client."""

    size: int
    batches: int
    accepted: int
    seconds: float

    @property
    def reports_per_second(self) -> float:
        return self.accepted / self.seconds


def batch_intake(
    intake: str, api_key: str, report: dict[str, Any], size: int = 500, batches: int = 10
) -> BatchIntake:
    """Reports stored per second through batch intake (each batch one transaction)."""
    url = f"{intake}/v1/reports/batch"
    body = {"reports": [report] * size}
    headers = {"X-Api-Key": api_key}
    with httpx.Client(timeout=60) as client:
        client.post(url, json=body, headers=headers).raise_for_status()  # warm-up
        accepted = 0
        started = time.perf_counter()
        for _ in range(batches):
            answer = client.post(url, json=body, headers=headers)
            answer.raise_for_status()
            accepted += answer.json()["accepted"]
        seconds = time.perf_counter() - started
    return BatchIntake(size, batches, accepted, seconds)


@dataclass
class IntakeVsBare:
    rounds: dict[str, list[Round]]
    acknowledged: int
    stored: int
    connections: int
    seconds: int
    batch: BatchIntake | None = None

    def median(self, name: str, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.rounds[name])

    @property
    def ratio(self) -> float:
        return self.median("intake", "ok_per_second") / self.median("bare", "ok_per_second")


def intake_vs_bare(
    intake: str,
    bare: str,
    form: dict[str, str],
    database_url: str,
    seconds: int = 10,
    connections: int = 32,
    threads: int = 1,
    rounds: int = 3,
) -> IntakeVsBare:
    """Rounds alternate between the two servers so machine noise hits both alike."""
    body = urlencode(form)
    intake_url = f"{intake}/open311/v2/requests.json"
    bare_url = f"{bare}/open311/v2/requests.json"
    wrk(intake_url, body, 3, connections, threads)  # warm-up, not counted
    wrk(bare_url, body, 3, connections, threads)
    before = asyncio.run(stored_reports(database_url))
    result: dict[str, list[Round]] = {"intake": [], "bare": []}
    for _ in range(rounds):
        result["intake"].append(wrk(intake_url, body, seconds, connections, threads))
        result["bare"].append(wrk(bare_url, body, seconds, connections, threads))
    stored = asyncio.run(stored_reports(database_url)) - before
    acknowledged = sum(r.requests - r.non_2xx for r in result["intake"])
    return IntakeVsBare(result, acknowledged, stored, connections, seconds)
