"""Tier attainment: of the work orders resolved in a window, the share resolved at a tier
or below, for the city, each district and each street."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from gridline.common.policy.tiers import Tier

MEASURED_TIERS = (Tier.GRID, Tier.COMMUNITY, Tier.STREET)
CITY = "city"


@dataclass(frozen=True)
class ResolvedCount:
    """How many orders of one street (in one district) were resolved at one tier."""

    district_id: str | None
    street_id: str | None
    tier: Tier
    count: int


@dataclass(frozen=True)
class Attainment:
    scope_level: str  # city | district | street
    scope_id: str
    tier: Tier
    ratio: float
    resolved: int


def attainment(counts: Iterable[ResolvedCount]) -> list[Attainment]:
    """One Attainment per scope with at least one resolution and per measured tier.

    Scopes without resolutions get no figure at all (rather than 0, which would look
    like a failure)."""
    by_scope: dict[tuple[str, str], dict[Tier, int]] = defaultdict(lambda: defaultdict(int))
    for c in counts:
        scopes = [("city", CITY)]
        if c.district_id:
            scopes.append(("district", c.district_id))
        if c.street_id:
            scopes.append(("street", c.street_id))
        for scope in scopes:
            by_scope[scope][c.tier] += c.count
    result: list[Attainment] = []
    for (level, scope_id), per_tier in sorted(by_scope.items()):
        total = sum(per_tier.values())
        if total == 0:
            continue
        for tier in MEASURED_TIERS:
            within = sum(n for t, n in per_tier.items() if t.rank <= tier.rank)
            result.append(Attainment(level, scope_id, tier, within / total, total))
    return result
