"""Where a work order goes under the policy in effect: a new report, or a person's triage."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from gridline.common.policy.tiers import Tier
from gridline.routing.domain.policy import Policy
from gridline.routing.domain.workorder import (
    Place,
    State,
    TransitionRefused,
    WorkOrder,
    assign_from_triage,
    open_order,
)


@dataclass(frozen=True)
class Report:
    """What routing needs of a submitted report to open its work order."""

    order_id: str
    report_id: str
    service_code: str
    source: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Opened:
    """A new work order, and why it is held for triage (None when it was assigned)."""

    order: WorkOrder
    triage_reason: str | None


def open_for_report(report: Report, policy: Policy, now: datetime) -> Opened:
    """Open at the category's entry tier in the report's grid; hold at the district for
    triage when the point lies in no grid or the category left the catalogue."""
    place = policy.place_of(report.lon, report.lat)
    category = policy.catalogue.categories_by_code.get(report.service_code)
    triage_reason = None
    if category is None:
        # The catalogue changed after intake accepted it: hold, never drop.
        triage_reason = (
            f"category {report.service_code!r} is not in catalogue {policy.catalogue.version}"
        )
        place = Place(None, None, None, place.district_id)
    elif place.grid_id is None:
        triage_reason = "the location lies inside the city but in no grid"
    order = open_order(
        order_id=report.order_id,
        report_id=report.report_id,
        category=report.service_code,
        department_id=category.department if category else "",
        source=report.source,
        lat=report.lat,
        lon=report.lon,
        place=place,
        entry=category.entry_tier if category else Tier.GRID,
        time_limit=policy.time_limits(report.service_code) if category else {},
        now=now,
        policy_version=policy.version,
    )
    if order.state is State.TRIAGE and not order.unit_id:
        order = replace(order, unit_id=policy.jurisdiction.default_district_id())
    return Opened(order, triage_reason)


def place_in_grid(
    order: WorkOrder, policy: Policy, *, grid_id: str, service_code: str | None, now: datetime
) -> WorkOrder:
    """Manual triage: a person chose the grid (and maybe corrected the category)."""
    grid = policy.jurisdiction.grids.get(grid_id)
    if grid is None:
        raise TransitionRefused(
            f"grid {grid_id} is not in jurisdiction {policy.jurisdiction.version}"
        )
    code = service_code or order.category
    category = policy.catalogue.categories_by_code.get(code)
    if category is None:
        raise TransitionRefused(
            f"category {code!r} is not in the catalogue; send a service_code from services.json"
        )
    return assign_from_triage(
        order,
        place=Place(grid.grid_id, grid.community_id, grid.street_id, grid.district_id),
        category=code,
        department_id=category.department,
        entry=category.entry_tier,
        time_limit=policy.time_limits(code),
        now=now,
    )
