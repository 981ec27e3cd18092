"""intake's Prometheus metrics."""

from __future__ import annotations

from typing import Any

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
        # Labelled children, looked up once: .labels() takes a lock and builds a tuple on
        # every call, which the hot POST path would pay per report.
        self._accepted: dict[str, Any] = {}
        self._rejected: dict[int, Any] = {}

    def accepted_from(self, source: str) -> Any:
        """The accepted counter of one source (created on first use, as .labels() would)."""
        child = self._accepted.get(source)
        if child is None:
            child = self._accepted[source] = self.accepted.labels(source)
        return child

    def rejected_with(self, code: int) -> Any:
        """The rejected counter of one HTTP status."""
        child = self._rejected.get(code)
        if child is None:
            child = self._rejected[code] = self.rejected.labels(str(code))
        return child
