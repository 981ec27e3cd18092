"""The notify service as deployed (its bootstrap, consumer and dispatcher) against the real
Kafka and PostgreSQL: tips and partners produced to their topics, a tip's status consumed
before its partner and once more redelivered, reach the partner once each, signed."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from gridline.common.events import Envelope
from gridline.common.kafka import open_producer
from gridline.common.partners import signing_secret
from gridline.common.settings import KafkaSettings
from gridline.notify.bootstrap import bootstrap
from gridline.notify.config import NotifySettings

from .conftest import Receivers, until
from .test_partner_callbacks import AT, KEY, partner, partner_verifies, tips

pytestmark = pytest.mark.integration


async def test_the_service_calls_a_partner_back_from_its_topics(
    kafka_settings: KafkaSettings,
    stack_topics: None,
    receivers: Receivers,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver = receivers(0.0)
    pid = f"p-{unique}"
    statuses = tips(pid, f"wo-{unique}")
    updated = partner(pid, receiver.url, [1])

    def message(envelope: Envelope) -> bytes:
        return envelope.model_dump_json().encode()

    async with open_producer(kafka_settings, client_id="test") as producer:
        for incoming in statuses:  # before the partner is known: parked, then sent
            key = incoming.data.key().encode()
            await producer.send(incoming.data.TOPIC, message(incoming.envelope), key=key)
        await producer.send(  # the first status once more: a redelivery
            statuses[0].data.TOPIC,
            message(statuses[0].envelope),
            key=statuses[0].data.key().encode(),
        )
        older = partner(pid, None, [1], at=AT - timedelta(days=1))  # out of order: ignored
        for incoming in (updated, older):
            key = incoming.data.key().encode()
            await producer.send_and_wait(incoming.data.TOPIC, message(incoming.envelope), key=key)

    monkeypatch.setenv("GRIDLINE_PARTNER_SECRET_KEY", KEY)
    monkeypatch.setenv("NOTIFY_BACKOFF_BASE", "0.1")
    async with bootstrap(NotifySettings()):
        await until(lambda: len(receiver.bodies) >= 3, 60, "the partner's three callbacks")
        await asyncio.sleep(1.0)  # time for a second delivery, were there one
    with receiver.lock:
        sent = list(zip(receiver.headers, receiver.bodies, strict=True))
    bodies = [json.loads(raw) for _, raw in sent]
    assert [b["status"] for b in bodies] == ["assigned", "escalated", "resolved"]
    secret = signing_secret(KEY, pid, 1)
    assert all(partner_verifies(secret, headers, raw) for headers, raw in sent)
