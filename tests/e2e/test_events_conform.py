"""Every event the stack put on Kafka, read back as an outside consumer written from
docs/asyncapi.yaml alone would read it: each message is a documented type on its channel,
its value validates against that message's payload schema, and its key is its subject
(a message a test put on a topic on purpose must be in the dead letters instead). Every
webhook the receiver got is the body docs/api.md describes around the documented event.

It runs after the other e2e tests (conftest's ordering), so the topics hold what they made:
reports, tips, every kind of move on a work order, warnings, breaches, policy versions,
partner changes and dead letters."""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from gridline.common.policy.catalogue import Catalogue

from .receiver import Receiver
from .stack import Stack, wait_until
from .test_pipeline import grid_category, grid_point

REPO = Path(__file__).resolve().parents[2]
SPEC: dict[str, Any] = yaml.safe_load((REPO / "docs" / "asyncapi.yaml").read_text("utf-8"))
DEAD_LETTERS = "gridline.deadletter"
LANGUAGES = ("zh-CN", "en")
PER_TYPE = 400  # validated messages per event type: enough variety, a bounded cost
DEAD_LETTER_HEADERS = {
    "gridline-dlq-reason",
    "gridline-dlq-topic",
    "gridline-dlq-partition",
    "gridline-dlq-offset",
    "gridline-dlq-consumer-group",
}


def channels() -> dict[str, dict[str, Any]]:
    """Topic → {CloudEvents type → the message object}, as the document lays them out."""
    messages = SPEC["components"]["messages"]
    out: dict[str, dict[str, Any]] = {}
    for channel in SPEC["channels"].values():
        named = (messages[ref["$ref"].rsplit("/", 1)[1]] for ref in channel["messages"].values())
        out[channel["address"]] = {message["name"]: message for message in named}
    return out


def validator(message: dict[str, Any]) -> jsonschema.protocols.Validator:
    # The payload's $refs point into the document's components; carry them along.
    schema = {"allOf": [message["payload"]], "components": SPEC["components"]}
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


async def read_all(topics: list[str]) -> dict[str, list[Any]]:
    """Every record now on these topics, from the first offset to the end."""
    bootstrap = os.environ.get("GRIDLINE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    parts = [
        TopicPartition(topic["topic"], p["partition"])
        for topic in described
        for p in topic["partitions"]
    ]
    assert {tp.topic for tp in parts} == set(topics), f"topics on the broker: {described}"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        records: dict[str, list[Any]] = defaultdict(list)
        pending = {tp for tp in parts if ends[tp] > 0}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=2000)
            assert batch, f"no records within 2 s; still to read: {sorted(map(str, pending))}"
            for tp, got in batch.items():
                records[tp.topic].extend(r for r in got if r.offset < ends[tp])
                if got[-1].offset + 1 >= ends[tp]:
                    pending.discard(tp)
        return records
    finally:
        await consumer.stop()


class Spec:
    """The document's messages by CloudEvents type, each checked with its payload schema."""

    def __init__(self) -> None:
        self.channels = channels()
        self.messages = {kind: m for by in self.channels.values() for kind, m in by.items()}
        self._validators: dict[str, jsonschema.protocols.Validator] = {}
        self.seen: Counter[str] = Counter()

    def problems(self, event: Any, where: str, topic: str | None = None) -> list[str]:
        """What is wrong with one event; [] when it is the documented message. Past
        PER_TYPE events of a type only the type is checked (each schema's variety shows
        well before that, and the bursts make thousands)."""
        kind = event.get("type") if isinstance(event, dict) else None
        known = self.channels[topic] if topic is not None else self.messages
        message = known.get(kind) if isinstance(kind, str) else None
        if not isinstance(kind, str) or message is None:
            on = f"a message of {topic}" if topic is not None else "a documented message"
            return [f"{where}: type {kind!r} is not {on}"]
        self.seen[kind] += 1
        return self.validate(kind, event, where) if self.seen[kind] <= PER_TYPE else []

    def validate(self, kind: str, event: Any, where: str) -> list[str]:
        if kind not in self._validators:
            self._validators[kind] = validator(self.messages[kind])
        return [
            f"{where} {kind}: {'/'.join(map(str, e.absolute_path)) or '(the event)'}: "
            f"{e.message[:300]}"
            for e in self._validators[kind].iter_errors(event)
        ]


def origin(record: Any) -> tuple[str, int, int]:
    """Where a dead letter came from, by its headers."""
    h = {name: value.decode() for name, value in record.headers}
    return h["gridline-dlq-topic"], int(h["gridline-dlq-partition"]), int(h["gridline-dlq-offset"])


def report(problems: list[str]) -> str:
    return f"{len(problems)} problems, first 20:\n" + "\n".join(problems[:20])


@pytest.fixture(scope="module")
def assigned(stack: Stack, catalogue: Catalogue, receiver: Receiver) -> str:
    """One report of this module's own, notified as assigned: run alone, the module still
    has a report, an order and a webhook to check."""
    lat, lon = grid_point(stack, stack.handler_key("grid")[0])
    with httpx.Client(timeout=10) as client:
        created = stack.post_report(
            client, service_code=grid_category(catalogue, longest=True).code, lat=lat, long=lon
        )
    assert created.status_code == 200, created.text
    request_id: str = created.json()[0]["service_request_id"]
    wait_until(lambda: receiver.for_order(request_id), what="the report's assignment webhook")
    return request_id


async def test_every_event_on_every_topic_is_the_documented_message(assigned: str) -> None:
    spec = Spec()
    records = await read_all(sorted(spec.channels))
    problems: list[str] = []
    refused: set[tuple[str, int, int]] = set()
    for record in records.pop(DEAD_LETTERS, []):
        where = f"{DEAD_LETTERS}[{record.partition}]@{record.offset}"
        if missing := DEAD_LETTER_HEADERS - {name for name, _ in record.headers}:
            problems.append(f"{where}: dead letter without headers {sorted(missing)}")
        else:
            refused.add(origin(record))
    for topic, got in records.items():
        for record in got:
            where = f"{topic}[{record.partition}]@{record.offset}"
            try:
                event = json.loads(record.value)
            except ValueError as exc:
                event, wrong = None, [f"{where}: not JSON ({exc})"]
            else:
                wrong = spec.problems(event, where, topic)
                key = record.key.decode() if record.key is not None else None
                if isinstance(event, dict) and key != event.get("subject"):
                    wrong.append(f"{where}: key {key!r} is not the subject")
            # A message the tests put there on purpose (poison) must have been dead-lettered.
            if wrong and (topic, record.partition, record.offset) not in refused:
                problems.extend(wrong)
    assert not problems, report(problems)
    # The schemas bite: a real event with a required field of its data taken away, or a
    # time that is no date-time, is refused (unresolved $refs would accept anything).
    assigned = next(
        e
        for r in records["gridline.workorders"]
        if ("gridline.workorders", r.partition, r.offset) not in refused
        and (e := json.loads(r.value))["type"] == "gridline.workorder.assigned.v1"
    )
    field = SPEC["components"]["schemas"]["WorkorderAssignedData"]["required"][0]
    broken = {**assigned, "data": {k: v for k, v in assigned["data"].items() if k != field}}
    kind = assigned["type"]
    assert not spec.validate(kind, assigned, "as read"), "the event itself is refused"
    assert spec.validate(kind, broken, "no field"), f"an assignment without {field} passed"
    assert spec.validate(kind, {**assigned, "time": "yesterday"}, "time"), "a bad time passed"
    # At least what the stack's set-up and this module's report made (the whole suite
    # before it makes every kind but a few; run alone, this is what there is to check).
    expected = {
        "gridline.report.submitted.v1",
        "gridline.workorder.assigned.v1",
        "gridline.policy.activated.v1",
        "gridline.partner.updated.v1",
    }
    assert expected <= set(spec.seen), f"types seen: {dict(spec.seen)}"


def webhook_types(spec: Spec) -> dict[str, str]:
    """The webhook's `type` by the CloudEvents type of the event it carries (docs/api.md):
    every work-order event as `workorder.<what>`, and sla's warnings as
    `workorder.warning`."""
    orders = spec.channels["gridline.workorders"]
    return {"gridline.sla.deadline_warning.v1": "workorder.warning"} | {
        kind: kind.removeprefix("gridline.").removesuffix(".v1") for kind in orders
    }


def test_every_webhook_is_the_documented_body(
    stack: Stack, receiver: Receiver, assigned: str
) -> None:
    spec = Spec()
    types = webhook_types(spec)
    deliveries = receiver.received()
    problems: list[str] = []
    for n, delivery in enumerate(deliveries):
        body, where = delivery.json, f"delivery {n} ({delivery.headers.get('webhook-id')})"
        event = body.get("event")
        problems += spec.problems(event, where)
        if not isinstance(event, dict) or event.get("type") not in types:
            continue
        if body.get("type") != types[event["type"]]:
            problems.append(f"{where}: type {body.get('type')!r} for a {event['type']}")
        if body.get("id") != delivery.headers.get("webhook-id"):
            problems.append(f"{where}: id {body.get('id')!r} is not the webhook-id header")
        if body.get("work_order_id") != event.get("subject"):
            problems.append(f"{where}: work_order_id is not the event's subject")
        message = body.get("message")
        if not (
            isinstance(message, dict)
            and all(isinstance(message.get(lang), str) and message[lang] for lang in LANGUAGES)
        ):
            problems.append(f"{where}: message {message!r} lacks a zh-CN or an en text")
        warning = body.get("type") == "workorder.warning"
        if warning != ("level" in body) or warning != ("recipients" in body):
            problems.append(f"{where}: level and recipients belong to warnings only: {body}")
    assert not problems, report(problems)
    assert "workorder.assigned" in {d.json["type"] for d in deliveries}
