"""The partner's reads of the points ledger through its routes, on the real PostgreSQL:
a rider's balance and history page by page, and a street's monthly leaderboard of that
partner's riders, months cut in the catalogue's zone (Asia/Shanghai, UTC+8).

The routes are mounted on an app of their own with the partner set as the front door sets
it for a verified request (the front door's checks are tested with it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gridline.common.clock import ManualClock
from gridline.common.consumer import Incoming
from gridline.common.events import WorkOrderResolved, envelope_for
from gridline.common.pg import Pool
from gridline.common.policy.catalogue import load_catalogue_text
from gridline.intake.adapters.group_commit import GroupCommit
from gridline.intake.domain.submission import Accepted, Submission
from gridline.intake.entrypoints import partner_points
from gridline.intake.entrypoints.api import create_app
from gridline.intake.handlers import Intake

pytestmark = pytest.mark.integration

CATALOGUE = Path(__file__).resolve().parents[4] / "config" / "catalogue.yaml"
# 00:30 on 1 November in Shanghai, still October in UTC.
NOW = datetime(2026, 10, 31, 16, 30, tzinfo=UTC)
LAST_OCTOBER_SECOND = datetime(2026, 10, 31, 15, 59, 59, tzinfo=UTC)  # 23:59:59 in Shanghai
FIRST_NOVEMBER_SECOND = datetime(2026, 10, 31, 16, 0, tzinfo=UTC)  # 00:00 in Shanghai
HERE = Submission("exposed-garbage", 31.78, 119.95, "路边垃圾", None, None, *[None] * 6)
PARTNER_SCOPE_KEY = "gridline.intake.partner"  # where the front door puts a verified partner


@pytest.fixture
async def intake(pool: Pool) -> Intake:
    intake = Intake(ManualClock(NOW), "/gridline/intake")
    catalogue = load_catalogue_text(CATALOGUE.read_text("utf-8"))
    intake.policy.apply("catalogue", catalogue.version_hash, {"catalogue": catalogue.to_dict()})
    async with pool.acquire() as conn:
        await intake.load_reporter_key(conn)
    return intake


Tip = tuple[str, str, str, str, datetime]  # partner, rider, category, street, resolved at

TIPS: list[Tip] = [
    ("p-fast", "rider-a", "exposed-garbage", "s1", FIRST_NOVEMBER_SECOND),  # 5
    ("p-fast", "rider-a", "exposed-garbage", "s1", NOW + timedelta(days=3)),  # 5
    ("p-fast", "rider-b", "crowd-gathering", "s1", NOW + timedelta(days=1)),  # 10
    ("p-fast", "rider-c", "exposed-garbage", "s1", NOW + timedelta(days=2)),  # 5
    ("p-fast", "rider-c", "road-collapse", "s1", LAST_OCTOBER_SECOND),  # 20, in October
    ("p-fast", "rider-a", "exposed-garbage", "s2", NOW + timedelta(days=4)),  # 5, street 2
    ("p-other", "rider-z", "road-collapse", "s1", NOW),  # 20, another partner's rider
]


@pytest.fixture
async def credited(pool: Pool, intake: Intake) -> list[str]:
    """Each tip stored through intake, marked a partner's, and its order resolved."""
    commit: GroupCommit[Accepted] = GroupCommit(pool, intake.store_accepted, wait=0, max_rows=64)
    writer = asyncio.create_task(commit.run())
    try:
        reports = [
            await intake.submit(commit, replace(HERE, lat=HERE.lat + 0.01 * n), "partner")
            for n in range(len(TIPS))
        ]
    finally:
        writer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writer
    events = []
    for report, (partner, rider, code, street, at) in zip(reports, TIPS, strict=True):
        await pool.execute(
            "UPDATE requests SET partner_id = $2, rider_id = $3 WHERE service_request_id = $1",
            report.request_id,
            partner,
            rider,
        )
        order = report.request_id
        event = WorkOrderResolved(
            work_order_id=order,
            report_id=order,
            version=2,
            category=code,
            category_name_en=code,
            category_name_zh=code,
            street_id=street,
            district_id="d1",
            policy_version="p1",
            tier="grid",
            unit_id="g1",
            unit_name="Grid 7",
            resolved_by_unit_id="g1",
            opened_at=NOW - timedelta(days=1),
            resolved_at=at,
            due_at=at,
        )
        envelope = envelope_for(event, source="/routing", time=at, event_id=f"r-{order}")
        events.append(Incoming(event, envelope))
    async with pool.acquire() as conn, conn.transaction():
        await intake.on_work_order(conn, events)
    return [r.request_id for r in reports]


def partner_app(pool: Pool, intake: Intake) -> Callable[[str | None], httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(partner_points.router)
    app.state.service = SimpleNamespace(runtime=SimpleNamespace(pool=pool), intake=intake)

    def client(partner: str | None) -> httpx.AsyncClient:
        async def verified(scope: Any, receive: Any, send: Any) -> None:
            if partner is not None:
                scope = {**scope, PARTNER_SCOPE_KEY: partner}
            await app(scope, receive, send)

        return httpx.AsyncClient(transport=httpx.ASGITransport(app=verified), base_url="http://t")

    return client


@pytest.fixture
async def fast(pool: Pool, intake: Intake, credited: list[str]) -> AsyncIterator[httpx.AsyncClient]:
    async with partner_app(pool, intake)("p-fast") as client:
        yield client


async def test_the_leaderboard_ranks_this_partners_riders_in_the_shanghai_month(
    fast: httpx.AsyncClient,
) -> None:
    november = await fast.get("/v1/partner/leaderboard", params={"street_id": "s1"})
    assert november.status_code == 200, november.text
    # The default month is Shanghai's (November), though it is still October in UTC.
    assert november.json() == {
        "street_id": "s1",
        "month": "2026-11",
        "riders": [
            {"rank": 1, "rider_id": "rider-a", "points": 10, "tips": 2},
            {"rank": 1, "rider_id": "rider-b", "points": 10, "tips": 1},
            {"rank": 3, "rider_id": "rider-c", "points": 5, "tips": 1},
        ],
    }
    october = await fast.get(
        "/v1/partner/leaderboard", params={"street_id": "s1", "month": "2026-10"}
    )
    assert october.json()["riders"] == [{"rank": 1, "rider_id": "rider-c", "points": 20, "tips": 1}]
    top = await fast.get(
        "/v1/partner/leaderboard", params={"street_id": "s1", "month": "2026-11", "limit": 1}
    )
    assert [r["rider_id"] for r in top.json()["riders"]] == ["rider-a"]
    unknown = await fast.get("/v1/partner/leaderboard", params={"street_id": "nowhere"})
    assert (unknown.status_code, unknown.json()["riders"]) == (200, [])


async def test_a_malformed_month_is_400_naming_the_field(fast: httpx.AsyncClient) -> None:
    for month in ("2026-13", "2026-1", "Nov 2026", "2026-11-01"):
        answer = await fast.get(
            "/v1/partner/leaderboard", params={"street_id": "s1", "month": month}
        )
        assert answer.status_code == 400, (month, answer.text)
        assert answer.json()["detail"].startswith("month: ")


async def test_a_riders_balance_and_history_page_by_page(
    fast: httpx.AsyncClient, credited: list[str]
) -> None:
    first = await fast.get("/v1/partner/riders/rider-a/points", params={"limit": 2})
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["rider_id"], body["balance"]) == ("rider-a", 15)
    assert body["entries"] == [
        {
            "report_id": credited[5],
            "kind": "credit",
            "work_order_id": credited[5],
            "category": "exposed-garbage",
            "points": 5,
            "street_id": "s2",
            "credited_at": (NOW + timedelta(days=4)).isoformat().replace("+00:00", "Z"),
        },
        {
            "report_id": credited[1],
            "kind": "credit",
            "work_order_id": credited[1],
            "category": "exposed-garbage",
            "points": 5,
            "street_id": "s1",
            "credited_at": (NOW + timedelta(days=3)).isoformat().replace("+00:00", "Z"),
        },
    ]
    rest = await fast.get(
        "/v1/partner/riders/rider-a/points", params={"limit": 2, "cursor": body["next_cursor"]}
    )
    assert [e["report_id"] for e in rest.json()["entries"]] == [credited[0]]
    assert rest.json()["next_cursor"] is None
    bad = await fast.get("/v1/partner/riders/rider-a/points", params={"cursor": "nonsense!"})
    assert bad.status_code == 400 and bad.json()["detail"].startswith("cursor: ")
    nobody = await fast.get("/v1/partner/riders/rider-unknown/points")
    assert nobody.json() == {
        "rider_id": "rider-unknown",
        "balance": 0,
        "entries": [],
        "next_cursor": None,
    }


async def test_a_partner_sees_only_its_own_riders_and_no_partner_sees_nothing(
    pool: Pool, intake: Intake, credited: list[str]
) -> None:
    client = partner_app(pool, intake)
    async with client("p-other") as other:
        theirs = await other.get("/v1/partner/riders/rider-a/points")
        assert (theirs.json()["balance"], theirs.json()["entries"]) == (0, [])
        board = await other.get("/v1/partner/leaderboard", params={"street_id": "s1"})
        assert board.json()["riders"] == [
            {"rank": 1, "rider_id": "rider-z", "points": 20, "tips": 1}
        ]
    async with client(None) as anonymous:
        for path in ("/v1/partner/riders/rider-a/points", "/v1/partner/leaderboard?street_id=s1"):
            refused = await anonymous.get(path)
            assert refused.status_code == 403
            assert refused.json() == {"detail": "a partner key is required"}


def test_the_routes_are_in_intakes_openapi_with_their_response_models() -> None:
    schema = create_app().openapi()
    points = schema["paths"]["/v1/partner/riders/{rider_id}/points"]["get"]
    board = schema["paths"]["/v1/partner/leaderboard"]["get"]
    assert points["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RiderPointsView"
    }
    assert board["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/LeaderboardView"
    }
    assert {"400", "403"} <= set(board["responses"])
