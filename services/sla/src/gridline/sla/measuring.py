"""sla's use cases for the measurement beyond attainment: what openings, escalations,
reopenings, returns, call-ins, report-ins, resolutions and reporters' feedback move in the
flows, tier tallies and unit tallies, and the questions the API asks of them.

Each count is moved once per event: a work-order event is counted under its natural
identity (the order and its version) in the transaction that counts it, so that a
redelivery, under the same event id or another, moves nothing again; a feedback under its
feedback id; a resolution by the version check of adapters/store.record_resolutions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from gridline.common.consumer import Incoming
from gridline.common.events import (
    Assignment,
    DepartmentCalledIn,
    DepartmentReportedIn,
    FeedbackGiven,
    WorkOrderAssigned,
    WorkOrderEscalated,
    WorkOrderReopened,
    WorkOrderResolved,
    WorkOrderReturned,
)
from gridline.common.pg import Connection
from gridline.common.policy.tiers import Tier
from gridline.sla.adapters import store, tallies
from gridline.sla.domain import assessment, flows, measures
from gridline.sla.domain.assessment import UnitItem, UnitTally
from gridline.sla.domain.flows import FlowItem, Place, Reopening
from gridline.sla.domain.measures import local_day


def place_of(e: Any) -> Place:
    """Where a work-order event's order is (any WorkOrderRef)."""
    return Place(e.grid_id, e.community_id, e.street_id, e.district_id)


async def _first_time(conn: Connection, events: Sequence[Incoming[Any]]) -> list[Any]:
    """The events' payloads not counted before, in order (now marked counted)."""
    new = await tallies.first_time(conn, [(e.data.work_order_id, e.data.version) for e in events])
    seen: set[tuple[str, int]] = set()
    result = []
    for e in events:
        key = (e.data.work_order_id, e.data.version)
        if key in new and key not in seen:
            seen.add(key)
            result.append(e.data)
    return result


def _names(assignments: Sequence[Assignment]) -> dict[str, tuple[str | None, str | None]]:
    return {
        f"{a.unit_level}:{a.unit_id}": (
            a.unit_name_zh or a.unit_name,
            a.unit_name_en or a.unit_name,
        )
        for a in assignments
    }


async def assignments(
    conn: Connection,
    events: Sequence[Incoming[WorkOrderAssigned | WorkOrderEscalated | WorkOrderReopened]],
) -> None:
    """Openings (and problems discovered on patrol), escalations by reason, reopenings
    against the tier that had resolved the order; the assigned units' names."""
    moved: list[FlowItem] = []
    reopened: list[Reopening] = []
    units: list[UnitItem] = []
    for e in await _first_time(conn, events):
        place = place_of(e)
        if isinstance(e, WorkOrderEscalated):
            day = local_day(e.assignment.assigned_at, e.time_zone)
            moved.append((place, e.category, day, flows.escalation(e.reason)))
        elif isinstance(e, WorkOrderReopened):
            day = local_day(e.assignment.assigned_at, e.time_zone)
            tier = Tier(e.resolved_tier)
            moved.append((place, e.category, day, flows.Flow(reopened=1)))
            reopened.append(Reopening(place, e.category, day, tier))
            ranked = assessment.units_of(place, tier, e.assignment.unit_id)
            units.append((ranked, day, UnitTally(reopened=1)))
        elif e.version <= 1:  # assigned after triage: the opening was counted already
            day = local_day(e.opened_at, e.time_zone)
            moved.append((place, e.category, day, flows.opening(e.source)))
            if e.source == flows.PATROL:
                units.append((assessment.discoverers(place), day, UnitTally(discovered=1)))
    await tallies.add_to_flows(conn, flows.flow_changes(moved))
    await tallies.add_to_tiers(conn, flows.tier_changes([], [], reopened))
    await tallies.add_to_units(conn, assessment.unit_changes(units))
    await tallies.name_units(
        conn, _names([e.data.assignment for e in events if e.data.assignment is not None])
    )


async def lifecycle(conn: Connection, events: Sequence[Incoming[Any]]) -> None:
    """Departments' call-ins and report-ins, and returns (退回) by the returning unit."""
    measured = [
        e
        for e in events
        if isinstance(e.data, DepartmentCalledIn | DepartmentReportedIn | WorkOrderReturned)
    ]
    if not measured:
        return
    units: list[UnitItem] = []
    names: dict[str, tuple[str | None, str | None]] = {}
    for e in await _first_time(conn, measured):
        place = place_of(e)
        if isinstance(e, DepartmentCalledIn):
            ranked = assessment.units_of(place, Tier.DEPARTMENT, e.department_id)
            units.append((ranked, local_day(e.called_at, e.time_zone), UnitTally(calls=1)))
            names[f"department:{e.department_id}"] = (e.department_name_zh, e.department_name_en)
        elif isinstance(e, DepartmentReportedIn):
            ranked = assessment.units_of(place, Tier.DEPARTMENT, e.department_id)
            day = local_day(e.reported_in_at, e.time_zone)
            units.append((ranked, day, UnitTally(reported_on_time=int(not e.late))))
        elif isinstance(e, WorkOrderReturned):
            ranked = assessment.units_of(place, Tier(e.from_tier), e.from_unit_id)
            units.append((ranked, local_day(e.returned_at, e.time_zone), UnitTally(returns=1)))
    await tallies.add_to_units(conn, assessment.unit_changes(units))
    await tallies.name_units(conn, names)


async def resolutions(
    conn: Connection,
    fresh: Sequence[WorkOrderResolved],
    added: Sequence[measures.Counted],
    removed: Sequence[measures.Counted],
) -> None:
    """New resolutions (`fresh`, counted as `added`; `removed`: the earlier resolutions
    they replace) move the tier tallies and the resolving units' completions; feedbacks
    that arrived before their order's resolution are counted now."""
    await tallies.add_to_tiers(conn, flows.tier_changes(added, removed))
    units: list[UnitItem] = []
    for e, c in zip(fresh, added, strict=True):
        ranked = assessment.units_of(place_of(e), c.tier, e.resolved_by_unit_id)
        on_time = UnitTally(
            completed=1, timed=int(c.on_time is not None), on_time=int(bool(c.on_time))
        )
        units.append((ranked, c.day, on_time))
    await tallies.add_to_units(conn, assessment.unit_changes(units))
    await _count_feedbacks(conn, [e.work_order_id for e in fresh])


async def feedbacks(conn: Connection, events: Sequence[Incoming[FeedbackGiven]]) -> None:
    """Each feedback once, by its feedback id; counted in the scopes of its order's stored
    resolution on the feedback's own day, or later when that resolution arrives."""
    zone = await store.time_zone(conn)
    new_orders = await tallies.record_feedbacks(
        conn,
        [
            tallies.Feedback(
                e.data.feedback_id,
                e.data.work_order_id,
                e.data.satisfaction,
                e.data.outcome,
                local_day(e.data.given_at, zone),
            )
            for e in events
        ],
    )
    await _count_feedbacks(conn, new_orders)


async def _count_feedbacks(conn: Connection, order_ids: Sequence[str]) -> None:
    counted = await tallies.count_pending_feedbacks(conn, order_ids)
    await tallies.add_to_flows(
        conn,
        flows.flow_changes(
            (c.place, c.category, c.day, flows.feedback(c.satisfaction)) for c in counted
        ),
    )


async def qualities(
    conn: Connection, scopes: Sequence[str], category: str, first: date, last: date
) -> dict[str, flows.Quality]:
    """The quality figures of many scopes at once (two statements whatever their number)."""
    found = await tallies.flow_sums(conn, scopes, category, first, last)
    tiers = await tallies.tier_sums(conn, scopes, category, first, last)
    return {scope: flows.quality(found[scope], tiers[scope]) for scope in scopes}


async def quality(
    conn: Connection, scope: str, category: str, first: date, last: date
) -> flows.Quality:
    return (await qualities(conn, [scope], category, first, last))[scope]


@dataclass(frozen=True, slots=True)
class Ranking:
    scope: str
    level: str
    first_day: date
    last_day: date
    units: list[assessment.Assessed]
    names: dict[str, tuple[str | None, str | None]]


async def require_known(conn: Connection, scope: str) -> None:
    """Raise UnknownScope for a scope of a unit sla has never heard of (the city always
    is known)."""
    if scope != "city" and not await tallies.scope_known(conn, scope):
        level, _, unit = scope.partition(":")
        raise measures.UnknownScope(
            f"scope: no {level} {unit!r} in the jurisdiction or catalogue in effect, and"
            " nothing was ever counted for one; check the id (GET /v1/assessments lists the"
            " units)"
        )


async def ranking(
    conn: Connection, today: date, scope: str, level: str, window: str | None, month: str | None
) -> Ranking:
    """One ranking over a window or a month (raises MeasureProblem when it cannot be asked)."""
    assessment.check_ranking(scope, level)
    first, last = measures.window_days(today, window, month)
    await require_known(conn, scope)
    sums = await tallies.unit_sums(conn, scope, level, first, last)
    for unit in await tallies.known_units(conn, scope, level):  # listed with nothing counted
        sums.setdefault(unit, UnitTally())
    ranked = assessment.rank(level, sums)
    names = await tallies.unit_names(conn, [a.unit for a in ranked])
    return Ranking(scope, level, first, last, ranked, names)


async def policies(conn: Connection, events: Sequence[Any]) -> None:
    """The units rankings list: the latest jurisdiction's grids, communities and streets
    (from its places) and the latest catalogue's departments, with their names."""
    jurisdictions = [e for e in events if e.kind == "jurisdiction" and e.places]
    if jurisdictions:
        places = [p.model_dump() for p in jurisdictions[-1].places or []]
        await tallies.set_known_units(conn, assessment.PLACE_LEVELS, assessment.known_units(places))
        await tallies.name_units(
            conn, {f"{p['level']}:{p['id']}": (p["name"], p["name"]) for p in places}
        )
    catalogues = [e for e in events if e.kind == "catalogue" and e.catalogue]
    if catalogues:
        departments = (catalogues[-1].catalogue or {}).get("departments") or []
        await tallies.set_known_units(
            conn,
            ["department"],
            [assessment.KnownUnit("department", str(d["id"])) for d in departments],
        )
        await tallies.name_units(
            conn,
            {f"department:{d['id']}": (d.get("name_zh"), d.get("name_en")) for d in departments},
        )


async def today(conn: Connection, now: Any) -> date:
    """Today in the catalogue's time zone."""
    return local_day(now, await store.time_zone(conn))
