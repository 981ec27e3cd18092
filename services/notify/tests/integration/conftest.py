"""What notify's integration tests share: a migrated schema, a work order's events, local
webhook receivers, and a dispatcher running in the background."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, Protocol

import pytest
from prometheus_client import CollectorRegistry

from gridline.common.consumer import Incoming
from gridline.common.events import (
    Assignment,
    WorkOrderAssigned,
    WorkOrderEscalated,
    WorkOrderEvent,
    WorkOrderResolved,
    envelope_for,
)
from gridline.common.pg import Pool, migrate, open_pool
from gridline.common.settings import PostgresSettings
from gridline.notify.adapters import webhook
from gridline.notify.dispatcher import Dispatcher
from gridline.notify.domain.attempts import RetryPolicy
from gridline.notify.handlers import Notify
from gridline.notify.metrics import NotifyMetrics

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
REF = {
    "report_id": "r",
    "category": "exposed-garbage",
    "category_name_en": "Exposed garbage",
    "category_name_zh": "暴露垃圾",
    "street_id": "s1",
    "district_id": "d1",
    "policy_version": "p",
}


def assignment(seq: int, tier: str, unit: str) -> Assignment:
    return Assignment(
        seq=seq,
        tier=tier,
        unit_id=unit,
        unit_name=unit,
        unit_level=tier,
        assigned_at=AT,
        due_at=AT,
    )


def lifecycle(order: str) -> list[WorkOrderEvent]:
    """Assigned (version 1), escalated (2), resolved (3)."""
    return [
        WorkOrderAssigned(
            work_order_id=order,
            version=1,
            **REF,
            source="citizen",
            grid_id="g1",
            community_id="c1",
            lat=31.7,
            lon=119.9,
            opened_at=AT,
            assignment=assignment(1, "grid", "g1"),
        ),
        WorkOrderEscalated(
            work_order_id=order,
            version=2,
            **REF,
            reason="whistle",
            from_tier="grid",
            from_unit_id="g1",
            assignment=assignment(2, "community", "c1"),
        ),
        WorkOrderResolved(
            work_order_id=order,
            version=3,
            **REF,
            tier="community",
            unit_id="c1",
            unit_name="c1",
            resolved_by_unit_id="c1",
            opened_at=AT,
            resolved_at=AT,
            due_at=AT,
        ),
    ]


async def store_events(pool: Pool, notify: Notify, events: list[WorkOrderEvent]) -> None:
    """As the consumer does: one call per layer, each work order at most once per call."""
    layers: list[list[Incoming[WorkOrderEvent]]] = []
    seen: dict[str, int] = {}
    for event in events:
        n = seen.get(event.work_order_id, 0)
        seen[event.work_order_id] = n + 1
        if n == len(layers):
            layers.append([])
        layers[n].append(Incoming(event, envelope_for(event, source="/test", time=AT)))
    async with pool.acquire() as conn, conn.transaction():
        for layer in layers:
            await notify.on_workorder_events(conn, layer)


@pytest.fixture
async def pool(pg_settings: PostgresSettings, scratch_schema: str) -> AsyncIterator[Pool]:
    async with open_pool(pg_settings, scratch_schema) as pool:
        await migrate(pool, scratch_schema, [resources.files("gridline.notify") / "migrations"])
        yield pool


def new_dispatcher(
    pool: Pool,
    client: webhook.Client,
    schema: str,
    subscriptions: list[str],
    **settings: Any,
) -> Dispatcher:
    """A dispatcher with the tests' usual settings; a test passes the ones it is about."""
    defaults: dict[str, Any] = {
        "secret": "s" * 16,
        "policy": RetryPolicy(max_attempts=3, backoff_base=0.1, backoff_max=0.1),
        "metrics": NotifyMetrics(CollectorRegistry()),
        "slots_per_subscription": 8,
    }
    return Dispatcher(pool, client, schema, subscriptions, **(defaults | settings))


@contextlib.asynccontextmanager
async def running(dispatcher: Dispatcher) -> AsyncIterator[None]:
    task = asyncio.create_task(dispatcher.run())
    try:
        yield
    finally:
        # Cancelled until it ends: on Python 3.11 asyncio.wait_for (in run_on_notify's
        # idle wait) swallows a cancellation that lands as its wake event is set.
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(condition: Callable[[], Any], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await _value(condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def _value(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


def acknowledge(body: dict[str, Any]) -> int:
    return 204


@dataclass
class Receiver:
    """A local webhook receiver that takes `delay` seconds to answer each notification with
    the status `answer` gives it (204 by default)."""

    delay: float
    answer: Callable[[dict[str, Any]], int] = acknowledge
    received: list[tuple[str, int, str]] = field(default_factory=list)  # (order, version, id)
    headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    connections: set[int] = field(default_factory=set)  # client ports seen
    answered: int = 0
    concurrent: int = 0
    max_concurrent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def versions(self, order: str) -> list[int]:
        with self.lock:
            return [v for o, v, _ in self.received if o == order]

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as notify's client expects

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["content-length"]))
                body = json.loads(raw)
                # A partner's callback carries the tip's fields, not the event.
                data = body["event"]["data"] if "event" in body else body
                with receiver.lock:
                    receiver.received.append(
                        (data["work_order_id"], data.get("version", 0), body["id"])
                    )
                    receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                    receiver.bodies.append(raw)
                    receiver.connections.add(self.client_address[1])
                    receiver.concurrent += 1
                    receiver.max_concurrent = max(receiver.max_concurrent, receiver.concurrent)
                time.sleep(receiver.delay)
                with receiver.lock:
                    receiver.concurrent -= 1
                    receiver.answered += 1
                status = receiver.answer(body)
                self.send_response(status)
                if status == 302:
                    self.send_header("location", "/elsewhere")
                # Any answer but a 204 has a body, which the client must read to its end
                # before the connection can carry the next POST.
                answer = b"" if status == 204 else b"thanks"
                self.send_header("content-length", str(len(answer)))
                # A client that timed out has gone: nothing to tell it.
                with contextlib.suppress(ConnectionError):
                    self.end_headers()
                    self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class Receivers(Protocol):
    def __call__(
        self, delay: float, answer: Callable[[dict[str, Any]], int] = ..., /
    ) -> Receiver: ...


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    started: list[Receiver] = []

    def start(delay: float, answer: Callable[[dict[str, Any]], int] = acknowledge) -> Receiver:
        r = Receiver(delay, answer)
        r.start()
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()
