"""The measurement beyond attainment against the real PostgreSQL: escalations, reopenings,
openings, feedback, completions, call-ins and returns move the flows, tier and unit
tallies once each however often (and under whatever event id) they are delivered; the
rankings and the monthly report are read back from them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from gridline.common.clock import ManualClock
from gridline.common.events import (
    Assignment,
    DepartmentCalledIn,
    DepartmentReportedIn,
    FeedbackGiven,
    Place,
    PolicyActivated,
    WorkOrderAssigned,
    WorkOrderEscalated,
    WorkOrderReopened,
    WorkOrderReturned,
)
from gridline.common.pg import Pool
from gridline.sla import measuring
from gridline.sla.domain.measures import MeasureProblem, UnknownScope
from gridline.sla.entrypoints.reports import as_csv, monthly_rows
from gridline.sla.handlers import Sla

from .test_measures import NOW, resolution
from .test_sla_batches import incoming, ref

pytestmark = pytest.mark.integration

TODAY = NOW.date()  # 09:00 in Shanghai, the same day


def where(order: str, version: int, grid: str = "g1", street: str = "s1") -> dict[str, Any]:
    return {
        **ref(order, version, street=street),
        "grid_id": grid,
        "community_id": f"c-{grid}",
        "time_zone": "Asia/Shanghai",
    }


def assignment(seq: int, tier: str, unit: str) -> Assignment:
    return Assignment(
        seq=seq,
        tier=tier,
        unit_id=unit,
        unit_name=unit,
        unit_name_zh=f"{unit}网格",
        unit_level=tier,
        assigned_at=NOW,
        due_at=NOW + timedelta(hours=4),
    )


def opened(order: str, source: str, grid: str = "g1") -> WorkOrderAssigned:
    return WorkOrderAssigned(
        **where(order, 1, grid),
        source=source,
        lat=31.7,
        lon=119.9,
        opened_at=NOW - timedelta(hours=3),
        assignment=assignment(1, "grid", grid),
    )


def escalated(order: str, version: int, reason: str) -> WorkOrderEscalated:
    return WorkOrderEscalated(
        **where(order, version),
        reason=reason,
        from_tier="grid",
        from_unit_id="g1",
        assignment=assignment(2, "community", "c-g1"),
    )


def reopened(order: str, version: int, tier: str, grid: str = "g1") -> WorkOrderReopened:
    return WorkOrderReopened(
        **where(order, version, grid),
        resolved_tier=tier,
        resolved_at=NOW - timedelta(hours=1),
        source="citizen",
        opened_at=NOW - timedelta(hours=3),
        assignment=assignment(3, tier, grid),
    )


def feedback(fid: str, order: str, satisfaction: int) -> FeedbackGiven:
    return FeedbackGiven(
        feedback_id=fid,
        report_id=f"r-{order}",
        work_order_id=order,
        resolved_version=3,
        outcome="confirm" if satisfaction >= 3 else "reject",
        satisfaction=satisfaction,
        reopen=False,
        given_at=NOW,
    )


async def _catalogue(pool: Pool, sla: Sla) -> None:
    catalogue = PolicyActivated(
        kind="catalogue", version="c1", activated_at=NOW, catalogue={"timezone": "Asia/Shanghai"}
    )
    async with pool.acquire() as conn, conn.transaction():
        await sla.on_policies(conn, incoming(catalogue))


async def test_each_event_moves_the_figures_once_however_often_it_is_delivered(
    pool: Pool,
) -> None:
    sla = Sla(ManualClock(NOW), "/gridline/sla", [3600.0])
    await _catalogue(pool, sla)
    flow = [
        opened("o1", "grid_worker"),
        opened("o2", "citizen"),
        opened("o3", "grid_worker", grid="g2"),
        opened("o4", "hotline"),
        escalated("o2", 2, "timeout"),
        escalated("o4", 2, "whistle"),
    ]
    resolved = [
        resolution("o1", tier="grid", grid="g1"),  # 2 h to resolve, on time
        resolution("o2", tier="community", grid="g1", late=True),
        resolution("o3", tier="grid", grid="g2"),
    ]
    for _ in range(2):  # the second time under new event ids: nothing moves
        async with pool.acquire() as conn, conn.transaction():
            # A feedback that arrives before its order's resolution waits for it.
            await measuring.feedbacks(conn, incoming(feedback("f1", "o1", 5)))
            await sla.on_assignments(conn, incoming(*flow))
            await sla.on_resolutions(conn, incoming(*resolved))
            await measuring.feedbacks(conn, incoming(feedback("f2", "o2", 2)))

    async with pool.acquire() as conn:
        q = await measuring.quality(conn, "city", "*", TODAY, TODAY)
        g1 = await measuring.quality(conn, "grid:g1", "*", TODAY, TODAY)
    assert (q.opened, q.discovered) == (4, 2)
    assert q.escalations == {"timeout": 1, "whistle": 1, "rule": 0}
    assert q.escalation_rate == {"timeout": 0.25, "whistle": 0.25, "rule": 0.0}
    assert (q.reopened, q.rework_rate) == (0, 0.0)
    assert q.on_time_rate_by_tier == {
        "grid": 1.0,
        "community": 0.0,
        "street": None,
        "department": None,
    }
    p50 = q.hours_to_resolve["grid"]["p50"]
    assert p50 is not None and 2 / 1.0905 <= p50 <= 2 * 1.0905  # within a bucket of 2 h
    assert q.hours_to_resolve["street"] == {"p50": None, "p90": None, "p99": None}
    assert (q.feedbacks, q.mean_satisfaction, q.satisfied_share) == (2, 3.5, 0.5)
    assert (g1.opened, g1.discovered, g1.feedbacks) == (3, 1, 2)

    # o1 reopened by its reporter (rework against the grid) and resolved again, later and
    # at the street: counted once more as the latest resolution, the rework stays.
    again = resolution("o1", tier="street", grid="g1", version=5, at=NOW + timedelta(hours=20))
    for _ in range(2):
        async with pool.acquire() as conn, conn.transaction():
            await sla.on_assignments(conn, incoming(reopened("o1", 4, "grid")))
            await sla.on_resolutions(conn, incoming(again))
    async with pool.acquire() as conn:
        q = await measuring.quality(conn, "city", "*", TODAY, TODAY)
        ranking = await measuring.ranking(conn, TODAY, "street:s1", "grid", None, "2026-11")
    assert q.reopened == 1 and q.reopened_by_tier["grid"] == 1
    assert q.rework_rate == 1 / 2  # o1 now resolved tomorrow: o2, o3 resolved today
    assert sum(1 for t in ("grid", "community") if q.hours_to_resolve[t]["p50"]) == 2
    # Grids of street s1: g2 did everything on time without rework; g1 was reworked.
    assert [(a.unit, a.rank) for a in ranking.units] == [("grid:g2", 1), ("grid:g1", 2)]
    g1_unit = ranking.units[1].tally
    assert (g1_unit.discovered, g1_unit.completed, g1_unit.reopened) == (1, 1, 1)
    assert ranking.names["grid:g1"] == ("g1网格", "g1")


async def test_departments_are_assessed_on_report_in_completion_and_returns(pool: Pool) -> None:
    sla = Sla(ManualClock(NOW), "/gridline/sla", [3600.0])
    await _catalogue(pool, sla)
    names = {"department_name_zh": "水务局", "department_name_en": "Water"}

    def call(order: str, dept: str) -> DepartmentCalledIn:
        return DepartmentCalledIn(
            **where(order, 2),
            call_seq=1,
            department_id=dept,
            **names,
            called_by_unit_id="s1",
            called_at=NOW,
            report_in_due_at=NOW + timedelta(hours=1),
        )

    def answer(order: str, dept: str, late: bool) -> DepartmentReportedIn:
        return DepartmentReportedIn(
            **where(order, 3),
            call_seq=1,
            department_id=dept,
            **names,
            reported_in_at=NOW,
            late=late,
        )

    returned = WorkOrderReturned(
        **where("o3", 2),
        reason="not ours",
        by_unit_id="water",
        from_tier="department",
        from_unit_id="water",
        assignment=None,
        returned_at=NOW,
    )
    events = [
        call("o1", "water"),
        answer("o1", "water", late=False),
        call("o2", "parks"),
        answer("o2", "parks", late=True),
        returned,
    ]
    for _ in range(2):
        async with pool.acquire() as conn, conn.transaction():
            await sla.on_lifecycle(conn, incoming(*events))
    async with pool.acquire() as conn:
        ranking = await measuring.ranking(conn, TODAY, "district:d1", "department", "7d", None)
        city = await measuring.ranking(conn, TODAY, "city", "department", "7d", None)
    by_unit = {a.unit: a for a in ranking.units}
    assert by_unit["department:water"].tally.calls == 1
    assert by_unit["department:water"].report_in_share == 1.0
    assert by_unit["department:water"].return_share == 1.0  # returned, completed none
    assert by_unit["department:parks"].report_in_share == 0.0
    assert [a.unit for a in ranking.units] == ["department:water", "department:parks"]
    assert [a.unit for a in city.units] == [a.unit for a in ranking.units]
    assert ranking.names["department:water"] == ("水务局", "Water")


async def test_the_monthly_report_has_a_header_and_a_row_per_unit(pool: Pool) -> None:
    sla = Sla(ManualClock(NOW), "/gridline/sla", [3600.0])
    await _catalogue(pool, sla)
    async with pool.acquire() as conn, conn.transaction():
        await sla.on_assignments(conn, incoming(opened("o1", "grid_worker")))
        await sla.on_resolutions(conn, incoming(resolution("o1", tier="grid", grid="g1")))
    async with pool.acquire() as conn:
        _, _, rows = await monthly_rows(conn, "s1", "2026-11", TODAY)
    assert [(r["level"], r["unit"]) for r in rows] == [
        ("street", "s1"),
        ("community", "c-g1"),
        ("grid", "g1"),
    ]
    text = as_csv(rows).decode("utf-8")
    assert text.startswith("\ufeff层级 (level),单位编码 (unit),单位名称 (name_zh)")
    lines = text.splitlines()
    assert len(lines) == 4
    grid = dict(zip(lines[0].lstrip("\ufeff").split(","), lines[3].split(","), strict=True))
    assert grid["层级 (level)"] == "grid" and grid["单位名称 (name_zh)"] == "g1网格"
    assert grid["发现问题数 (discovered)"] == "1" and grid["本级办结数 (completed)"] == "1"
    assert grid["网格内解决率 (grid_attainment)"] == "1.0"


async def test_a_ranking_that_cannot_be_asked_is_refused_with_what_to_write(pool: Pool) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(MeasureProblem, match="level: grid or community"):
            await measuring.ranking(conn, TODAY, "street:s1", "department", None, None)
        with pytest.raises(MeasureProblem, match="month: YYYY-MM"):
            await monthly_rows(conn, "s1", "2026/11", TODAY)


async def test_a_ranking_lists_every_unit_of_the_jurisdiction_and_catalogue_in_effect(
    pool: Pool,
) -> None:
    """Units with nothing counted in the days are listed too (score 0, last), once a
    jurisdiction's places and a catalogue's departments are known; a new jurisdiction
    replaces the old one's units."""
    sla = Sla(ManualClock(NOW), "/gridline/sla", [3600.0])

    def place(unit: str, level: str, parent: str) -> Place:
        return Place(id=unit, level=level, name=f"{unit}名", lon=119.9, lat=31.7, parent_id=parent)

    jurisdiction = PolicyActivated(
        kind="jurisdiction",
        version="j1",
        activated_at=NOW,
        places=[
            place("g1", "grid", "c-g1"),
            place("g9", "grid", "c-g1"),
            place("gx", "grid", "c-elsewhere"),  # its community is not among the places
            place("c-g1", "community", "s1"),
            place("s1", "street", "d1"),
        ],
    )
    catalogue = PolicyActivated(
        kind="catalogue",
        version="c1",
        activated_at=NOW,
        catalogue={
            "timezone": "Asia/Shanghai",
            "departments": [{"id": "dept-a", "name_zh": "甲局", "name_en": "Bureau A"}],
        },
    )
    async with pool.acquire() as conn, conn.transaction():
        await sla.on_policies(conn, incoming(jurisdiction, catalogue))
        await sla.on_resolutions(conn, incoming(resolution("o1", tier="grid", grid="g1")))
    async with pool.acquire() as conn:
        grids = await measuring.ranking(conn, TODAY, "street:s1", "grid", "7d", None)
        streets = await measuring.ranking(conn, TODAY, "district:d1", "street", "7d", None)
        departments = await measuring.ranking(conn, TODAY, "city", "department", "7d", None)
    assert [(a.unit, a.rank, a.tally.completed) for a in grids.units] == [
        ("grid:g1", 1, 1),
        ("grid:g9", 2, 0),
    ]
    assert grids.units[1].score == 0 and grids.units[1].on_time_share is None
    assert grids.names["grid:g9"] == ("g9名", "g9名")
    assert [a.unit for a in streets.units] == ["street:s1"]
    assert [a.unit for a in departments.units] == ["department:dept-a"]
    assert departments.names["department:dept-a"] == ("甲局", "Bureau A")

    moved = jurisdiction.model_copy(
        update={"version": "j2", "places": [place("s1", "street", "d1")]}
    )
    async with pool.acquire() as conn, conn.transaction():
        await sla.on_policies(conn, incoming(moved))
    async with pool.acquire() as conn:
        grids = await measuring.ranking(conn, TODAY, "street:s1", "grid", "7d", None)
    assert [a.unit for a in grids.units] == ["grid:g1"]  # counted, so still ranked


async def test_a_scope_sla_never_heard_of_is_unknown_not_a_quiet_unit(pool: Pool) -> None:
    """Before any policy reaches sla nothing is judged; after, a scope must be a unit of a
    jurisdiction or catalogue put into effect, a district with streets, or counted once:
    anything else (a mistyped id) is UnknownScope (404), not figures of zeros."""
    sla = Sla(ManualClock(NOW), "/gridline/sla", [3600.0])

    async def ask(scope: str) -> int:
        async with pool.acquire() as conn:
            _, _, f = await sla.measures(conn, scope=scope, category="*", window="7d", month=None)
        return f.resolved

    assert await ask("street:s-typo") == 0  # no policy yet: no judgement
    places = [
        Place(id=s, level="street", name=f"{s}名", lon=119.9, lat=31.7, parent_id=d)
        for s, d in (("s1", "d1"), ("s2", "d2"))
    ]
    jurisdiction = PolicyActivated(
        kind="jurisdiction", version="j1", activated_at=NOW, places=places
    )
    async with pool.acquire() as conn, conn.transaction():
        await sla.on_policies(conn, incoming(jurisdiction))
        # Counted under a grid and community no jurisdiction in effect names.
        await sla.on_resolutions(conn, incoming(resolution("o1", tier="grid", grid="g-old")))
    assert await ask("street:s2") == 0  # in the jurisdiction, nothing counted
    assert await ask("district:d2") == 0  # a district of its streets, nothing counted
    assert await ask("grid:g-old") == 1  # counted once: its figures stay askable
    assert await ask("street:s1") == 1
    for unknown in ("street:s-typo", "district:d-typo", "grid:天宁/1"):
        with pytest.raises(UnknownScope, match=f"scope: no {unknown.split(':')[0]} "):
            await ask(unknown)
    async with pool.acquire() as conn:
        with pytest.raises(UnknownScope, match="no street 's-typo'"):
            await monthly_rows(conn, "s-typo", "2026-11", TODAY)
        with pytest.raises(UnknownScope, match="no street 's-typo'"):
            await measuring.ranking(conn, TODAY, "street:s-typo", "grid", "7d", None)
