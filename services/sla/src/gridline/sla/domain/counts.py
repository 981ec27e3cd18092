"""What work-order events add to sla's counters, summed per metric and labels so that a
whole batch moves each counter once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

OPENED = "gridline_workorders_opened_total"
RESOLVED = "gridline_workorders_resolved_total"
ESCALATIONS = "gridline_escalations_total"
REOPENED = "gridline_workorders_reopened_total"
HISTOGRAM = "gridline_workorder_resolution_seconds"
NONE = "none"  # label value where an order has no street (held for triage)

Labels = tuple[tuple[str, str], ...]


def le(bound: float) -> str:
    """A bucket's `le` label, as Prometheus' own client writes it."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


@dataclass
class Tally:
    """Increments per (metric, labels); adding to the same counter twice sums in place."""

    _values: dict[tuple[str, Labels], float] = field(default_factory=dict)

    def add(self, metric: str, labels: Mapping[str, str], by: float = 1.0) -> None:
        key = (metric, tuple(sorted(labels.items())))
        self._values[key] = self._values.get(key, 0.0) + by

    def items(self) -> list[tuple[str, dict[str, str], float]]:
        """Each counter once, in a fixed order (concurrent writers then lock rows alike)."""
        return [(m, dict(labels), v) for (m, labels), v in sorted(self._values.items())]

    def opened(self, street_id: str | None, category: str, source: str) -> None:
        self.add(OPENED, {"street_id": street_id or NONE, "category": category, "source": source})

    def escalated(self, from_tier: str, to_tier: str, reason: str) -> None:
        self.add(ESCALATIONS, {"from_tier": from_tier, "to_tier": to_tier, "reason": reason})

    def reopened(self, street_id: str | None, tier: str, category: str) -> None:
        """A resolution the reporter rejected in time; `tier` resolved it (rework)."""
        self.add(REOPENED, {"street_id": street_id or NONE, "tier": tier, "category": category})

    def resolved(
        self,
        street_id: str | None,
        tier: str,
        category: str,
        seconds: float,
        bucket_seconds: Sequence[float],
    ) -> None:
        """The resolved counter and the histogram: every bucket whose bound it fits under
        (so buckets are stored cumulative), its sum and its count."""
        self.add(RESOLVED, {"street_id": street_id or NONE, "tier": tier, "category": category})
        for bound in [*bucket_seconds, float("inf")]:
            if seconds <= bound:
                self.add(f"{HISTOGRAM}_bucket", {"tier": tier, "le": le(bound)})
        self.add(f"{HISTOGRAM}_sum", {"tier": tier}, seconds)
        self.add(f"{HISTOGRAM}_count", {"tier": tier})
