"""Two-way assessment (两级考核), kept incrementally: one row per ranking (its parent
scope and the level of the units it ranks), local day and unit, moved by each event in
its own transaction; a ranking is a sum over at most a month of one parent's rows.

- Grid, community and street units: problems discovered (work orders opened at the unit's
  place from a grid worker's patrol), orders completed (resolutions made by the unit's tier
  at its place), how many of those were on time, and reworked (reopened), and returns.
  Grids and communities are ranked within their street, streets within their district.
- Departments: call-ins (吹哨) and report-ins (报到) on time, orders completed and on time,
  reworked, and returns (退回); ranked within a district and city-wide.

A score out of 100 orders each ranking (see `score`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from gridline.common.policy.tiers import Tier
from gridline.sla.domain.flows import Place
from gridline.sla.domain.measures import MeasureProblem, added, check_scope

UNIT_LEVELS = ("grid", "community", "street", "department")
PLACE_LEVELS = ("grid", "community", "street")


@dataclass(frozen=True, slots=True)
class KnownUnit:
    """A unit of the jurisdiction or catalogue in effect, where its rankings find it."""

    level: str
    id: str
    street: str | None = None  # a grid's or community's street
    district: str | None = None  # a street's district


def known_units(places: Iterable[Mapping[str, object]]) -> list[KnownUnit]:
    """The grids, communities and streets of a jurisdiction's `places`, each with the
    street (for grids and communities) or district (for streets) its rankings are under,
    found by walking `parent_id` up (a place whose chain breaks, or an older event's place
    without parents, is left out)."""
    by_id = {str(p["id"]): p for p in places if p.get("level") in PLACE_LEVELS}

    def up(unit: str, level: str) -> str | None:
        seen: set[str] = set()
        while unit in by_id and unit not in seen:
            seen.add(unit)
            parent = by_id[unit].get("parent_id")
            if parent is None:
                return None
            if by_id.get(str(parent), {}).get("level") == level or (
                level == "district" and by_id[unit].get("level") == "street"
            ):
                return str(parent)
            unit = str(parent)
        return None

    result = []
    for unit, place in sorted(by_id.items()):
        level = str(place["level"])
        if level == "street":
            district = up(unit, "district")
            if district is not None:
                result.append(KnownUnit(level, unit, district=district))
        else:
            street = up(unit, "street")
            if street is not None:
                result.append(KnownUnit(level, unit, street=street))
    return result


# Which parent scopes rank which units.
RANKINGS = {
    "street": ("grid", "community"),
    "district": ("street", "department"),
    "city": ("department",),
}


@dataclass(frozen=True, slots=True)
class UnitTally:
    """What one (parent, level, day, unit) row holds, or a change to it."""

    discovered: int = 0
    completed: int = 0
    timed: int = 0  # completions whose due time is known
    on_time: int = 0
    reopened: int = 0
    calls: int = 0  # departments: called in
    reported_on_time: int = 0  # departments: reported in by the report-in due time
    returns: int = 0

    def __add__(self, other: UnitTally) -> UnitTally:
        return added(self, other)


UnitKey = tuple[str, str, date, str]  # parent, level, day, unit
Ranked = tuple[str, str, str]  # parent, level, unit


def units_of(place: Place, tier: Tier, department: str | None = None) -> list[Ranked]:
    """The rankings a unit of `tier` at `place` stands in (a department's: `department`)."""
    if tier is Tier.GRID and place.grid and place.street:
        return [(f"street:{place.street}", "grid", f"grid:{place.grid}")]
    if tier is Tier.COMMUNITY and place.community and place.street:
        return [(f"street:{place.street}", "community", f"community:{place.community}")]
    if tier is Tier.STREET and place.street and place.district:
        return [(f"district:{place.district}", "street", f"street:{place.street}")]
    if tier is Tier.DEPARTMENT and department:
        unit = f"department:{department}"
        city: list[Ranked] = [("city", "department", unit)]
        return city + (
            [(f"district:{place.district}", "department", unit)] if place.district else []
        )
    return []


def discoverers(place: Place) -> list[Ranked]:
    """The units a problem found on patrol at `place` counts for: its grid, community
    and street (each patrols within the other)."""
    return [u for tier in (Tier.GRID, Tier.COMMUNITY, Tier.STREET) for u in units_of(place, tier)]


UnitItem = tuple[list[Ranked], date, UnitTally]


def unit_changes(items: Iterable[UnitItem]) -> dict[UnitKey, UnitTally]:
    result: dict[UnitKey, UnitTally] = {}
    for ranked, day, tally in items:
        for parent, level, unit in ranked:
            key = (parent, level, day, unit)
            result[key] = result.get(key, UnitTally()) + tally
    return {k: v for k, v in sorted(result.items()) if v != UnitTally()}


def check_ranking(scope: str, level: str) -> tuple[str, str]:
    """A ranking that can be asked for: grids or communities of a street, streets or
    departments of a district, departments of the city."""
    check_scope(scope)
    parent_level = scope.split(":", 1)[0]
    allowed = RANKINGS.get(parent_level, ())
    if level not in allowed:
        raise MeasureProblem(
            "level: grid or community within scope=street:<id>, street or department within"
            f" scope=district:<id>, department within scope=city; got level={level[:20]!r}"
            f" for {parent_level}"
        )
    return scope, level


@dataclass(frozen=True, slots=True)
class Assessed:
    unit: str
    rank: int
    score: float
    tally: UnitTally
    on_time_share: float | None  # of the completions whose due time is known
    rework_share: float | None  # reopenings per completion
    report_in_share: float | None  # departments: report-ins on time per call-in
    return_share: float | None  # returns per order handled (completed or returned)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole > 0 else None


def score(level: str, t: UnitTally, most_discovered: int) -> float:
    """Out of 100. Grid, community, street: 60 × on-time share + 20 × (1 − rework share)
    + 20 × discovered / the most any unit of the ranking discovered. Department: 40 ×
    report-in on-time share + 40 × on-time completion share + 20 × (1 − return share).
    A share of nothing (no completion, no call) earns none of its points."""
    on_time = _share(t.on_time, t.timed)
    rework = _share(t.reopened, t.completed)
    if level == "department":
        report_in = _share(t.reported_on_time, t.calls)
        returns = _share(t.returns, t.completed + t.returns)
        points = 40 * (report_in or 0) + 40 * (on_time or 0)
        points += 0 if returns is None else 20 * (1 - returns)
    else:
        points = 60 * (on_time or 0) + (0 if rework is None else 20 * max(0.0, 1 - rework))
        points += 20 * t.discovered / most_discovered if most_discovered else 0
    return round(points, 2)


def rank(level: str, tallies: Mapping[str, UnitTally]) -> list[Assessed]:
    """Units by score, highest first; ties by more completed, then by unit id. Units
    with equal scores and completions share a rank (1, 2, 2, 4)."""
    most = max((t.discovered for t in tallies.values()), default=0)
    scored = sorted(
        ((score(level, t, most), unit, t) for unit, t in tallies.items()),
        key=lambda s: (-s[0], -s[2].completed, s[1]),
    )
    result: list[Assessed] = []
    for i, (points, unit, t) in enumerate(scored):
        tied = result and (result[-1].score, result[-1].tally.completed) == (points, t.completed)
        result.append(
            Assessed(
                unit=unit,
                rank=result[-1].rank if tied else i + 1,
                score=points,
                tally=t,
                on_time_share=_share(t.on_time, t.timed),
                rework_share=_share(t.reopened, t.completed),
                report_in_share=_share(t.reported_on_time, t.calls),
                return_share=_share(t.returns, t.completed + t.returns),
            )
        )
    return result
