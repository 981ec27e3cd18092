"""Where a work order goes under the policy in effect: a new report, or a person's triage."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from gridline.common.events import Severity
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
    # Tags intake read off the text (ReportTags): an inferred category below the
    # catalogue's threshold is held for triage; severity shortens the first time limit.
    needs_triage: bool = False
    confidence: float = 1.0
    candidates: tuple[str, ...] = ()
    severity: Severity = "normal"


@dataclass(frozen=True)
class Opened:
    """A new work order, and why it is held for triage (None when it was assigned)."""

    order: WorkOrder
    triage_reason: str | None


def open_for_report(report: Report, policy: Policy, now: datetime) -> Opened:
    """Open at the category's entry tier in the report's grid; hold at the district for
    triage when the point lies in no grid, the category left the catalogue, or intake's
    inferred category is below the catalogue's confidence threshold."""
    place = policy.place_of(report.lon, report.lat)
    category = policy.catalogue.categories_by_code.get(report.service_code)
    triage_reason = None
    if report.needs_triage:
        triage_reason = (
            f"category inferred from the text with confidence {report.confidence:.2f}, below"
            f" the catalogue's threshold {policy.catalogue.tagging.threshold:.2f};"
            f" candidates: {', '.join(report.candidates) or 'none'}"
        )
    if category is None:
        # The catalogue changed after intake accepted it: hold, never drop.
        triage_reason = triage_reason or (
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
        time_limit=first_time_limits(policy, report.service_code, report.severity)
        if category
        else {},
        now=now,
        policy_version=policy.version,
        hold=report.needs_triage,
    )
    if order.state is State.TRIAGE and not order.unit_id:
        order = replace(order, unit_id=policy.jurisdiction.default_district_id())
    return Opened(order, triage_reason)


def first_time_limits(
    policy: Policy, service_code: str, severity: Severity
) -> dict[Tier, timedelta]:
    """The time limits of an order's first assignment: the catalogue's, times the factor of
    the report's severity (an urgent report is due sooner). Escalations use the
    catalogue's limits as they are."""
    factor = policy.catalogue.tagging.factor(severity)
    return {tier: limit * factor for tier, limit in policy.time_limits(service_code).items()}


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
