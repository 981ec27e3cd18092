"""Points exactly once on the running stack: intake is SIGKILLed while the resolutions of
many partner tips flow through it; after its restart every tip holds exactly one ledger
entry and its partner was told of the resolution under exactly one event id, with the
points.

The tips are filed with the admin key as `source=partner` and marked as a partner's
(partner_id, rider_id) in intake's table: this test is about the ledger, not the partner
front door."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections import defaultdict
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from gridline.common.events import TipStatusChanged
from gridline.common.policy.catalogue import Catalogue, Tier
from gridline.common.settings import KafkaSettings, PostgresSettings
from gridline.common.topics import TIPS

from .stack import Stack, rider_mark, wait_until
from .test_pipeline import grid_point

pytestmark = pytest.mark.e2e

COUNT = 150  # tips
PARTNER = "p-e2e-crash"


def earning_category(catalogue: Catalogue) -> Any:
    """A grid category worth points, with the longest time limit: the orders must still be
    at the grid (not escalated by the fast clock) when the grid worker resolves them."""
    at_grid = [c for c in catalogue.categories if c.entry_tier is Tier.GRID and c.points > 0]
    return max(at_grid, key=lambda c: catalogue.time_limit(c.code, Tier.GRID))


def sql(pg: PostgresSettings, query: str, *args: Any) -> list[Any]:
    async def run() -> list[Any]:
        conn = await asyncpg.connect(pg.url)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def tip_events(kafka: KafkaSettings) -> list[tuple[str, TipStatusChanged]]:
    """(event id, event) of every record on gridline.tips so far, copies included."""

    async def read() -> list[tuple[str, TipStatusChanged]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(TIPS.name, p) for p in range(TIPS.partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
            found: list[tuple[str, TipStatusChanged]] = []
            while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    for r in records:
                        envelope = json.loads(r.value)
                        found.append(
                            (envelope["id"], TipStatusChanged.model_validate(envelope["data"]))
                        )
            return found
        finally:
            await consumer.stop()

    return asyncio.run(read())


def test_sigkill_of_intake_while_tips_are_resolved_credits_each_tip_exactly_once(
    stack: Stack,
    catalogue: Catalogue,
    pg_settings: PostgresSettings,
    kafka_settings: KafkaSettings,
) -> None:
    category = earning_category(catalogue)
    grid_unit, grid_key = stack.handler_key("grid")
    lat, lon = grid_point(stack, grid_unit)
    run = uuid.uuid4().hex[:8]
    with httpx.Client(timeout=30) as client:
        filed = client.post(
            f"{stack.url('intake')}/v1/reports/batch",
            json={
                "reports": [
                    {
                        "service_code": category.code,
                        "lat": lat,
                        "long": lon,
                        "description": f"tip {run} {i}",
                        "source": "partner",
                    }
                    for i in range(COUNT)
                ]
            },
            headers={"x-api-key": stack.credentials["admin_key"]},
        )
    assert filed.status_code == 200, filed.text
    tips = [r["id"] for r in filed.json()["results"]]
    assert len(tips) == COUNT and all(tips), filed.text
    rider = rider_mark()
    riders = {tip: f"rider-{rider}-{i % 7}" for i, tip in enumerate(tips)}

    # Once intake has seen every order assigned, the reports become the partner's tips.
    wait_until(
        lambda: (
            sql(
                pg_settings,
                "SELECT count(*) AS n FROM intake.requests"
                " WHERE service_request_id = ANY($1::text[]) AND event_version >= 1",
                tips,
            )[0]["n"]
            == COUNT
        ),
        timeout=60,
        what="intake to see every tip's order assigned",
    )
    sql(
        pg_settings,
        "UPDATE intake.requests AS r SET partner_id = $1, rider_id = u.rider"
        " FROM unnest($2::text[], $3::text[]) AS u(id, rider) WHERE r.service_request_id = u.id",
        PARTNER,
        list(riders),
        list(riders.values()),
    )

    def ledger() -> list[Any]:
        return sql(
            pg_settings,
            "SELECT report_id, kind, partner_id, rider_id, points FROM intake.points_ledger"
            " WHERE report_id = ANY($1::text[])",
            tips,
        )

    async def resolve_and_kill() -> list[int]:
        done = 0
        killed = asyncio.Event()
        gate = asyncio.Semaphore(12)

        async def resolve(client: httpx.AsyncClient, tip: str) -> int:
            nonlocal done
            async with gate:
                answer = await client.post(
                    f"{stack.url('routing')}/v1/workorders/{tip}/resolve",
                    json={"note": "cleared"},
                    headers={"authorization": f"Bearer {grid_key}"},
                )
            done += 1
            if done == COUNT // 3 and not killed.is_set():
                # Mid-flow: a third resolved, intake busy applying them.
                stack.processes["intake"].kill(signal.SIGKILL)
                killed.set()
            return answer.status_code

        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(*(resolve(client, t) for t in tips))

    statuses = asyncio.run(resolve_and_kill())
    assert statuses == [200] * COUNT, statuses
    # intake is down: this is what it applied before the kill.
    print(f"tips credited before intake was killed: {len(ledger())} of {COUNT}")
    stack.start("intake")
    stack.processes["intake"].wait_ready(90)

    wait_until(lambda: len(ledger()) >= COUNT, timeout=120, what=f"ledger entries for {COUNT} tips")
    entries = ledger()
    per_tip: dict[str, list[Any]] = defaultdict(list)
    for e in entries:
        per_tip[e["report_id"]].append(e)
    assert {tip: len(per_tip[tip]) for tip in tips} == dict.fromkeys(tips, 1)
    assert {(e["kind"], e["partner_id"], e["points"]) for e in entries} == {
        ("credit", PARTNER, category.points)
    }
    assert {e["report_id"]: e["rider_id"] for e in entries} == riders

    # The partner is told of each resolution under exactly one event id (copies a relay
    # sent again after the crash carry the same id), with the points it credited.
    def resolutions() -> dict[str, dict[str, int]]:
        told: dict[str, dict[str, int]] = defaultdict(dict)
        for event_id, event in tip_events(kafka_settings):
            if event.report_id in riders and event.status == "resolved":
                assert told[event.report_id].setdefault(event_id, event.points) == event.points
        return told

    told = wait_until(
        lambda: (r := resolutions()) and len(r) == COUNT and r,
        timeout=60,
        what="a resolved TipStatusChanged for every tip on gridline.tips",
    )
    assert {tip: list(told[tip].values()) for tip in tips} == {
        tip: [category.points] for tip in tips
    }
    balances = sql(
        pg_settings,
        "SELECT rider_id, sum(points) AS balance FROM intake.points_ledger"
        " WHERE partner_id = $1 GROUP BY rider_id",
        PARTNER,
    )
    assert sum(b["balance"] for b in balances) == COUNT * category.points
