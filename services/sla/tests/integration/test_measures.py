"""The incremental measurement against the real PostgreSQL: resolutions move the tallies
once each however often they are delivered, a reopened order's later resolution replaces
its earlier one, and the figures asked for any scope, category, window or month are the
ones a count of the resolutions gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from gridline.common.clock import ManualClock
from gridline.common.events import PolicyActivated, WorkOrderResolved
from gridline.common.inbox import RetentionSweep
from gridline.common.pg import Pool
from gridline.common.settings import InboxSettings
from gridline.sla.adapters import tallies
from gridline.sla.domain.measures import Figures, MeasureProblem
from gridline.sla.handlers import Sla

from .test_sla_batches import assigned, incoming, ref

pytestmark = pytest.mark.integration

# 01:00 UTC is 09:00 in Shanghai: the catalogue's days, not UTC's, are counted.
NOW = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)


def resolution(
    order: str,
    *,
    tier: str,
    grid: str,
    version: int = 3,
    late: bool = False,
    at: datetime = NOW,
    category: str = "garbage",
) -> WorkOrderResolved:
    fields: dict[str, Any] = {
        **ref(order, version, category=category),
        "grid_id": grid,
        "community_id": f"c-{grid}",
        "time_zone": "Asia/Shanghai",
    }
    return WorkOrderResolved(
        **fields,
        tier=tier,
        unit_id=f"{tier}-unit",
        unit_name=tier,
        resolved_by_unit_id=f"{tier}-unit",
        opened_at=at - timedelta(hours=2),
        resolved_at=at,
        due_at=at - timedelta(hours=1) if late else at + timedelta(hours=1),
    )


async def ask(pool: Pool, sla: Sla, scope: str = "city", **kw: Any) -> Figures:
    kw.setdefault("category", "*")
    kw.setdefault("window", None)
    kw.setdefault("month", None)
    async with pool.acquire() as conn:
        _, _, f = await sla.measures(conn, scope=scope, **kw)
    return f


async def test_figures_follow_each_resolution_once_for_every_scope_and_window(
    pool: Pool,
) -> None:
    sla = Sla(ManualClock(NOW), "/gridline/sla", [3600.0])
    catalogue = PolicyActivated(
        kind="catalogue",
        version="c1",
        activated_at=NOW,
        catalogue={"timezone": "Asia/Shanghai", "targets": {"grid": 0.6}},
    )
    batch = [
        resolution("o1", tier="grid", grid="g1"),
        resolution("o2", tier="grid", grid="g1", late=True),
        resolution("o3", tier="community", grid="g2"),
        resolution("o4", tier="department", grid="g2", category="waterlogging"),
        # Twelve days ago in Shanghai: in the 30-day window, not the 7-day one.
        resolution("o5", tier="street", grid="g1", at=NOW - timedelta(days=12)),
    ]
    async with pool.acquire() as conn, conn.transaction():
        await sla.on_policies(conn, incoming(catalogue))
        await sla.on_resolutions(conn, incoming(*batch))
    async with pool.acquire() as conn, conn.transaction():  # delivered again: no change
        await sla.on_resolutions(conn, incoming(*batch))

    city = await ask(pool, sla, window="30d")
    assert city.resolved == 5
    assert city.resolved_by_tier == {"grid": 2, "community": 1, "street": 1, "department": 1}
    assert city.attainment == {"grid": 0.4, "community": 0.6, "street": 0.8}
    assert city.on_time_rate == 0.8
    assert city.mean_hours_to_resolve == 2.0
    assert city.targets == {"grid": 0.6, "community": 0.8, "street": 0.95}

    week = await ask(pool, sla, window="7d")
    assert week.resolved == 4
    grid = await ask(pool, sla, "grid:g1", window="7d")
    assert (grid.resolved, grid.attainment["grid"], grid.on_time_rate) == (2, 1.0, 0.5)
    community = await ask(pool, sla, "community:c-g2", window="30d")
    assert community.resolved_by_tier == {"grid": 0, "community": 1, "street": 0, "department": 1}
    flooding = await ask(pool, sla, "street:s1", category="waterlogging", window="1d")
    assert (flooding.resolved, flooding.attainment["street"]) == (1, 0.0)
    november = await ask(pool, sla, month="2026-11")
    assert november.resolved == 5
    october = await ask(pool, sla, month="2026-10")
    assert october.resolved == 0 and october.attainment["grid"] is None

    # Reopened and resolved again, at the street this time and late: it counts once, as
    # its latest resolution; an older resolution delivered after it changes nothing.
    again = resolution("o1", tier="street", grid="g1", version=5, late=True)
    async with pool.acquire() as conn, conn.transaction():
        await sla.on_resolutions(conn, incoming(again))
        await sla.on_resolutions(conn, incoming(resolution("o1", tier="grid", grid="g1")))
    after = await ask(pool, sla, window="30d")
    assert after.resolved == 5
    assert after.resolved_by_tier == {"grid": 1, "community": 1, "street": 2, "department": 1}
    assert after.on_time_rate == 0.6

    # What the figures say is what a count of the stored resolutions says.
    rows = await pool.fetch("SELECT tier, resolved_at <= due_at AS on_time FROM resolutions")
    assert len(rows) == after.resolved
    assert sum(r["on_time"] for r in rows) / len(rows) == after.on_time_rate


async def test_a_question_that_cannot_be_answered_is_refused_with_what_to_write(
    pool: Pool,
) -> None:
    sla = Sla(ManualClock(NOW), "/gridline/sla", [3600.0])
    with pytest.raises(MeasureProblem, match="scope:"):
        await ask(pool, sla, "town:1")
    with pytest.raises(MeasureProblem, match="month: YYYY-MM"):
        await ask(pool, sla, month="11/2026")


async def test_metrics_attainment_sums_rolling_hours_and_follows_a_replaced_resolution(
    pool: Pool,
) -> None:
    clock = ManualClock(NOW)
    sla = Sla(clock, "/gridline/sla", [3600.0])
    batch = [
        resolution("o1", tier="grid", grid="g1"),
        resolution("o2", tier="street", grid="g1", at=NOW - timedelta(hours=30)),
        resolution("o3", tier="community", grid="g1", at=NOW - timedelta(days=10)),
        resolution("o4", tier="grid", grid="g1", at=NOW - timedelta(days=40)),
    ]
    async with pool.acquire() as conn, conn.transaction():
        await sla.on_resolutions(conn, incoming(*batch))
        await sla.on_resolutions(conn, incoming(*batch))  # redelivered: no change

    def street(figures: dict[str, list[Any]], window: str) -> dict[str, tuple[float, int]]:
        return {
            a.tier.value: (a.ratio, a.resolved)
            for a in figures[window]
            if (a.scope_level, a.scope_id) == ("street", "s1")
        }

    async with pool.acquire() as conn:
        figures = await sla.attainment(conn)
    assert street(figures, "1d") == {"grid": (1.0, 1), "community": (1.0, 1), "street": (1.0, 1)}
    assert street(figures, "7d")["grid"] == (0.5, 2)
    assert street(figures, "30d") == {
        "grid": (1 / 3, 3),
        "community": (2 / 3, 3),
        "street": (1.0, 3),
    }
    assert {(a.scope_level, a.scope_id) for a in figures["30d"]} == {
        ("city", "city"),
        ("district", "d1"),
        ("street", "s1"),
    }
    # The hour of the 40-day-old resolution is older than the longest window: dropped.
    assert (
        await pool.fetchval("SELECT count(*) FROM hourly WHERE hour < $1", NOW - timedelta(days=31))
        == 0
    )

    # o1 reopened and resolved again at the department: its grid resolution leaves the
    # hour it was in. A day later it has left the 1d window.
    async with pool.acquire() as conn, conn.transaction():
        await sla.on_resolutions(
            conn, incoming(resolution("o1", tier="department", grid="g1", version=5))
        )
    clock.advance(timedelta(days=1))
    async with pool.acquire() as conn:
        figures = await sla.attainment(conn)
    assert street(figures, "1d") == {}
    assert street(figures, "7d")["street"] == (0.5, 2)


async def test_the_marks_of_counted_events_are_forgotten_with_the_inbox(
    pool: Pool, sla: Sla
) -> None:
    batch = [assigned(f"o{i}") for i in range(3)]
    async with pool.acquire() as conn, conn.transaction():
        await sla.on_assignments(conn, incoming(*batch))
    assert await pool.fetchval("SELECT count(*) FROM measured") == 3
    await pool.execute(
        "UPDATE measured SET measured_at = now() - interval '8 days' WHERE work_order_id = 'o0'"
    )
    sweep = RetentionSweep(pool, InboxSettings(), CollectorRegistry(), committed=dict)
    sweep.also("measured", tallies.forget_measured)
    assert await sweep.sweep_once() == {"inbox": 0, "measured": 1}
    rows = await pool.fetch("SELECT work_order_id FROM measured ORDER BY 1")
    assert [r[0] for r in rows] == ["o1", "o2"]
    # Within the retention a copy still moves nothing.
    async with pool.acquire() as conn, conn.transaction():
        await sla.on_assignments(conn, incoming(batch[1]))
    assert (
        await pool.fetchval("SELECT sum(opened) FROM flows WHERE scope = 'city' AND category = '*'")
        == 3
    )


async def test_naming_known_units_again_writes_nothing(pool: Pool) -> None:
    """An upsert whose update changes nothing still locks the row (sets its xmax, a WAL
    record): names already stored are left out before the insert."""
    names = {"grid:g1": ("一网格", "Grid 1"), "street:s1": ("一街道", "Street 1")}
    async with pool.acquire() as conn:
        await tallies.name_units(conn, names)
        stored = await conn.fetch("SELECT unit, xmin::text, xmax::text FROM unit_names ORDER BY 1")
        await tallies.name_units(conn, {**names, "street:s1": (None, "Street 1")})
        again = await conn.fetch("SELECT unit, xmin::text, xmax::text FROM unit_names ORDER BY 1")
        assert [tuple(r) for r in again] == [tuple(r) for r in stored]
        # A changed name is still stored, and a missing one keeps what was known.
        await tallies.name_units(conn, {"grid:g1": (None, "Grid One"), "grid:g2": ("二", None)})
        rows = await conn.fetch("SELECT unit, name_zh, name_en FROM unit_names ORDER BY 1")
    assert [tuple(r) for r in rows] == [
        ("grid:g1", "一网格", "Grid One"),
        ("grid:g2", "二", None),
        ("street:s1", "一街道", "Street 1"),
    ]
