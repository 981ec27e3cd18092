"""The Kafka topics of the stack, created explicitly (the broker auto-creates none)."""

from __future__ import annotations

from dataclasses import dataclass, field

# Every event is keyed by its work order id, so one order's events land on one partition
# and are consumed in the order they were produced. Six partitions let up to six
# consumers of one group share a topic.
DEFAULT_PARTITIONS = 6


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = DEFAULT_PARTITIONS
    config: dict[str, str] = field(default_factory=dict)


REPORTS = TopicSpec("gridline.reports")
WORKORDERS = TopicSpec("gridline.workorders")
SLA = TopicSpec("gridline.sla")
# One partition, compacted: the latest jurisdiction and catalogue per key stay forever.
POLICY = TopicSpec(
    "gridline.policy",
    partitions=1,
    config={"cleanup.policy": "compact", "max.message.bytes": "16777216"},
)
# Partners' registrations (callback URL, secret version, active), compacted per partner.
PARTNERS = TopicSpec("gridline.partners", partitions=1, config={"cleanup.policy": "compact"})
# Status changes of partners' tips, keyed by work order like the orders' own events.
TIPS = TopicSpec("gridline.tips")
DEADLETTER = TopicSpec("gridline.deadletter", partitions=1, config={"retention.ms": "-1"})

ALL_TOPICS: tuple[TopicSpec, ...] = (REPORTS, WORKORDERS, SLA, POLICY, PARTNERS, TIPS, DEADLETTER)
