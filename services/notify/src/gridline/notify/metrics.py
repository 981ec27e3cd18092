"""notify's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class NotifyMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.delivered = Counter(
            "gridline_notify_delivered_total",
            "Notifications acknowledged by their receiver.",
            registry=registry,
        )
        self.retried = Counter(
            "gridline_notify_retries_total",
            "Failed attempts that will be retried with backoff.",
            registry=registry,
        )
        self.dead = Counter(
            "gridline_notify_dead_total",
            "Notifications given up after the last attempt.",
            registry=registry,
        )
