"""Opening work orders under the demo rule file, against the real PostgreSQL: the outbox
says where each order went and why it moved, the history keeps the explanation, and the
order keeps what the rules set for its later assignments."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from gridline.common.clock import ManualClock
from gridline.common.consumer import Incoming
from gridline.common.events import (
    DeadlineBreached,
    ReportSubmitted,
    ReportTags,
    WorkOrderAssigned,
    WorkOrderEscalated,
    envelope_for,
)
from gridline.common.pg import Pool, migrate, open_pool
from gridline.common.policy.catalogue import Catalogue, RuleFile, load_catalogue_text
from gridline.common.settings import PostgresSettings
from gridline.operator.citygen import generate_city
from gridline.routing.bootstrap import MIGRATIONS
from gridline.routing.domain.jurisdiction import parse_jurisdiction
from gridline.routing.handlers import EventHandlers
from gridline.routing.metrics import RoutingMetrics
from gridline.routing.policy_cache import PolicyHolder

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[4]
AT = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
RULES_TEXT = (REPO / "config" / "rules.yaml").read_text("utf-8")
MODEL = load_catalogue_text((REPO / "config" / "catalogue.yaml").read_text("utf-8")).model
CATALOGUE = Catalogue(
    MODEL.model_copy(update={"rules": RuleFile(name="rules.yaml", text=RULES_TEXT)})
)
JURISDICTION = parse_jurisdiction(generate_city(1))
GRID = sorted(
    (g for g in JURISDICTION.grids.values() if g.grid_kind == "comprehensive"),
    key=lambda g: g.grid_id,
)[3]


def line_of(name: str) -> int:
    return RULES_TEXT.splitlines().index(f"  - name: {name}") + 1


def report(n: int, code: str, **tags: Any) -> tuple[str, ReportSubmitted]:
    point = GRID.geometry.representative_point()
    return f"e{n}", ReportSubmitted(
        report_id=f"r{n}",
        work_order_id=f"wo{n}",
        service_code=code,
        lat=point.y,
        lon=point.x,
        source="citizen",
        submitted_at=AT,
        tags=ReportTags(**tags),
    )


@pytest.fixture
async def pool(pg_settings: PostgresSettings, scratch_schema: str) -> AsyncIterator[Pool]:
    async with open_pool(pg_settings, scratch_schema) as pool:
        await migrate(pool, scratch_schema, [MIGRATIONS])
        yield pool


async def apply(handlers: EventHandlers, pool: Pool, kind: str, items: list[Any]) -> None:
    incoming = [
        Incoming(data, envelope_for(data, source="/test", time=AT, event_id=eid))
        for eid, data in items
    ]
    async with pool.acquire() as conn, conn.transaction():
        await getattr(handlers, kind)(conn, incoming)


async def outbox(pool: Pool) -> list[tuple[str, str, dict[str, Any]]]:
    rows = await pool.fetch("SELECT key, payload FROM outbox ORDER BY id")
    return [
        (r["key"], json.loads(r["payload"])["type"], json.loads(r["payload"])["data"]) for r in rows
    ]


async def test_rules_call_a_department_in_and_the_history_explains_it(pool: Pool) -> None:
    clock = ManualClock(AT)
    handlers = EventHandlers(
        clock,
        "/gridline/routing",
        RoutingMetrics(CollectorRegistry()),
        PolicyHolder(JURISDICTION, CATALOGUE),
    )
    await apply(
        handlers,
        pool,
        "reports_submitted",
        [
            report(1, "waterlogging"),
            report(2, "exposed-garbage", labels=["gas-smell"]),
            report(3, "exposed-garbage"),  # no rule matches: the grid, as without rules
        ],
    )

    events = await outbox(pool)
    assert [(key, kind) for key, kind, _ in events] == [
        ("wo1", WorkOrderAssigned.TYPE),
        ("wo1", WorkOrderEscalated.TYPE),
        ("wo2", WorkOrderAssigned.TYPE),
        ("wo2", WorkOrderEscalated.TYPE),
        ("wo3", WorkOrderAssigned.TYPE),
    ]
    first = WorkOrderAssigned.model_validate(events[0][2])
    assert first.assignment is not None
    assert (first.assignment.tier, first.assignment.seq) == ("street", 1)
    called = WorkOrderEscalated.model_validate(events[1][2])
    assert (called.reason, called.from_tier, called.assignment.seq) == ("rule", "street", 2)
    assert (called.assignment.tier, called.assignment.unit_id) == ("department", "dept-water")
    assert called.policy_version.endswith(CATALOGUE.version_hash)
    gas = WorkOrderEscalated.model_validate(events[3][2])
    assert (gas.assignment.unit_id, gas.assignment.due_at) == (
        "dept-emergency",
        AT + timedelta(hours=1),
    )
    plain = WorkOrderAssigned.model_validate(events[4][2])
    assert plain.assignment is not None
    assert (plain.assignment.tier, plain.assignment.unit_id) == ("grid", GRID.grid_id)

    rows = await pool.fetch(
        "SELECT version, event_type, detail FROM work_order_history"
        " WHERE work_order_id = 'wo2' ORDER BY version"
    )
    assert [(r["version"], r["event_type"]) for r in rows] == [
        (1, WorkOrderAssigned.TYPE),
        (2, WorkOrderEscalated.TYPE),
    ]
    why = rows[0]["detail"]["routing"]
    assert why["rules"] == [
        {
            "rule": "gas-smell",
            "line": line_of("gas-smell"),
            "continue": False,
            "set": {
                "call_in": "dept-emergency",
                "co_handlers": ["dept-fire"],
                "time_limits_hours": {"department": 1.0},
            },
        }
    ]
    assert (why["grid"]["id"], why["tier"], why["unit_id"]) == (
        GRID.grid_id,
        "department",
        "dept-emergency",
    )
    assert why["policy_version"] == called.policy_version
    assert rows[1]["detail"]["reason"] == "rule"
    stored = await pool.fetchrow("SELECT unit_id, rule_terms FROM work_orders WHERE id = 'wo2'")
    assert stored is not None
    assert (stored["unit_id"], stored["rule_terms"]) == (
        "dept-emergency",
        {"co_handlers": ["dept-fire"], "time_limits_hours": {"department": 1.0}},
    )


async def test_an_order_keeps_its_rule_limits_when_it_escalates(pool: Pool) -> None:
    night = AT + timedelta(hours=12)  # 22:00 in Shanghai: street lights are due sooner
    clock = ManualClock(night)
    handlers = EventHandlers(
        clock,
        "/gridline/routing",
        RoutingMetrics(CollectorRegistry()),
        PolicyHolder(JURISDICTION, CATALOGUE),
    )
    eid, data = report(7, "streetlight-out")
    item = (eid, data.model_copy(update={"submitted_at": night}))
    await apply(handlers, pool, "reports_submitted", [item])
    clock.advance(timedelta(hours=4))
    breach = DeadlineBreached(
        work_order_id="wo7",
        assignment_seq=1,
        tier="grid",
        unit_id=GRID.grid_id,
        due_at=night + timedelta(hours=4),
        breached_at=night + timedelta(hours=4),
    )
    await apply(handlers, pool, "deadlines_breached", [("b7", breach)])

    events = await outbox(pool)
    opened = WorkOrderAssigned.model_validate(events[0][2])
    assert opened.assignment is not None
    assert opened.assignment.due_at == night + timedelta(hours=4)  # the rule's, not 8 h
    up = WorkOrderEscalated.model_validate(events[1][2])
    assert (up.reason, up.assignment.tier) == ("timeout", "community")
    assert up.assignment.due_at == night + timedelta(hours=4 + 8)  # the rule's, not 16 h
