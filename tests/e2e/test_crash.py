"""SIGKILL any one service during traffic: no accepted report lost, no duplicate work order,
no second notification id for an event."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import defaultdict

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from gridline.common.kafka import DEADLETTER_TOPIC
from gridline.common.policy.catalogue import Catalogue
from gridline.common.settings import KafkaSettings, PostgresSettings

from .receiver import Receiver
from .stack import SERVICES, Stack, wait_until, work_orders_per_report
from .test_pipeline import grid_category, grid_point

pytestmark = pytest.mark.e2e

REPORTS = 45


@pytest.mark.parametrize("victim", SERVICES)
def test_sigkill_during_traffic_loses_nothing_and_duplicates_nothing(
    stack: Stack,
    catalogue: Catalogue,
    receiver: Receiver,
    pg_settings: PostgresSettings,
    victim: str,
) -> None:
    grid_unit, _ = stack.handler_key("grid")
    lat, lon = grid_point(stack, grid_unit)
    code = grid_category(catalogue, longest=True).code
    accepted: list[str] = []
    with httpx.Client(timeout=10) as client:
        for i in range(REPORTS):
            if i == REPORTS // 3:
                stack.processes[victim].kill(signal.SIGKILL)
            if i == 2 * REPORTS // 3:
                stack.start(victim)
                stack.processes[victim].wait_ready(90)
            try:
                response = stack.post_report(
                    client, service_code=code, lat=lat, long=lon, description=f"crash {victim} {i}"
                )
            except httpx.TransportError:
                continue  # intake is down: nothing was acknowledged, nothing is owed
            if response.status_code == 200:
                accepted.append(response.json()[0]["service_request_id"])
        assert len(accepted) >= REPORTS // 2, "too few reports were accepted to prove anything"

        # Every acknowledged report reaches its grid, as intake's public view shows.
        wait_until(
            lambda: all(stack.request(client, rid)["expected_datetime"] for rid in accepted),
            timeout=90,
            what=f"all {len(accepted)} accepted reports to be assigned after killing {victim}",
        )

    # Exactly one work order for every accepted report.
    assert work_orders_per_report(pg_settings.url, accepted) == dict.fromkeys(accepted, 1)

    # One assigned notification id per order, however often it was (re)delivered.
    def assigned_ids() -> dict[str, set[str]]:
        ids: dict[str, set[str]] = defaultdict(set)
        for rid in accepted:
            for d in receiver.for_order(rid):
                if d.json["type"] == "workorder.assigned":
                    ids[rid].add(d.headers["webhook-id"])
        return ids

    ids = wait_until(
        lambda: (i := assigned_ids()) and len(i) == len(accepted) and i,
        timeout=60,
        what="an assigned notification for every order",
    )
    assert all(len(v) == 1 for v in ids.values()), {k: v for k, v in ids.items() if len(v) != 1}


def test_malformed_message_is_dead_lettered_and_the_consumer_goes_on(
    stack: Stack, catalogue: Catalogue, kafka_settings: KafkaSettings
) -> None:
    marker = f"garbage-{uuid.uuid4().hex[:8]}".encode()
    grid_unit, _ = stack.handler_key("grid")
    lat, lon = grid_point(stack, grid_unit)

    async def put_garbage() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(
                "gridline.reports", value=b"\x00not a cloud event", key=marker
            )
        finally:
            await producer.stop()

    asyncio.run(put_garbage())
    with httpx.Client(timeout=10) as client:
        rid = stack.post_report(
            client, service_code=catalogue.categories[0].code, lat=lat, long=lon
        ).json()[0]["service_request_id"]
        wait_until(
            lambda: stack.request(client, rid)["expected_datetime"],
            what="the next report to be routed",
        )

    async def find_letter() -> dict[str, bytes] | None:
        consumer = AIOKafkaConsumer(
            DEADLETTER_TOPIC,
            bootstrap_servers=kafka_settings.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            end = await consumer.end_offsets(list(consumer.assignment()) or [])
            for _ in range(40):
                batch = await consumer.getmany(timeout_ms=250)
                for records in batch.values():
                    for r in records:
                        if r.key == marker:
                            return dict(r.headers)
                if end and all((await consumer.position(tp)) >= off for tp, off in end.items()):
                    break
            return None
        finally:
            await consumer.stop()

    headers = wait_until(lambda: asyncio.run(find_letter()), timeout=30, what="the dead letter")
    assert headers["gridline-dlq-consumer-group"] == b"routing"
    assert headers["gridline-dlq-topic"] == b"gridline.reports"
    assert b"not a valid CloudEvent" in headers["gridline-dlq-reason"]
