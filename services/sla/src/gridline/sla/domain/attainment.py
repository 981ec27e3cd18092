"""Tier attainment: of the work orders resolved in a window, the share resolved at a tier
or below, for every scope /metrics labels (the city, each district, each street)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gridline.common.policy.tiers import Tier
from gridline.sla.domain.measures import MEASURED_TIERS, Tally


@dataclass(frozen=True)
class Attainment:
    scope_level: str  # city | district | street
    scope_id: str
    tier: Tier
    ratio: float
    resolved: int


def attainment(per_scope: Mapping[str, Tally]) -> list[Attainment]:
    """One Attainment per scope (`city`, `district:<id>`, `street:<id>`) with at least one
    resolution and per measured tier.

    Scopes without resolutions get no figure at all (rather than 0, which would look
    like a failure)."""
    result: list[Attainment] = []
    for scope, total in sorted(per_scope.items()):
        n = total.resolved
        if n <= 0:
            continue
        level, _, unit = scope.partition(":")
        for tier in MEASURED_TIERS:
            result.append(Attainment(level, unit or scope, tier, total.at_or_below(tier) / n, n))
    return result
