"""The work order and its lifecycle as pure functions: open, escalate, resolve, reopen, breach.

Each function takes the current state and returns the new state (and raises when the move
is not allowed); adapters persist the state and turn transitions into events.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from gridline.common.policy.calendar import WorkCalendar
from gridline.common.policy.tiers import Tier


class State(StrEnum):
    OPEN = "open"  # assigned to a unit at a tier, with a due time
    TRIAGE = "triage"  # in no grid: held at the district for manual triage
    RESOLVED = "resolved"
    ACCEPTED = "accepted"  # the holder acknowledged it (签收); still due as before
    CLOSED = "closed"  # resolved and confirmed, or the feedback window passed (结案)
    CANCELLED = "cancelled"  # a duplicate or invalid report (作废)


# Someone holds the order and works on it: it may be escalated, resolved, returned.
HELD = frozenset({State.OPEN, State.ACCEPTED})
# Nothing moves an order out of these.
TERMINAL = frozenset({State.CLOSED, State.CANCELLED})


class TransitionRefused(Exception):
    """The move is not allowed in the order's current state; the message says why."""


@dataclass(frozen=True)
class Place:
    """Where the report is, as units of the jurisdiction (None where unknown)."""

    grid_id: str | None
    community_id: str | None
    street_id: str | None
    district_id: str | None


@dataclass(frozen=True)
class WorkOrder:
    id: str
    report_id: str
    category: str
    department_id: str
    source: str
    lat: float
    lon: float
    place: Place
    state: State
    tier: Tier | None
    unit_id: str
    assignment_seq: int
    assigned_at: datetime
    due_at: datetime | None
    opened_at: datetime
    resolved_at: datetime | None
    version: int
    policy_version: str
    # Set by routing rules at open (domain/rules.py): departments that co-handle the order,
    # and time limits (hours per tier) that replace the catalogue's for this order.
    co_handlers: tuple[str, ...] = ()
    rule_limits: tuple[tuple[Tier, float], ...] = ()
    rule_calendar: str | None = None  # a calendar a rule named for the order's limits
    # The lifecycle beyond open/resolved (domain/lifecycle.py); defaults for a new order.
    accepted_at: datetime | None = None
    ended_at: datetime | None = None  # closed or cancelled
    end_reason: str | None = None
    resolved_tier: Tier | None = None  # the tier of the unit that resolved it
    reopen_count: int = 0  # rework (返工)
    call_in: CallIn | None = None


@dataclass(frozen=True)
class CallIn:
    """A department called in (吹哨) by a street or above; it must report in (报到) by
    `due_at` or the call escalates to the district. `seq` counts an order's calls."""

    seq: int
    department_id: str
    called_by: str
    called_at: datetime
    due_at: datetime
    reported_in_at: datetime | None = None
    escalated_at: datetime | None = None

    @property
    def pending(self) -> bool:
        """Called and not yet reported in (an escalated call still awaits its report-in)."""
        return self.reported_in_at is None


class TimeLimits(dict[Tier, timedelta]):
    """An order's time limits per tier, in working time on `calendar` (in the zone `zone`)
    when the category or a routing rule names one, else in clock time."""

    def __init__(
        self,
        limits: dict[Tier, timedelta],
        calendar: WorkCalendar | None = None,
        zone: str = "UTC",
    ) -> None:
        super().__init__(limits)
        self.calendar = calendar
        self.zone = zone

    def scaled(self, factor: float) -> TimeLimits:
        return TimeLimits({t: v * factor for t, v in self.items()}, self.calendar, self.zone)


def due_after(time_limit: dict[Tier, timedelta], tier: Tier, now: datetime) -> datetime:
    """When an assignment at `tier` made `now` is due: after the tier's limit of working
    time on the limits' calendar, or of clock time."""
    if isinstance(time_limit, TimeLimits) and time_limit.calendar is not None:
        return time_limit.calendar.add(now, time_limit[tier], time_limit.zone)
    return now + time_limit[tier]


def warning_points(
    assigned_at: datetime,
    due_at: datetime,
    calendar: WorkCalendar | None,
    zone: str,
    yellow: float,
    red: float,
) -> tuple[datetime, datetime]:
    """When an assignment shows yellow and red: those shares of its limit, the span from
    its assignment to its due time counted in working time on its limit's calendar (a
    yellow at 80 % of 4 working hours from Friday 16:00 falls on Monday at 10:12), or in
    clock time without one."""
    if calendar is None:
        span = due_at - assigned_at
        return assigned_at + span * yellow, assigned_at + span * red
    span = calendar.between(assigned_at, due_at, zone)
    return calendar.add(assigned_at, span * yellow, zone), calendar.add(
        assigned_at, span * red, zone
    )


def supervisor_of(tier: Tier, place: Place, department_id: str) -> str | None:
    """Who a red warning also goes to: the unit the order would escalate to, or for a
    department (nothing above it escalates) the district."""
    above = tier.next()
    if above is None:
        return place.district_id
    return entry_assignment(above, place, department_id)[1]


def unit_for(tier: Tier, place: Place, department_id: str) -> str | None:
    """The unit that holds an order at `tier`: the grid's ancestors, or the department."""
    return {
        Tier.GRID: place.grid_id,
        Tier.COMMUNITY: place.community_id,
        Tier.STREET: place.street_id,
        Tier.DEPARTMENT: department_id,
    }[tier]


def entry_assignment(entry: Tier, place: Place, department_id: str) -> tuple[Tier, str]:
    """The lowest tier at or above `entry` that has a unit for this place."""
    tier: Tier | None = entry
    while tier is not None:
        unit = unit_for(tier, place, department_id)
        if unit:
            return tier, unit
        tier = tier.next()
    raise TransitionRefused("no unit can hold this order")  # department always exists


def open_order(
    *,
    order_id: str,
    report_id: str,
    category: str,
    department_id: str,
    source: str,
    lat: float,
    lon: float,
    place: Place,
    entry: Tier,
    time_limit: dict[Tier, timedelta],
    now: datetime,
    policy_version: str,
    hold: bool = False,
) -> WorkOrder:
    """Open at the entry tier, or hold for triage at the district when the point lies in
    no grid or `hold` says a person must confirm the category first."""
    if place.grid_id is None or hold:
        state, tier, unit, due = State.TRIAGE, None, place.district_id or "", None
    else:
        state = State.OPEN
        tier, unit = entry_assignment(entry, place, department_id)
        due = due_after(time_limit, tier, now)
    return WorkOrder(
        id=order_id,
        report_id=report_id,
        category=category,
        department_id=department_id,
        source=source,
        lat=lat,
        lon=lon,
        place=place,
        state=state,
        tier=tier,
        unit_id=unit,
        assignment_seq=1,
        assigned_at=now,
        due_at=due,
        opened_at=now,
        resolved_at=None,
        version=1,
        policy_version=policy_version,
    )


def escalate(order: WorkOrder, *, time_limit: dict[Tier, timedelta], now: datetime) -> WorkOrder:
    """Move one tier up with a fresh due time."""
    if order.state not in HELD or order.tier is None:
        raise TransitionRefused(
            f"work order is {order.state.value}; only open or accepted orders escalate"
        )
    target = order.tier.next()
    if target is None:
        raise TransitionRefused("work order is already at the department tier, the top")
    return _assigned_again(order, target, time_limit=time_limit, now=now)


def _assigned_again(
    order: WorkOrder,
    tier: Tier,
    *,
    time_limit: dict[Tier, timedelta],
    now: datetime,
) -> WorkOrder:
    """The next assignment: held by the unit of `tier` above its place, due after that
    tier's time limit."""
    tier, unit = entry_assignment(tier, order.place, order.department_id)
    return replace(
        order,
        tier=tier,
        unit_id=unit,
        assignment_seq=order.assignment_seq + 1,
        assigned_at=now,
        due_at=due_after(time_limit, tier, now),
        version=order.version + 1,
        state=State.OPEN,  # a new holder has not accepted it yet
        accepted_at=None,
    )


def assign_from_triage(
    order: WorkOrder,
    *,
    place: Place,
    category: str,
    department_id: str,
    entry: Tier,
    time_limit: dict[Tier, timedelta],
    now: datetime,
) -> WorkOrder:
    """A person chose the grid (and maybe the category) of an order held for triage."""
    if order.state is not State.TRIAGE:
        raise TransitionRefused(
            f"work order is {order.state.value}; only orders held for triage are assigned"
        )
    if place.grid_id is None:
        raise TransitionRefused("choose a grid of the jurisdiction")
    placed = replace(
        order, category=category, department_id=department_id, place=place, state=State.OPEN
    )
    return _assigned_again(placed, entry, time_limit=time_limit, now=now)


def resolve(order: WorkOrder, *, now: datetime, by_tier: Tier | None = None) -> WorkOrder:
    """Resolved by a unit of `by_tier` (default: the holder's tier); a street resolving
    an order its grid holds is a street resolution."""
    if order.state is State.RESOLVED:
        raise TransitionRefused("work order is already resolved")
    if order.state is State.TRIAGE:
        raise TransitionRefused("work order is held for triage; assign it to a unit first")
    if order.state not in HELD:
        raise TransitionRefused(
            f"work order is {order.state.value}; only open or accepted orders are resolved"
        )
    return replace(
        order,
        state=State.RESOLVED,
        resolved_at=now,
        resolved_tier=by_tier or order.tier,
        version=order.version + 1,
    )


def reopen(order: WorkOrder, *, time_limit: dict[Tier, timedelta], now: datetime) -> WorkOrder:
    """The reporter rejected the resolution: open again, assigned anew to the tier that
    resolved it (its holder knows the case; a timeout escalates it as usual), with a new
    assignment number and a fresh due time."""
    if order.state is not State.RESOLVED or order.tier is None:
        raise TransitionRefused(f"work order is {order.state.value}; only resolved orders reopen")
    again = replace(
        order,
        state=State.OPEN,
        resolved_at=None,
        resolved_tier=None,
        reopen_count=order.reopen_count + 1,
    )
    return _assigned_again(again, order.tier, time_limit=time_limit, now=now)


def reopen_applies(order: WorkOrder, resolved_version: int) -> bool:
    """Feedback reopens only the resolution it was given on: once the order moved on
    (reopened already, by this feedback or another reporter's), it changes nothing."""
    return order.state is State.RESOLVED and order.version == resolved_version


def breach_applies(order: WorkOrder, assignment_seq: int) -> bool:
    """A breach counts only for the assignment it was set for: a late breach of an
    assignment that was already escalated or resolved changes nothing."""
    return (
        order.state in HELD
        and order.assignment_seq == assignment_seq
        and order.tier is not None
        and order.tier.next() is not None
    )
