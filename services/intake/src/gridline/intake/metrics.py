"""intake's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class IntakeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.accepted = Counter(
            "gridline_intake_reports_accepted_total",
            "Reports stored durably and acknowledged, by source.",
            ["source"],
            registry=registry,
        )
        self.rejected = Counter(
            "gridline_intake_reports_rejected_total",
            "Reports refused, by HTTP status.",
            ["code"],
            registry=registry,
        )
        self.latency = Histogram(
            "gridline_intake_submit_seconds",
            "Time to validate and durably store a report.",
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )
        self.group_commit_rows = Histogram(
            "gridline_intake_group_commit_rows",
            "Reports stored per transaction by the group commit (its _count: transactions).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=registry,
        )
