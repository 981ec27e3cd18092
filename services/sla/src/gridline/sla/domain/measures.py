"""The measurement kept incrementally: one tally per scope, category and local day, moved
by each resolution as it arrives (and moved back when a reopened order's later resolution
replaces its earlier one), so that any figure for any scope and window is a sum over at
most a month or so of rows, never a rescan of the resolutions.

Scopes are written `city`, `district:<id>`, `street:<id>`, `community:<id>`, `grid:<id>`;
the category `*` holds every category together."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gridline.common.policy import unit_ids
from gridline.common.policy.tiers import Tier

ALL_CATEGORIES = "*"
SCOPE_LEVELS = ("city", "district", "street", "community", "grid")
# The levels /metrics labels (the contract's bounded set); grids and communities are read
# through the API.
METRIC_LEVELS = ("city", "district", "street")
ROLLING = {"1d": 1, "7d": 7, "30d": 30}
MEASURED_TIERS = (Tier.GRID, Tier.COMMUNITY, Tier.STREET)
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def values(row: Any) -> tuple[Any, ...]:
    """A slotted dataclass's field values in order (dataclasses.astuple deep-copies each
    one: a tenth of a millisecond per event on sla's hot path)."""
    return tuple(getattr(row, name) for name in row.__slots__)


Row = TypeVar("Row")


def added(a: Row, b: Row) -> Row:
    """Field-wise sum of two counts of one slotted dataclass."""
    return type(a)(*(x + y for x, y in zip(values(a), values(b), strict=True)))


def local_day(at: datetime, time_zone: str) -> date:
    """The day `at` falls on in the catalogue's time zone (UTC if the zone is unknown)."""
    try:
        zone: tzinfo = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    return at.astimezone(zone).date()


class MeasureProblem(ValueError):
    """A question about the figures that cannot be answered as asked (400, the fix named)."""


class UnknownScope(LookupError):
    """A scope of no unit sla has heard of (404): not in a jurisdiction or catalogue put
    into effect, and nothing ever counted for it. Its figures would be zeros that look
    like a quiet unit, so a mistyped id is told apart."""


def scopes_of(
    grid_id: str | None, community_id: str | None, street_id: str | None, district_id: str | None
) -> tuple[str, ...]:
    """Every scope a resolution at this place counts in, the city first."""
    named = (
        ("district", district_id),
        ("street", street_id),
        ("community", community_id),
        ("grid", grid_id),
    )
    return ("city", *(f"{level}:{unit}" for level, unit in named if unit))


@dataclass(frozen=True, slots=True)
class Counted:
    """One resolution as the tallies count it."""

    scopes: tuple[str, ...]
    category: str
    day: date  # the day of resolution in the catalogue's time zone
    tier: Tier  # the resolver's tier
    on_time: bool | None  # None: resolved before due times were stored
    seconds: float
    hour: datetime  # the UTC hour of resolution, for /metrics' rolling windows


@dataclass(frozen=True, slots=True)
class Tally:
    """What one (scope, category, day) row holds, or a change to it."""

    at_grid: int = 0
    at_community: int = 0
    at_street: int = 0
    at_department: int = 0
    timed: int = 0  # resolutions whose due time is known
    on_time: int = 0
    seconds: float = 0.0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.at_grid + other.at_grid,
            self.at_community + other.at_community,
            self.at_street + other.at_street,
            self.at_department + other.at_department,
            self.timed + other.timed,
            self.on_time + other.on_time,
            self.seconds + other.seconds,
        )

    def __neg__(self) -> Tally:
        return Tally(
            -self.at_grid,
            -self.at_community,
            -self.at_street,
            -self.at_department,
            -self.timed,
            -self.on_time,
            -self.seconds,
        )

    @property
    def resolved(self) -> int:
        return self.at_grid + self.at_community + self.at_street + self.at_department

    def at_or_below(self, tier: Tier) -> int:
        per_tier = {
            Tier.GRID: self.at_grid,
            Tier.COMMUNITY: self.at_community,
            Tier.STREET: self.at_street,
            Tier.DEPARTMENT: self.at_department,
        }
        return sum(n for t, n in per_tier.items() if t.rank <= tier.rank)


def _one(c: Counted) -> Tally:
    return Tally(
        at_grid=int(c.tier is Tier.GRID),
        at_community=int(c.tier is Tier.COMMUNITY),
        at_street=int(c.tier is Tier.STREET),
        at_department=int(c.tier is Tier.DEPARTMENT),
        timed=int(c.on_time is not None),
        on_time=int(bool(c.on_time)),
        seconds=c.seconds,
    )


TallyKey = tuple[str, str, date]  # scope, category, day
HourKey = tuple[datetime, str]  # UTC hour, scope


K = TypeVar("K", TallyKey, HourKey)


def _moves(
    added: Iterable[Counted],
    removed: Iterable[Counted],
    keys: Callable[[Counted], Iterable[K]],
) -> dict[K, Tally]:
    """The change to every row `keys` names that `added` resolutions enter and `removed`
    ones (the earlier resolutions that later ones of the same orders replace) leave; rows
    whose change is nothing are left out. In key order, so that concurrent transactions
    lock rows in one order."""
    result: dict[K, Tally] = {}
    for sign, items in ((1, added), (-1, removed)):
        for c in items:
            one = _one(c) if sign > 0 else -_one(c)
            for key in keys(c):
                result[key] = result.get(key, Tally()) + one
    return {k: result[k] for k in sorted(result) if result[k] != Tally()}


def changes(added: Iterable[Counted], removed: Iterable[Counted]) -> dict[TallyKey, Tally]:
    """The tallies' rows: every scope, the category and `*`, the local day."""
    return _moves(
        added,
        removed,
        lambda c: [(s, cat, c.day) for s in c.scopes for cat in (c.category, ALL_CATEGORIES)],
    )


def hourly_changes(added: Iterable[Counted], removed: Iterable[Counted]) -> dict[HourKey, Tally]:
    """/metrics' hourly rows: the scopes of METRIC_LEVELS, the UTC hour (tier counts only
    are kept of these)."""
    return _moves(
        added,
        removed,
        lambda c: [(c.hour, s) for s in c.scopes if s.partition(":")[0] in METRIC_LEVELS],
    )


def check_scope(scope: str) -> str:
    """`city` or `<level>:<unit id>` (gridline.common.policy.unit_ids: split at the first
    colon)."""
    level, colon, unit = scope.partition(":")
    if scope != "city" and not (colon and level in SCOPE_LEVELS[1:] and unit_ids.is_unit_id(unit)):
        raise MeasureProblem(
            "scope: 'city' or one of district:<id>, street:<id>, community:<id>, grid:<id>"
            f" (the unit's id as loaded, at most 100 characters), got {scope[:120]!r}"
        )
    return scope


def window_days(today: date, window: str | None, month: str | None) -> tuple[date, date]:
    """The first and last local day a question covers: the rolling `window` (1d: today;
    7d: today and the six days before; 30d) or a calendar `month` (YYYY-MM), not both."""
    if month is not None and window is not None:
        raise MeasureProblem("ask for a window (1d, 7d, 30d) or a month (YYYY-MM), not both")
    if month is not None:
        m = _MONTH.match(month)
        if not m:
            raise MeasureProblem(f"month: YYYY-MM, e.g. 2026-11, got {month[:20]!r}")
        first = date(int(m.group(1)), int(m.group(2)), 1)
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return first, following - timedelta(days=1)
    name = window or "30d"
    if name not in ROLLING:
        raise MeasureProblem(f"window: one of {', '.join(ROLLING)}, got {name[:20]!r}")
    return today - timedelta(days=ROLLING[name] - 1), today


@dataclass(frozen=True, slots=True)
class Figures:
    """What the API answers for one scope, category and span of days."""

    resolved: int
    attainment: Mapping[str, float | None]  # tier -> share resolved at that tier or below
    targets: Mapping[str, float]
    on_time_rate: float | None  # of the resolutions whose due time is known
    mean_hours_to_resolve: float | None
    resolved_by_tier: Mapping[str, int]


def figures(total: Tally, targets: Mapping[str, float]) -> Figures:
    """The figures of a sum of tallies. A share of nothing is None, not 0 (which would
    read as a failure)."""
    n = total.resolved
    return Figures(
        resolved=n,
        attainment={t.value: (total.at_or_below(t) / n if n else None) for t in MEASURED_TIERS},
        targets={t.value: targets[t.value] for t in MEASURED_TIERS if t.value in targets},
        on_time_rate=total.on_time / total.timed if total.timed else None,
        mean_hours_to_resolve=total.seconds / n / 3600 if n else None,
        resolved_by_tier={
            Tier.GRID.value: total.at_grid,
            Tier.COMMUNITY.value: total.at_community,
            Tier.STREET.value: total.at_street,
            Tier.DEPARTMENT.value: total.at_department,
        },
    )
