"""The places a report may name instead of coordinates: the jurisdiction's grids,
communities and streets, each with a point routing locates in it (from routing's policy)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Place:
    id: str
    level: str  # grid | community | street
    name: str
    lon: float
    lat: float

    @property
    def grid_id(self) -> str | None:
        return self.id if self.level == "grid" else None


class Gazetteer:
    """Look-up by a unit's name (exact, after trimming) or by its id."""

    def __init__(self, places: Iterable[Mapping[str, Any]] = ()) -> None:
        self._by_name: dict[str, list[Place]] = {}
        self._by_id: dict[str, Place] = {}
        for p in places:
            place = Place(str(p["id"]), str(p["level"]), str(p["name"]), p["lon"], p["lat"])
            self._by_id[place.id] = place
            self._by_name.setdefault(place.name.strip(), []).append(place)

    def __len__(self) -> int:
        return len(self._by_id)

    def place(self, unit_id: str) -> Place | None:
        return self._by_id.get(unit_id)

    def lookup(self, text: str) -> list[Place]:
        """The places the text names: one, several (a name two units share) or none."""
        key = text.strip()
        by_id = self._by_id.get(key)
        return [by_id] if by_id is not None else list(self._by_name.get(key, []))
