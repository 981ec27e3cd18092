"""The contract's SLA metrics, served from a snapshot of sla's tables.

Counters live in PostgreSQL (moved in the transaction of their event), so they count each
event once and keep counting across restarts; a background loop refreshes the snapshot
and scrapes only read it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from gridline.common.policy.catalogue import Targets
from gridline.sla.domain.attainment import Attainment
from gridline.sla.domain.counts import ESCALATIONS, HISTOGRAM, OPENED, REOPENED, RESOLVED, le

COUNTERS = {
    OPENED: (
        "Work orders opened, by street, category and report source.",
        ["street_id", "category", "source"],
    ),
    RESOLVED: (
        "Work orders resolved, by street, the tier that resolved them, and category.",
        ["street_id", "tier", "category"],
    ),
    REOPENED: (
        "Resolutions rejected by the reporter in time (the order reopened), by street, the "
        "tier that had resolved it, and category: rework.",
        ["street_id", "tier", "category"],
    ),
    ESCALATIONS: (
        "Escalations, by tier moved from and to and reason (timeout, whistle, rule).",
        ["from_tier", "to_tier", "reason"],
    ),
}
DEFAULT_TARGETS: dict[str, float] = Targets().model_dump()
OVERDUE_TIERS = ("grid", "community", "street", "department")


@dataclass
class Snapshot:
    counters: list[tuple[str, dict[str, str], float]] = field(default_factory=list)
    attainment: dict[str, list[Attainment]] = field(default_factory=dict)
    # The catalogue's targets; the contract's defaults until a catalogue is in effect.
    targets: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TARGETS))
    # Open work orders past their due time, by the tier holding them.
    overdue: dict[str, int] = field(default_factory=dict)


class SlaCollector(Collector):
    def __init__(self, bucket_seconds: list[float]) -> None:
        self.snapshot = Snapshot()
        self._buckets = bucket_seconds

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        snap = self.snapshot
        att = GaugeMetricFamily(
            "gridline_sla_tier_attainment_ratio",
            "Of the work orders resolved in the window, the share resolved at `tier` or below.",
            labels=["scope_level", "scope_id", "tier", "window"],
        )
        for window, figures in sorted(snap.attainment.items()):
            for a in figures:
                att.add_metric([a.scope_level, a.scope_id, a.tier.value, window], a.ratio)
        yield att
        target = GaugeMetricFamily(
            "gridline_sla_tier_target_ratio",
            "The published target share resolved at `tier` or below (the catalogue's targets).",
            labels=["tier"],
        )
        for tier in ("grid", "community", "street"):
            target.add_metric([tier], snap.targets[tier])
        yield target
        overdue = GaugeMetricFamily(
            "gridline_workorders_overdue",
            "Open work orders past their current due time, by the tier holding them.",
            labels=["tier"],
        )
        for tier in OVERDUE_TIERS:  # every tier, 0 included: a panel or alert sees zero
            overdue.add_metric([tier], snap.overdue.get(tier, 0))
        yield overdue
        for name, (doc, labels) in COUNTERS.items():
            family = CounterMetricFamily(name.removesuffix("_total"), doc, labels=labels)
            for metric, values, value in snap.counters:
                if metric == name:
                    family.add_metric([values.get(label, "") for label in labels], value)
            yield family
        yield self._histogram(snap)

    def _histogram(self, snap: Snapshot) -> HistogramMetricFamily:
        family = HistogramMetricFamily(
            HISTOGRAM,
            "Time from opening to resolution (clock seconds), by the tier that resolved it.",
            labels=["tier"],
        )
        buckets: dict[str, dict[str, float]] = {}
        sums: dict[str, float] = {}
        for metric, labels, value in snap.counters:
            if metric == f"{HISTOGRAM}_bucket":
                buckets.setdefault(labels["tier"], {})[labels["le"]] = value
            elif metric == f"{HISTOGRAM}_sum":
                sums[labels["tier"]] = value
        bounds = [le(b) for b in [*self._buckets, float("inf")]]
        for tier, per_bound in sorted(buckets.items()):
            # Each resolution moved every bucket whose bound it fits under: already cumulative.
            family.add_metric(
                [tier],
                [(b, per_bound.get(b, 0.0)) for b in bounds],
                sums.get(tier, 0.0),
            )
        return family


def register(registry: CollectorRegistry, collector: SlaCollector) -> None:
    registry.register(collector)
