"""notify's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


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
        # Batching: deliveries per claim and outcomes per recording are these ratios.
        self.claims = Counter(
            "gridline_notify_claims_total",
            "Claim statements run by the dispatcher.",
            registry=registry,
        )
        self.claimed = Counter(
            "gridline_notify_claimed_total",
            "Deliveries claimed (leased) for an attempt.",
            registry=registry,
        )
        self.recordings = Counter(
            "gridline_notify_recordings_total",
            "Batches of attempt outcomes recorded.",
            registry=registry,
        )
        # 0: GRIDLINE_PARTNER_SECRET_KEY is not set, so partners' callbacks cannot be
        # signed; they stay stored and go out once notify runs with the key.
        self.partner_signing = Gauge(
            "gridline_notify_partner_signing_enabled",
            "1 when partners' callbacks can be signed and sent, 0 while they wait for the key.",
            registry=registry,
        )
