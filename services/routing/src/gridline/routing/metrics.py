"""Routing's own Prometheus metrics (the contract's SLA metrics live in the sla service)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter

from gridline.common.events import WorkOrderEscalated


class RoutingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.opened = Counter(
            "gridline_routing_workorders_opened_total",
            "Work orders opened by this routing process, by initial state (open, triage).",
            ["state"],
            registry=registry,
        )
        self.merged = Counter(
            "gridline_routing_reports_merged_total",
            "Duplicate reports recorded on an open work order instead of opening one (并单).",
            registry=registry,
        )
        self.escalated = Counter(
            "gridline_routing_escalations_total",
            "Escalations decided by this routing process.",
            ["from_tier", "to_tier", "reason"],
            registry=registry,
        )
        self.resolved = Counter(
            "gridline_routing_resolutions_total",
            "Resolutions accepted by this routing process, by tier.",
            ["tier"],
            registry=registry,
        )

        self.reopened = Counter(
            "gridline_routing_reopened_total",
            "Work orders reopened by this routing process after a reporter's rejection.",
            registry=registry,
        )

    def count_escalations(self, events: Iterable[WorkOrderEscalated]) -> None:
        for event in events:
            self.escalated.labels(event.from_tier, event.assignment.tier, event.reason).inc()
