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

from gridline.common.partners import request_signature

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


def wrk(
    url: str,
    form: str,
    seconds: int,
    connections: int,
    threads: int,
    script: str = "post_form.lua",
    env: dict[str, str] | None = None,
) -> Round:
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(HERE / script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "BENCH_FORM": form, **(env or {})},
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


@dataclass(frozen=True)
class Partner:
    """A partner registered for the benchmark (a rate limit far above what it sends)."""

    key: str
    secret: str
    tips_file: Path


def write_signed_tips(
    path: Path, secret: str, code: str, points: list[tuple[float, float]], riders: int = 1000
) -> None:
    """One signed /v1/reports request per point, as a partner's client would sign it: the
    timestamp now, so every request stays inside the replay window for a few minutes."""
    now = str(int(time.time()))
    with path.open("w") as out:
        for i, (lat, lon) in enumerate(points):
            body = (
                f'{{"service_code":"{code}","lat":{lat},"long":{lon},'
                f'"rider_id":"rider-{i % riders}","description":"bench: 井盖缺失 tip on the way"}}'
            )
            out.write(f"{now}\t{request_signature(secret, now, body.encode())}\t{body}\n")


def register_partner(
    intake: str, admin_key: str, tips_file: Path, code: str, points: list[tuple[str, float, float]]
) -> Partner:
    """A partner for the benchmark, registered as an operator would (its rate limit far
    above what the benchmark sends, so the limiter is on the path but never refuses), and
    its tip-offs signed in advance."""
    answer = httpx.post(
        f"{intake}/admin/partners",
        json={"name": f"bench-{int(time.time())}", "rate_per_s": 10_000, "burst": 100_000},
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=30,
    )
    answer.raise_for_status()
    issued = answer.json()
    write_signed_tips(tips_file, issued["secret"], code, [(lat, lon) for _, lat, lon in points])
    return Partner(issued["key"], issued["secret"], tips_file)


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
    partner: Partner | None = None,
) -> IntakeVsBare:
    """Rounds alternate between the servers so machine noise hits them alike; with a
    partner, signed tip-offs to /v1/reports take a turn too (signature check and rate
    limiter on the path)."""
    body = urlencode(form)
    intake_url = f"{intake}/open311/v2/requests.json"
    bare_url = f"{bare}/open311/v2/requests.json"
    tips_env = {"BENCH_TIPS": str(partner.tips_file), "BENCH_KEY": partner.key} if partner else {}

    def tips(duration: int) -> Round:
        return wrk(intake, "", duration, connections, threads, "signed_tips.lua", tips_env)

    wrk(intake_url, body, 3, connections, threads)  # warm-up, not counted
    wrk(bare_url, body, 3, connections, threads)
    if partner:
        tips(3)
    before = asyncio.run(stored_reports(database_url))
    result: dict[str, list[Round]] = {"intake": [], "bare": []}
    if partner:
        result["partner"] = []
    for _ in range(rounds):
        result["intake"].append(wrk(intake_url, body, seconds, connections, threads))
        result["bare"].append(wrk(bare_url, body, seconds, connections, threads))
        if partner:
            result["partner"].append(tips(seconds))
    stored = asyncio.run(stored_reports(database_url)) - before
    acknowledged = sum(
        r.requests - r.non_2xx for name in ("intake", "partner") for r in result.get(name, [])
    )
    return IntakeVsBare(result, acknowledged, stored, connections, seconds)
