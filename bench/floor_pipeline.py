"""The pipeline floor: the least any implementation of Gridline's fixed architecture can do
for one report, built from the same blocks, measured end to end beside Gridline and
Alertmanager in the same run.

Three Python processes (uvloop; the front under uvicorn with httptools), like three of the
four services, and nothing but the hops every report must take:

  front   form POST parsed (no validation) → group commit: every report queued while the
          previous commit ran goes into one INSERT … unnest (one round trip, fsync) → 200
          with the id → produced to Kafka (idempotent, acks=all) after the commit;
  route   one poll (no linger) → one INSERT of the polled orders → produced (acks=all)
          → offsets committed once a second;
  notify  one poll → one INSERT of the deliveries → each POSTed, signed like notify's
          webhooks, over one keep-alive pool of 64 connections.

Left out, because a correct service needs them and a floor must not: validation, tagging,
duplicate look-ups, the outbox (the front and route produce straight after their commit,
so a crash between the two loses the event: this is a lower bound, not an alternative),
the inbox (a redelivered event is applied twice), sla, intake's status consumer,
delivery outcomes and retries, events in CloudEvents envelopes (the floor's are ~200 B
JSON). Each hop batches whatever has arrived and never waits for more (no linger), so
its latency at any rate, and its CPU per report and rate when saturated (full batches),
are what Gridline cannot beat on the machine of the run: a latency or rate target the
floor itself misses is out of reach of this architecture there. At a fixed rate below
saturation its CPU per report is that of the batch sizes the rate brings; waiting for
fuller batches (Gridline's lingers) lowers it at the price of latency.

Started and stopped by bench/run.py (by pid); `python bench/floor_pipeline.py ROLE` runs
one role with DATABASE_URL, GRIDLINE_KAFKA_BOOTSTRAP, FLOOR_PORT (front),
FLOOR_WEBHOOK_URL and BENCH_WEBHOOK_SECRET (notify) from the environment.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import asyncpg
import uvloop
from aiokafka import AIOKafkaConsumer

from gridline.common.kafka import ensure_topics, open_producer
from gridline.common.settings import KafkaSettings
from gridline.common.topics import TopicSpec

REPORTS = TopicSpec("bench.floor.reports")
ASSIGNED = TopicSpec("bench.floor.assigned")
SCHEMA = """
DROP SCHEMA IF EXISTS bench_floor CASCADE;
CREATE SCHEMA bench_floor;
CREATE TABLE bench_floor.reports (id uuid PRIMARY KEY, service_code text NOT NULL,
  lat float8 NOT NULL, lon float8 NOT NULL, description text NOT NULL);
CREATE TABLE bench_floor.orders (id uuid PRIMARY KEY, service_code text NOT NULL);
CREATE TABLE bench_floor.deliveries (id uuid PRIMARY KEY, order_id uuid NOT NULL);
"""
ROLES = ("front", "route", "notify")


# --- front: form POST → group commit → answer → produce ----------------------------------


class Front:
    """A raw ASGI app: the cheapest HTTP layer uvicorn offers, so the floor is a floor."""

    def __init__(self) -> None:
        self.queue: list[tuple[str, dict[str, str], asyncio.Future[None]]] = []
        self.wake = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]], send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:  # fmt: skip
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.tasks.append(asyncio.create_task(self.committer()))
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    for t in self.tasks:
                        t.cancel()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        form = dict(parse_qsl(body.decode()))
        if scope["method"] != "POST" or not {"service_code", "lat", "long"} <= form.keys():
            await _answer(send, 400, b'{"error":"service_code, lat and long are required"}')
            return
        rid = str(uuid.uuid4())
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queue.append((rid, form, done))
        self.wake.set()
        try:
            await done
        except Exception:
            await _answer(send, 503, b'{"error":"not stored"}')
            return
        await _answer(send, 200, b'[{"service_request_id":"%s"}]' % rid.encode())

    async def committer(self) -> None:
        pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=1, max_size=1)
        async with open_producer(KafkaSettings(), "bench-floor-front") as producer:
            while True:
                await self.wake.wait()
                self.wake.clear()
                batch, self.queue = self.queue, []
                if not batch:
                    continue
                try:
                    await pool.execute(
                        "INSERT INTO bench_floor.reports SELECT * FROM unnest("
                        "$1::uuid[], $2::text[], $3::float8[], $4::float8[], $5::text[])",
                        [r for r, _, _ in batch],
                        [f["service_code"] for _, f, _ in batch],
                        [float(f["lat"]) for _, f, _ in batch],
                        [float(f["long"]) for _, f, _ in batch],
                        [f.get("description", "") for _, f, _ in batch],
                    )
                except Exception as exc:  # every request in the batch gets a 503
                    for _, _, done in batch:
                        done.set_exception(exc)
                    continue
                for _, _, done in batch:
                    done.set_result(None)
                for rid, f, _ in batch:
                    value = json.dumps({"id": rid, "service_code": f["service_code"]}).encode()
                    await producer.send(REPORTS.name, value, key=rid.encode())


async def _answer(send: Callable[[dict[str, Any]], Awaitable[None]], status: int, body: bytes) -> None:  # fmt: skip
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --- route and notify: poll → one INSERT → produce / POST ----------------------------------


async def consume(topic: str, group: str, apply: Callable[[list[dict[str, str]]], Awaitable[None]]) -> None:  # fmt: skip
    settings = KafkaSettings()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        fetch_max_bytes=settings.fetch_max_bytes,
    )
    await consumer.start()
    committed = time.monotonic()
    try:
        while True:
            polled = await consumer.getmany(timeout_ms=1000, max_records=settings.max_poll_records)
            events = [json.loads(r.value) for rs in polled.values() for r in rs if r.value]
            if events:
                await apply(events)
            if time.monotonic() - committed >= settings.commit_interval_ms / 1000:
                await consumer.commit()
                committed = time.monotonic()
    finally:
        await consumer.stop()


async def route() -> None:
    pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=1, max_size=1)
    async with open_producer(KafkaSettings(), "bench-floor-route") as producer:

        async def apply(reports: list[dict[str, str]]) -> None:
            await pool.execute(
                "INSERT INTO bench_floor.orders SELECT * FROM unnest($1::uuid[], $2::text[])",
                [r["id"] for r in reports],
                [r["service_code"] for r in reports],
            )
            sent = []
            for r in reports:  # an order's id is its report's, as in Gridline
                value = json.dumps({"type": "workorder.assigned", "work_order_id": r["id"]})
                sent.append(
                    await producer.send(ASSIGNED.name, value.encode(), key=r["id"].encode())
                )
            await asyncio.gather(*sent)

        await consume(REPORTS.name, "bench-floor-route", apply)


async def notify() -> None:
    pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=1, max_size=1)
    url, secret = os.environ["FLOOR_WEBHOOK_URL"], os.environ["BENCH_WEBHOOK_SECRET"].encode()
    slots = asyncio.Semaphore(64)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=64), timeout=aiohttp.ClientTimeout(total=10)
    ) as http:

        async def post(delivery: str, body: bytes) -> None:
            async with slots:
                ts = str(int(time.time()))
                mac = hmac.new(secret, f"{delivery}.{ts}.".encode() + body, hashlib.sha256)
                headers = {
                    "content-type": "application/json",
                    "webhook-id": delivery,
                    "webhook-timestamp": ts,
                    "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode(),
                }
                async with http.post(url, data=body, headers=headers) as answer:
                    await answer.read()

        async def apply(orders: list[dict[str, str]]) -> None:
            ids = [str(uuid.uuid4()) for _ in orders]
            await pool.execute(
                "INSERT INTO bench_floor.deliveries SELECT * FROM unnest($1::uuid[], $2::uuid[])",
                ids,
                [o["work_order_id"] for o in orders],
            )
            for delivery, o in zip(ids, orders, strict=True):
                asyncio.get_running_loop().create_task(post(delivery, json.dumps(o).encode()))

        await consume(ASSIGNED.name, "bench-floor-notify", apply)


def serve(role: str) -> None:
    if role == "front":
        import uvicorn

        uvicorn.run(
            Front(), host="127.0.0.1", port=int(os.environ["FLOOR_PORT"]), loop="uvloop",
            http="httptools", access_log=False, log_level="warning", lifespan="on",
        )  # fmt: skip
    else:
        uvloop.run(route() if role == "route" else notify())


# --- the bench's side: set up, start and stop the three processes -------------------------


class FloorPipeline:
    def __init__(self, port: int, webhook: str, secret: str, logs: Path) -> None:
        self.port, self.webhook, self.secret, self.logs = port, webhook, secret, logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/open311/v2/requests.json"

    def start(self) -> dict[str, int]:
        """Fresh tables and topics, then the three processes; their pids by meter name."""

        async def setup() -> None:
            conn = await asyncpg.connect(os.environ["DATABASE_URL"])
            try:
                await conn.execute(SCHEMA)
            finally:
                await conn.close()
            await ensure_topics(KafkaSettings(), [REPORTS, ASSIGNED])

        asyncio.run(setup())
        env = {
            **os.environ,
            "FLOOR_PORT": str(self.port),
            "FLOOR_WEBHOOK_URL": self.webhook,
            "BENCH_WEBHOOK_SECRET": self.secret,
        }
        for role in ROLES:
            with open(self.logs / f"floor-{role}.log", "ab") as log:
                self.procs[role] = subprocess.Popen(
                    [sys.executable, __file__, role],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
        deadline = time.monotonic() + 30
        while True:
            for role, proc in self.procs.items():
                if proc.poll() is not None:
                    raise SystemExit(f"bench: floor {role} exited; see {self.logs}")
            try:  # a GET is refused with 400: the front answers
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=1)
            except urllib.error.HTTPError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("bench: the floor's front did not start") from None
                time.sleep(0.2)
        return {f"floor {role}": p.pid for role, p in self.procs.items()}

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ROLES:
        raise SystemExit(f"usage: {sys.argv[0]} {'|'.join(ROLES)}")
    serve(sys.argv[1])
