"""The tiers a work order climbs: grid < community < street < department."""

from __future__ import annotations

from enum import StrEnum


class Tier(StrEnum):
    GRID = "grid"
    COMMUNITY = "community"
    STREET = "street"
    DEPARTMENT = "department"

    @property
    def rank(self) -> int:
        return _ORDER.index(self)

    def next(self) -> Tier | None:
        """The tier above, or None at the top (department)."""
        i = self.rank + 1
        return _ORDER[i] if i < len(_ORDER) else None


_ORDER: list[Tier] = [Tier.GRID, Tier.COMMUNITY, Tier.STREET, Tier.DEPARTMENT]
