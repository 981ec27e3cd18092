"""The measurement beyond attainment, kept incrementally like the tallies of
domain/measures.py: what openings, escalations, reopenings and the reporters' feedback add
to one row per scope, category and local day (`Flow`), and what each resolution and
reopening adds per resolver tier (`TierTally`: on-time, rework and a histogram of the time
to resolve). A resolution that a later one of the same order replaces is taken back out of
its tier row, as it is out of the tallies."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from gridline.common.policy.tiers import Tier
from gridline.sla.domain import percentiles
from gridline.sla.domain.measures import (
    ALL_CATEGORIES,
    Counted,
    TallyKey,
    added,
    scopes_of,
    values,
)

ESCALATION_REASONS = ("timeout", "whistle", "rule")
PATROL = "grid_worker"  # the report source of a grid worker's patrol (巡查)
SATISFIED_FROM = 4  # satisfaction 4 or 5 of 5 counts as satisfied


@dataclass(frozen=True, slots=True)
class Place:
    """Where a work order is: its grid and the grid's ancestors (any may be unknown)."""

    grid: str | None
    community: str | None
    street: str | None
    district: str | None

    @property
    def scopes(self) -> tuple[str, ...]:
        return scopes_of(self.grid, self.community, self.street, self.district)


@dataclass(frozen=True, slots=True)
class Flow:
    """What one (scope, category, day) row holds besides resolutions, or a change to it."""

    opened: int = 0
    discovered: int = 0  # opened from a grid worker's patrol
    timeout: int = 0  # escalations by reason
    whistle: int = 0
    rule: int = 0
    reopened: int = 0
    feedbacks: int = 0
    satisfaction: int = 0  # summed, 1..5 each
    satisfied: int = 0  # feedbacks of SATISFIED_FROM or more

    def __add__(self, other: Flow) -> Flow:
        return added(self, other)

    def escalations(self) -> dict[str, int]:
        return {"timeout": self.timeout, "whistle": self.whistle, "rule": self.rule}


def escalation(reason: str) -> Flow:
    if reason not in ESCALATION_REASONS:
        raise ValueError(f"unknown escalation reason {reason!r}")
    return Flow(**{reason: 1})


def opening(source: str) -> Flow:
    return Flow(opened=1, discovered=int(source == PATROL))


def feedback(satisfaction: int) -> Flow:
    return Flow(
        feedbacks=1, satisfaction=satisfaction, satisfied=int(satisfaction >= SATISFIED_FROM)
    )


FlowItem = tuple[Place, str, date, Flow]  # where, category, local day, what


def flow_changes(items: Iterable[FlowItem]) -> dict[TallyKey, Flow]:
    """The change to every flow row: each item in every scope of its place, for its
    category and for all categories (summed in plain lists: ten rows per item)."""
    sums: dict[TallyKey, list[int]] = {}
    for place, category, day, flow in items:
        counts = values(flow)
        for scope in place.scopes:
            for cat in (category, ALL_CATEGORIES):
                row = sums.setdefault((scope, cat, day), [0] * len(counts))
                for i, n in enumerate(counts):
                    row[i] += n
    return {k: Flow(*sums[k]) for k in sorted(sums) if any(sums[k])}


@dataclass(frozen=True, slots=True)
class TierTally:
    """What one (scope, category, day, resolver tier) row holds, or a change to it."""

    resolved: int = 0
    timed: int = 0
    on_time: int = 0
    reopened: int = 0  # reopenings on this day of resolutions made at this tier
    buckets: Mapping[int, int] = field(default_factory=dict)  # time to resolve, sparse

    def __add__(self, other: TierTally) -> TierTally:
        merged = dict(self.buckets)
        for i, n in other.buckets.items():
            merged[i] = merged.get(i, 0) + n
        return TierTally(
            self.resolved + other.resolved,
            self.timed + other.timed,
            self.on_time + other.on_time,
            self.reopened + other.reopened,
            {i: n for i, n in sorted(merged.items()) if n},
        )

    def __neg__(self) -> TierTally:
        return TierTally(
            -self.resolved,
            -self.timed,
            -self.on_time,
            -self.reopened,
            {i: -n for i, n in self.buckets.items()},
        )

    def is_nothing(self) -> bool:
        return not (self.resolved or self.timed or self.on_time or self.reopened or self.buckets)


TierKey = tuple[str, str, date, str]  # scope, category, day, tier


def _resolution(c: Counted) -> TierTally:
    return TierTally(
        resolved=1,
        timed=int(c.on_time is not None),
        on_time=int(bool(c.on_time)),
        buckets={percentiles.bucket_of(c.seconds): 1},
    )


@dataclass(frozen=True, slots=True)
class Reopening:
    """A resolution rejected or found recurred, counted on the day of the reopening
    against the tier that had resolved it."""

    place: Place
    category: str
    day: date
    tier: Tier


def tier_changes(
    added: Iterable[Counted], removed: Iterable[Counted], reopened: Iterable[Reopening] = ()
) -> dict[TierKey, TierTally]:
    """The change to every tier row that new resolutions enter, replaced ones leave and
    reopenings add to; rows whose change is nothing are left out."""
    result: dict[TierKey, TierTally] = {}

    def add(scopes: tuple[str, ...], category: str, day: date, tier: Tier, t: TierTally) -> None:
        for scope in scopes:
            for cat in (category, ALL_CATEGORIES):
                key = (scope, cat, day, tier.value)
                result[key] = result.get(key, TierTally()) + t

    for c in added:
        add(c.scopes, c.category, c.day, c.tier, _resolution(c))
    for c in removed:
        add(c.scopes, c.category, c.day, c.tier, -_resolution(c))
    for r in reopened:
        add(r.place.scopes, r.category, r.day, r.tier, TierTally(reopened=1))
    return {k: v for k, v in sorted(result.items()) if not v.is_nothing()}


@dataclass(frozen=True, slots=True)
class Quality:
    """The figures of a sum of flow and tier rows (a share of nothing is None)."""

    opened: int
    discovered: int
    escalations: Mapping[str, int]
    escalation_rate: Mapping[str, float | None]  # escalations per work order opened
    reopened: int
    rework_rate: float | None  # reopenings per work order resolved
    reopened_by_tier: Mapping[str, int]
    on_time_rate_by_tier: Mapping[str, float | None]
    hours_to_resolve: Mapping[str, Mapping[str, float | None]]  # tier or "all" -> p50, ...
    feedbacks: int
    mean_satisfaction: float | None
    satisfied_share: float | None


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole > 0 else None


def quality(flow: Flow, tiers: Mapping[str, TierTally]) -> Quality:
    """`tiers` maps each resolver tier to the sum of its rows over the days asked."""
    resolved = sum(t.resolved for t in tiers.values())
    reopened = sum(t.reopened for t in tiers.values())
    everything = TierTally()
    for t in tiers.values():
        everything = everything + t
    return Quality(
        opened=flow.opened,
        discovered=flow.discovered,
        escalations=flow.escalations(),
        escalation_rate={r: _share(n, flow.opened) for r, n in flow.escalations().items()},
        reopened=reopened,
        rework_rate=_share(reopened, resolved),
        reopened_by_tier={t.value: tiers.get(t.value, TierTally()).reopened for t in Tier},
        on_time_rate_by_tier={
            t.value: _share(
                tiers.get(t.value, TierTally()).on_time, tiers.get(t.value, TierTally()).timed
            )
            for t in Tier
        },
        hours_to_resolve={
            **{
                t.value: percentiles.percentiles(
                    percentiles.dense(tiers.get(t.value, TierTally()).buckets)
                )
                for t in Tier
            },
            "all": percentiles.percentiles(percentiles.dense(everything.buckets)),
        },
        feedbacks=flow.feedbacks,
        mean_satisfaction=flow.satisfaction / flow.feedbacks if flow.feedbacks else None,
        satisfied_share=_share(flow.satisfied, flow.feedbacks),
    )
