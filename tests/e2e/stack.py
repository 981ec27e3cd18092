"""The running stack for e2e tests: the four services as real processes on test ports."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from gridline.common.partners import request_signature
from gridline.devstack.services import ServiceProcess
from gridline.operator.cli import main as gridline

SERVICES = ("intake", "routing", "sla", "notify")
BASE_PORT = int(os.environ.get("GRIDLINE_E2E_BASE_PORT", "18000"))


@dataclass
class Stack:
    workdir: Path
    env: dict[str, str]
    credentials: dict[str, Any]
    city: dict[str, Any]
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{BASE_PORT + SERVICES.index(service)}"

    def start(self, service: str) -> None:
        process = ServiceProcess(
            service,
            BASE_PORT + SERVICES.index(service),
            env=self.env,
            log_path=self.workdir / f"{service}.log",
        )
        process.start()
        self.processes[service] = process

    def wait_ready(self, timeout: float = 90) -> None:
        for process in self.processes.values():
            process.wait_ready(timeout)

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop(timeout=10)

    def load_policy(self, catalogue: Path) -> None:
        os.environ["GRIDLINE_ROUTING_URL"] = self.url("routing")
        creds = str(self.workdir / "credentials.json")
        city = str(self.workdir / "city.geojson")
        assert gridline(["jurisdiction", "load", city, "--credentials", creds]) == 0
        assert gridline(["catalogue", "load", str(catalogue), "--credentials", creds]) == 0
        assert gridline(["handler-keys", "load", "--credentials", creds]) == 0

    def register_demo_partner(self) -> None:
        """What make up does once intake is up: the demo partner's id, key and signing
        secret into the credentials file."""
        os.environ["GRIDLINE_INTAKE_URL"] = self.url("intake")
        creds = self.workdir / "credentials.json"
        assert gridline(["partners", "demo", "--credentials", str(creds)]) == 0
        self.credentials = json.loads(creds.read_text())

    # -- clients -----------------------------------------------------------------------

    def partner_headers(
        self, body: bytes = b"", key: str | None = None, secret: str | None = None
    ) -> dict[str, str]:
        """A partner's signed request's headers (docs/api.md "Partners"); the demo partner's
        by default."""
        timestamp = str(int(time.time()))
        return {
            "X-Api-Key": key or self.credentials["partner_key"],
            "X-Gridline-Timestamp": timestamp,
            "X-Gridline-Signature": request_signature(
                secret or self.credentials["partner_secret"], timestamp, body
            ),
            "Content-Type": "application/json",
        }

    def post_report(self, client: httpx.Client, **form: Any) -> httpx.Response:
        data = {"api_key": self.credentials["open311_api_key"], **form}
        return client.post(f"{self.url('intake')}/open311/v2/requests.json", data=data)

    def request(self, client: httpx.Client, request_id: str) -> dict[str, Any]:
        response = client.get(f"{self.url('intake')}/open311/v2/requests/{request_id}.json")
        assert response.status_code == 200, response.text
        body: list[dict[str, Any]] = response.json()
        return body[0]

    def handler_key(self, level: str) -> tuple[str, str]:
        unit = self.credentials["handler_units"][level]
        return unit, self.credentials["handlers"][unit]

    def issue_handler_keys(self, client: httpx.Client, units: list[str]) -> dict[str, str]:
        """New handler keys bound to `units` (the admin's PUT /admin/handler-keys)."""
        keys = {unit: secrets.token_urlsafe(24) for unit in units}
        body = {
            "keys": [
                {"unit_id": u, "key_sha256": hashlib.sha256(k.encode()).hexdigest()}
                for u, k in keys.items()
            ]
        }
        bound = client.put(
            f"{self.url('routing')}/admin/handler-keys",
            json=body,
            headers={"authorization": f"Bearer {self.credentials['admin_key']}"},
        )
        assert bound.status_code == 200, bound.text
        return keys

    def metric(self, client: httpx.Client, service: str, name: str, **labels: str) -> float | None:
        text = client.get(f"{self.url(service)}/metrics").text
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        return None


# Set by the stack fixture: what the pipeline looks like, added to a wait's timeout so that
# a failure in CI, where only the test output survives, says which hop stood still.
diagnose: Callable[[], str] | None = None


def pipeline_state(stack: Stack) -> str:
    """Each service's readiness, consumer lag, relay state, dead letters and notify's
    dispatcher counts, then the last warnings and errors of its log."""
    wanted = (
        "gridline_consumer_lag",
        "gridline_outbox_backlog",
        "gridline_outbox_relay_stalled_seconds",
        "gridline_outbox_relay_failures_total",
        # notify's dispatcher: claims that stop, or claimed rows never recorded, show here.
        "gridline_notify_claims_total",
        "gridline_notify_claimed_total",
        "gridline_notify_recordings_total",
        "gridline_notify_delivered_total",
    )
    lines = ["pipeline state:"]
    with httpx.Client(timeout=3) as client:
        for service in SERVICES:
            try:
                ready = client.get(f"{stack.url(service)}/readyz").status_code
                text = client.get(f"{stack.url(service)}/metrics").text
            except httpx.HTTPError as exc:
                lines.append(f"  {service}: unreachable ({exc!r})")
                continue
            totals: dict[str, float] = {}
            for line in text.splitlines():
                name = line.split("{", 1)[0].split(" ", 1)[0]
                if name in wanted or (
                    name == "gridline_consumer_events_total" and "deadletter" in line
                ):
                    key = name
                    if name == "gridline_consumer_lag":
                        key += (
                            "{" + ",".join(re.findall(r'(?:group|partition)="[^"]*"', line)) + "}"
                        )
                    totals[key] = totals.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
            shown = ", ".join(f"{k}={v:g}" for k, v in sorted(totals.items()) if v)
            lines.append(f"  {service}: readyz {ready}; {shown or 'no lag, no backlog'}")
    lines.extend(f"  {line}" for line in asyncio.run(group_offsets()))
    for service in SERVICES:
        log_path = stack.workdir / f"{service}.log"
        if not log_path.exists():
            continue
        tail = [
            line[:300]
            for line in log_path.read_text(errors="replace").splitlines()
            if '"level": "warning"' in line or '"level": "error"' in line
        ][-6:]
        lines.extend(f"  {service} log: {line}" for line in tail)
    return "\n".join(lines)


async def group_offsets() -> list[str]:
    """What the broker itself says: per consumer group, the partitions whose committed offset
    is behind the log end (a group that stopped consuming shows here even when its own lag
    gauge, fed by its fetches, stopped moving too)."""
    bootstrap = os.environ.get("GRIDLINE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    await admin.start()
    await consumer.start()
    try:
        out = []
        for group, _ in sorted(await admin.list_consumer_groups()):
            committed = await admin.list_consumer_group_offsets(group)
            ends = await consumer.end_offsets(list(committed))
            behind = {
                f"{tp.topic}[{tp.partition}]": ends[tp] - meta.offset
                for tp, meta in sorted(committed.items())
                if ends[tp] > meta.offset
            }
            out.append(f"group {group}: committed offsets behind the log end: {behind or 'none'}")
        return out
    finally:
        await consumer.stop()
        await admin.close()


def rider_mark() -> str:
    """Eight random letters for a test's rider ids: a random hex mark holds seven digits in
    a row about one time in twenty, and intake rightly refuses such a rider id as a phone
    number."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(8))


def wait_until(
    predicate: Any, timeout: float = 30, interval: float = 0.25, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    state = ""
    if diagnose is not None:
        try:
            state = "\n" + diagnose()
        except Exception as exc:  # the diagnosis must not hide the timeout
            state = f"\n(no pipeline state: {exc!r})"
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what}; last value: {last!r}{state}"
    )


async def await_until(predicate: Any, within: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out after {within}s waiting for {what}")


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False))


def work_orders_per_report(database_url: str, report_ids: list[str]) -> dict[str, int]:
    """How many work orders routing holds for each report (read straight from its table)."""

    async def count() -> dict[str, int]:
        conn = await asyncpg.connect(database_url)
        try:
            rows = await conn.fetch(
                "SELECT report_id, count(*) AS n FROM routing.work_orders"
                " WHERE report_id = ANY($1::text[]) GROUP BY report_id",
                report_ids,
            )
            return {r["report_id"]: r["n"] for r in rows}
        finally:
            await conn.close()

    return asyncio.run(count())
