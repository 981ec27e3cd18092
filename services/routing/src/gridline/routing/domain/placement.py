"""Where a work order goes under the policy in effect: a new report, or a person's triage."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from gridline.common.events import Severity
from gridline.common.policy.tiers import Tier
from gridline.routing.domain.policy import Policy
from gridline.routing.domain.rules import NO_RULES, Decision, Facts
from gridline.routing.domain.workorder import (
    Place,
    State,
    TimeLimits,
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
    flags: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    submitted_at: datetime | None = None  # the routing rules' time of day; default: now


@dataclass(frozen=True)
class Opened:
    """A new work order, and why it is held for triage (None when it was assigned).

    `decision` is what the routing rules decided; `raised_from` is the assignment the
    category's entry tier would have made when a rule moved the order above it at open
    (the order is then assignment 2, escalated with reason `rule`)."""

    order: WorkOrder
    triage_reason: str | None
    decision: Decision = NO_RULES
    raised_from: WorkOrder | None = None


def open_for_report(
    report: Report, policy: Policy, now: datetime, place: Place | None = None
) -> Opened:
    """Open at the category's entry tier in the report's grid; hold at the district for
    triage when the point lies in no grid, the category left the catalogue, or intake's
    inferred category is below the catalogue's confidence threshold. `place` is the
    report's (`policy.places_of` finds a batch's in one look-up); None: look it up."""
    if place is None:
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
    decision = NO_RULES
    if category is not None:
        decision = policy.rules.evaluate(facts_of(report, place, policy, now))
    department = category.department if category else ""
    entry = category.entry_tier if category else Tier.GRID
    limits = first_time_limits(policy, report.service_code, report.severity) if category else {}

    def opened(entry: Tier, department: str, limits: dict[Tier, timedelta]) -> WorkOrder:
        return open_order(
            order_id=report.order_id,
            report_id=report.report_id,
            category=report.service_code,
            department_id=department,
            source=report.source,
            lat=report.lat,
            lon=report.lon,
            place=place,
            entry=entry,
            time_limit=limits,
            now=now,
            policy_version=policy.version,
            hold=report.needs_triage,
        )

    order = opened(entry, department, limits)
    raised_from = None
    if decision.matched and category is not None:
        base = policy.time_limits(report.service_code, decision.calendar)
        base = base.scaled(policy.catalogue.tagging.factor(report.severity))
        ruled = opened(
            Tier.DEPARTMENT if decision.call_in else decision.entry_tier or entry,
            decision.call_in or department,
            TimeLimits({**base, **rule_limits(decision)}, base.calendar, base.zone),
        )
        ruled = replace(
            ruled,
            co_handlers=decision.co_handlers,
            rule_limits=tuple(sorted(decision.time_limits_hours.items(), key=lambda t: t[0].rank)),
            rule_calendar=decision.calendar,
        )
        if order.tier is not None and ruled.tier is not None and ruled.tier.rank > order.tier.rank:
            # Moved up at open: the category's assignment, then the rule's escalation.
            raised_from = order
            ruled = replace(ruled, assignment_seq=2, version=2)
        order = ruled
    if order.state is State.TRIAGE and not order.unit_id:
        order = replace(order, unit_id=policy.jurisdiction.default_district_id())
    return Opened(order, triage_reason, decision, raised_from)


def explanation(opened: Opened, policy: Policy) -> dict[str, object]:
    """Why the order went where it did: stored in its history (every routing decision
    explained) and shown by `gridline routes test`."""
    order, decision = opened.order, opened.decision
    grid = policy.jurisdiction.grids.get(order.place.grid_id) if order.place.grid_id else None
    return {
        "policy_version": policy.version,
        "rules_file": policy.catalogue.model.rules.name if policy.catalogue.model.rules else None,
        "grid": {"id": grid.grid_id, "name": grid.grid_name, "kind": grid.grid_kind}
        if grid
        else None,
        "rules": decision.explain(),
        "category_entry_tier": (
            c.entry_tier.value
            if (c := policy.catalogue.categories_by_code.get(order.category))
            else None
        ),
        "tier": order.tier.value if order.tier else None,
        "unit_id": order.unit_id,
        "due_at": order.due_at.isoformat() if order.due_at else None,
        "co_handlers": list(order.co_handlers),
        "calendar": decision.calendar,
    }


class NotRoutable(ValueError):
    """A report intake would refuse, so no order could be opened for it."""


def preview(report: Report, policy: Policy, now: datetime) -> dict[str, object]:
    """Where `report` would go under `policy`, and why, without opening anything: what
    `gridline routes test` prints (offline, or against the stack's policy in effect).
    Raises NotRoutable for a report intake would refuse: a category the catalogue lacks,
    or a point outside the city (an order for one is never opened, so there is no route
    to show)."""
    catalogue = policy.catalogue
    if report.service_code not in catalogue.categories_by_code:
        codes = ", ".join(sorted(catalogue.categories_by_code))
        raise NotRoutable(
            f"category {report.service_code!r} is not in catalogue {catalogue.version}"
            f" (its codes: {codes})"
        )
    if not policy.jurisdiction.in_extent(report.lon, report.lat):
        raise NotRoutable(
            f"the location lat={report.lat}, long={report.lon} is outside the city served"
            " here (intake refuses such a report)"
        )
    opened = open_for_report(report, policy, now)
    order = opened.order
    return {
        **explanation(opened, policy),
        "category": report.service_code,
        "place": {
            "grid_id": order.place.grid_id,
            "community_id": order.place.community_id,
            "street_id": order.place.street_id,
            "district_id": order.place.district_id,
        },
        "state": order.state.value,
        "unit_name": policy.unit_name(order.unit_id) if order.unit_id else None,
        "department_id": order.department_id,
        "raised_from_tier": opened.raised_from.tier.value
        if opened.raised_from and opened.raised_from.tier
        else None,
        "triage_reason": opened.triage_reason,
        "time_zone": policy.catalogue.timezone,
    }


def facts_of(report: Report, place: Place, policy: Policy, now: datetime) -> Facts:
    """What the routing rules see of a report: its tags, source, place and time."""
    grid = policy.jurisdiction.grids.get(place.grid_id) if place.grid_id else None
    return Facts(
        category=report.service_code,
        at=report.submitted_at or now,
        flags=frozenset(report.flags),
        labels=frozenset(report.labels),
        severity=report.severity,
        source=report.source,
        grid_kind=grid.grid_kind if grid else None,
        street_id=place.street_id,
        district_id=place.district_id,
    )


def rule_limits(decision: Decision) -> dict[Tier, timedelta]:
    """The time limits the rules set, as written (the severity factor does not scale them:
    a rule that wants urgent reports sooner matches on severity and says so)."""
    return {tier: timedelta(hours=h) for tier, h in decision.time_limits_hours.items()}


def order_limits(order: WorkOrder, policy: Policy) -> TimeLimits:
    """The time limits an order's later assignments take: the catalogue's for its category,
    with the tiers its routing rules set at open replaced, on the calendar a rule named (or
    the category's)."""
    limits = policy.time_limits(order.category, order.rule_calendar)
    limits.update({tier: timedelta(hours=h) for tier, h in order.rule_limits})
    return limits


def first_time_limits(policy: Policy, service_code: str, severity: Severity) -> TimeLimits:
    """The time limits of an order's first assignment: the catalogue's, times the factor of
    the report's severity (an urgent report is due sooner). Escalations use the
    catalogue's limits as they are."""
    factor = policy.catalogue.tagging.factor(severity)
    return policy.time_limits(service_code).scaled(factor)


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
