"""Builds docs/asyncapi.yaml from the event models, so the document cannot drift from code."""

from __future__ import annotations

from typing import Any

import yaml

from gridline.common.events import EVENT_TYPES, Envelope
from gridline.common.topics import ALL_TOPICS, DEADLETTER

PRODUCERS = {
    "gridline.report.submitted.v1": "intake",
    "gridline.workorder.assigned.v1": "routing",
    "gridline.workorder.escalated.v1": "routing",
    "gridline.workorder.resolved.v1": "routing",
    "gridline.workorder.reopened.v1": "routing",
    "gridline.report.feedback_given.v1": "intake",
    "gridline.sla.deadline_breached.v1": "sla",
    "gridline.policy.activated.v1": "routing",
    "gridline.partner.updated.v1": "intake",
    "gridline.tip.status_changed.v1": "intake",
    "gridline.workorder.accepted.v1": "routing",
    "gridline.workorder.returned.v1": "routing",
    "gridline.workorder.cancelled.v1": "routing",
    "gridline.workorder.closed.v1": "routing",
    "gridline.workorder.department_called_in.v1": "routing",
    "gridline.workorder.department_reported_in.v1": "routing",
    "gridline.workorder.call_escalated.v1": "routing",
    "gridline.sla.report_in_breached.v1": "sla",
    "gridline.sla.deadline_warning.v1": "sla",
}
CONSUMERS = {
    "gridline.report.submitted.v1": ["routing"],
    "gridline.workorder.assigned.v1": ["intake", "sla", "notify"],
    "gridline.workorder.escalated.v1": ["intake", "sla", "notify"],
    "gridline.workorder.resolved.v1": ["intake", "sla", "notify"],
    "gridline.workorder.reopened.v1": ["intake", "sla", "notify"],
    "gridline.report.feedback_given.v1": ["routing", "sla"],
    "gridline.sla.deadline_breached.v1": ["routing"],
    "gridline.policy.activated.v1": ["intake", "sla"],
    "gridline.partner.updated.v1": ["notify"],
    "gridline.tip.status_changed.v1": ["notify"],
    "gridline.workorder.accepted.v1": ["intake", "notify"],
    "gridline.workorder.returned.v1": ["intake", "sla", "notify"],
    "gridline.workorder.cancelled.v1": ["intake", "sla", "notify"],
    "gridline.workorder.closed.v1": ["intake", "sla", "notify"],
    "gridline.workorder.department_called_in.v1": ["intake", "sla", "notify"],
    "gridline.workorder.department_reported_in.v1": ["intake", "sla", "notify"],
    "gridline.workorder.call_escalated.v1": ["intake", "notify"],
    "gridline.sla.report_in_breached.v1": ["routing"],
    "gridline.sla.deadline_warning.v1": ["notify"],
}


def _topic_configuration(config: dict[str, str]) -> dict[str, Any]:
    """Kafka's string settings in the types the AsyncAPI Kafka binding (0.5.0) declares."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key == "cleanup.policy":
            out[key] = value.split(",")
        elif value.lstrip("-").isdigit():
            out[key] = int(value)
        else:
            out[key] = value
    return out


def _message_name(event_type: str) -> str:
    return "".join(
        part.capitalize()
        for part in event_type.removeprefix("gridline.")
        .removesuffix(".v1")
        .replace("_", ".")
        .split(".")
    )


def build() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    envelope = Envelope.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas["CloudEvent"] = envelope
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for event_type, model in EVENT_TYPES.items():
        name = _message_name(event_type)
        data_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for def_name, definition in data_schema.pop("$defs", {}).items():
            schemas[def_name] = definition
        schemas[f"{name}Data"] = data_schema
        messages[name] = {
            "name": event_type,
            "title": event_type,
            "summary": model.SUMMARY,
            "contentType": "application/cloudevents+json",
            "headers": None,
            "payload": {
                "allOf": [
                    {"$ref": "#/components/schemas/CloudEvent"},
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": event_type},
                            "subject": {
                                "type": "string",
                                "description": "The Kafka key: the work order id (or the policy kind).",
                            },
                            "data": {"$ref": f"#/components/schemas/{name}Data"},
                        },
                    },
                ]
            },
            "bindings": {
                "kafka": {
                    "bindingVersion": "0.5.0",
                    "key": {
                        "type": "string",
                        "description": "UTF-8 bytes of the event's `subject`: the work order id"
                        " (policy events: the policy kind), so one order's events share a"
                        " partition and keep their order.",
                    },
                }
            },
            "x-producer": PRODUCERS[event_type],
            "x-consumers": CONSUMERS[event_type],
        }
        del messages[name]["headers"]
        channel = channels.setdefault(
            model.TOPIC.replace(".", "-"),
            {
                "address": model.TOPIC,
                "messages": {},
                "bindings": {"kafka": {"bindingVersion": "0.5.0"}},
            },
        )
        channel["messages"][name] = {"$ref": f"#/components/messages/{name}"}
    for spec in ALL_TOPICS:
        cid = spec.name.replace(".", "-")
        if cid in channels:
            channels[cid]["bindings"]["kafka"].update(
                {
                    "partitions": spec.partitions,
                    "topicConfiguration": _topic_configuration(spec.config),
                }
            )
    dl = DEADLETTER.name.replace(".", "-")
    channels[dl] = {
        "address": DEADLETTER.name,
        "description": (
            "Messages a consumer could not parse, validate or apply. The value is the original "
            "bytes unchanged, the key the original key; headers say why and where from: "
            "gridline-dlq-reason, gridline-dlq-topic, gridline-dlq-partition, "
            "gridline-dlq-offset, gridline-dlq-consumer-group."
        ),
        "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
        "bindings": {"kafka": {"bindingVersion": "0.5.0", "partitions": DEADLETTER.partitions}},
    }
    messages["DeadLetter"] = {
        "name": "dead-letter",
        "summary": "The original message, unchanged, with the reason in headers.",
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "properties": {
                h: {"type": "string"}
                for h in (
                    "gridline-dlq-reason",
                    "gridline-dlq-topic",
                    "gridline-dlq-partition",
                    "gridline-dlq-offset",
                    "gridline-dlq-consumer-group",
                )
            },
        },
        "payload": {"type": "string", "format": "binary"},
    }
    for cid, channel in channels.items():
        for mname in channel["messages"]:
            operations[f"send{mname}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{cid}"},
                "messages": [{"$ref": f"#/channels/{cid}/messages/{mname}"}],
            }
    return {
        "asyncapi": "3.1.0",
        "info": {
            "title": "Gridline events",
            "version": "1.0.0",
            "description": (
                "Every event is a CloudEvents 1.0 structured-mode JSON message. Keys: the work "
                "order id, so one order's events stay in order on one partition. The `id` of an "
                "event never changes on redelivery; consumers skip ids they already processed. "
                "Payload types carry a version suffix (.v1); a breaking change gets a new type. "
                "This file is generated: `gridline docs asyncapi --out docs/asyncapi.yaml`."
            ),
        },
        "defaultContentType": "application/cloudevents+json",
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "The single-node KRaft broker that `make up` starts.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def asyncapi_yaml() -> str:
    header = "# Generated from libs/common/src/gridline/common/events.py; do not edit by hand.\n"
    return header + yaml.safe_dump(build(), sort_keys=False, allow_unicode=True, width=100)
