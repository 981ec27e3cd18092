"""The rules in effect: a jurisdiction and a catalogue, and what routing asks of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from weakref import WeakKeyDictionary

from gridline.common.policy.calendar import WorkCalendar
from gridline.common.policy.catalogue import Catalogue
from gridline.common.policy.tiers import Tier
from gridline.routing.domain.jurisdiction import Jurisdiction
from gridline.routing.domain.rules import EMPTY, RuleSet
from gridline.routing.domain.rules_file import parse_rules
from gridline.routing.domain.workorder import Place, TimeLimits


@dataclass(frozen=True)
class Policy:
    jurisdiction: Jurisdiction
    catalogue: Catalogue

    @property
    def version(self) -> str:
        """Stamped on every work order: which jurisdiction and catalogue routed it."""
        return f"j:{self.jurisdiction.version}+c:{self.catalogue.version_hash}"

    @property
    def rules(self) -> RuleSet:
        """The routing rules loaded with the catalogue (none: entry tiers as they are)."""
        return rules_of(self.catalogue)

    def place_of(self, lon: float, lat: float) -> Place:
        return self.places_of([(lon, lat)])[0]

    def places_of(self, points: Sequence[tuple[float, float]]) -> list[Place]:
        """The place of each (lon, lat): its grid and units, or only its district when it
        lies in no grid. One look-up of the spatial index for the whole batch."""
        return [
            Place(None, None, None, self.jurisdiction.district_of_point(lon, lat))
            if grid is None
            else Place(grid.grid_id, grid.community_id, grid.street_id, grid.district_id)
            for (lon, lat), grid in zip(points, self.jurisdiction.locate_many(points), strict=True)
        ]

    def time_limits(self, category: str, calendar: str | None = None) -> TimeLimits:
        """The category's limits per tier, on the calendar `calendar` names, or else on the
        category's own (none: clock hours)."""
        limits: dict[Tier, timedelta] = {}
        for tier in Tier:
            try:
                limits[tier] = self.catalogue.time_limit(category, tier)
            except KeyError:
                continue
        return TimeLimits(limits, self.calendar_of(category, calendar), self.catalogue.timezone)

    def calendar_of(self, category: str, calendar: str | None = None) -> WorkCalendar | None:
        """The calendar `calendar` names, or else the category's own (None: clock time)."""
        known = self.catalogue.categories_by_code.get(category)
        name = calendar or (known.calendar if known else None)
        return self.catalogue.model.calendars.get(name) if name else None

    def unit_name(self, unit_id: str) -> str:
        department = self.catalogue.departments_by_id.get(unit_id)
        if department is not None:
            return f"{department.name_en} {department.name_zh}"
        try:
            return self.jurisdiction.unit(unit_id).name
        except KeyError:
            return unit_id

    def unit_names(self, unit_id: str) -> tuple[str, str]:
        """(Chinese, English): a department has both; a grid, community or street has the
        one name its jurisdiction gives it."""
        department = self.catalogue.departments_by_id.get(unit_id)
        if department is not None:
            return department.name_zh, department.name_en
        name = self.unit_name(unit_id)
        return name, name

    def unit_level(self, unit_id: str) -> str:
        if unit_id in self.catalogue.departments_by_id:
            return "department"
        return self.jurisdiction.unit(unit_id).level

    def knows_unit(self, unit_id: str) -> bool:
        if unit_id in self.catalogue.departments_by_id:
            return True
        try:
            self.jurisdiction.unit(unit_id)
        except KeyError:
            return False
        return True

    def ancestors(self, unit_id: str) -> list[str]:
        if unit_id in self.catalogue.departments_by_id:
            return []
        try:
            return [u.unit_id for u in self.jurisdiction.ancestors(unit_id)]
        except KeyError:
            return []


# Compiled once per catalogue object: a Policy is built for every request and event batch.
_COMPILED: WeakKeyDictionary[Catalogue, RuleSet] = WeakKeyDictionary()


def rules_of(catalogue: Catalogue) -> RuleSet:
    """The catalogue's rule file, parsed, validated and compiled (RulesInvalid if bad)."""
    source = catalogue.model.rules
    if source is None:
        return EMPTY
    compiled = _COMPILED.get(catalogue)
    if compiled is None:
        compiled = parse_rules(source.text, file=source.name, catalogue=catalogue)
        _COMPILED[catalogue] = compiled
    return compiled
