"""Duty lists (the N+X list): which categories each tier may resolve. N city-wide duties
per tier, plus X local ones that a street or community adds for the units at and below it.

docs/catalogue.md documents the `duty_lists` section of the catalogue."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gridline.common.policy.tiers import Tier


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalDuties(_Strict):
    """X: extra categories the units of one street or community (itself and every unit
    below it) may resolve, beyond their tier's city-wide list."""

    unit: str = Field(min_length=1, description="A street or community id of the jurisdiction.")
    categories: list[str] = Field(min_length=1)


class DutyLists(_Strict):
    """N: per tier, the categories it may resolve city-wide. A tier not listed may resolve
    every category (the department tier usually is not listed)."""

    city: dict[Tier, list[str]] = Field(default_factory=dict)
    local: list[LocalDuties] = Field(default_factory=list)

    def city_wide(self, tier: Tier) -> list[str] | None:
        """The tier's N list; None when the tier is not restricted."""
        return self.city.get(tier)

    def local_for(self, units: list[str]) -> list[LocalDuties]:
        """The X lists that apply to a unit, given it and its ancestors."""
        return [entry for entry in self.local if entry.unit in units]

    def local_units(self) -> list[str]:
        return [entry.unit for entry in self.local]


def duty_list_problems(doc: dict[str, Any]) -> list[str]:
    """Categories the duty lists name that the catalogue lacks, and repeated local units,
    read off the raw document so that they are reported with any field errors. Whether
    the local units exist is the jurisdiction's question (routing asks it on load)."""
    duties, categories = doc.get("duty_lists"), doc.get("categories")
    if not isinstance(duties, dict) or not isinstance(categories, list):
        return []
    codes = {c.get("code") for c in categories if isinstance(c, dict)}
    problems: list[str] = []
    city = duties.get("city")
    if isinstance(city, dict):
        for tier, listed in city.items():
            if isinstance(listed, list):
                problems += [
                    f"duty_lists.city.{tier}: unknown category {code!r}"
                    for code in listed
                    if code not in codes
                ]
    local = duties.get("local")
    if isinstance(local, list):
        seen: dict[Any, int] = {}
        for i, entry in enumerate(local):
            if not isinstance(entry, dict):
                continue
            unit = entry.get("unit")
            if unit is not None and unit in seen:
                problems.append(
                    f"duty_lists.local[{i}].unit: {unit!r} is listed twice"
                    f" (also duty_lists.local[{seen[unit]}])"
                )
            seen.setdefault(unit, i)
            listed = entry.get("categories")
            if isinstance(listed, list):
                problems += [
                    f"duty_lists.local[{i}].categories: unknown category {code!r}"
                    for code in listed
                    if code not in codes
                ]
    return problems
