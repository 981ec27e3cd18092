"""The native API (/v1) and Open311 POST with Idempotency-Key, through intake's ASGI app on
the real PostgreSQL: what a client sees, and what was stored (reports, outbox, keys)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from gridline.common.clock import ManualClock
from gridline.common.pg import Pool
from gridline.common.policy.catalogue import load_catalogue_text
from gridline.common.policy.extent import Extent
from gridline.intake.adapters.group_commit import GroupCommit
from gridline.intake.bootstrap import IntakeService
from gridline.intake.config import IntakeSettings
from gridline.intake.domain.gazetteer import Gazetteer
from gridline.intake.domain.keys import KeyRing, Role
from gridline.intake.domain.submission import Accepted
from gridline.intake.entrypoints.api import create_app
from gridline.intake.handlers import Intake
from gridline.intake.metrics import IntakeMetrics

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
CATALOGUE = Path(__file__).resolve().parents[4] / "config" / "catalogue.yaml"
SQUARE = [[119.9, 31.7], [120.1, 31.7], [120.1, 31.9], [119.9, 31.9], [119.9, 31.7]]
EXTENT = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"district_id": "d"},
            "geometry": {"type": "Polygon", "coordinates": [SQUARE]},
        }
    ],
}
CITIZEN = {"X-Api-Key": "citizen-key"}
REPORT: dict[str, Any] = {
    "service_code": "exposed-garbage",
    "description": "垃圾堆在路边",
    "lat": 31.78,
    "long": 119.95,
    "grid_id": "g-7",
    "address": "青龙路 1 号",
    "reporter": {"id": "u-42", "email": "r@b.cn", "phone": "13900000000"},
    "occurred_at": (NOW - timedelta(hours=3)).isoformat(),
    "photos": ["https://img.example/a.jpg", "http://img.example/b.jpg"],
    "tags": ["night"],
}


# A grid of the jurisdiction as PolicyActivated names it: its point lies inside it.
GRID_7 = {"id": "g-7", "level": "grid", "name": "青龙第7网格", "lon": 119.951, "lat": 31.781}


@pytest.fixture
async def client(pool: Pool) -> AsyncIterator[httpx.AsyncClient]:
    intake = Intake(ManualClock(NOW), "/gridline/intake")
    async with pool.acquire() as conn:
        await intake.load_reporter_key(conn)
    intake.policy.catalogue = load_catalogue_text(CATALOGUE.read_text())
    intake.policy.extent = Extent.from_geojson(EXTENT)
    intake.policy.places = Gazetteer([GRID_7])
    writer: GroupCommit[Accepted] = GroupCommit(
        pool, intake.store_accepted, wait=0.002, max_rows=256
    )
    task = asyncio.create_task(writer.run())
    app: FastAPI = create_app(IntakeSettings())
    app.state.service = IntakeService(
        # What the write paths use of it: the pool, and the relay's state (the front door).
        runtime=cast(
            Any, SimpleNamespace(pool=pool, relay=SimpleNamespace(stalled_for=lambda: 0.0))
        ),
        intake=intake,
        settings=IntakeSettings(),
        metrics=IntakeMetrics(CollectorRegistry()),
        keys=KeyRing.of({Role.OPEN311_CLIENT: ["citizen-key"], Role.PARTNER: ["partner-key"]}),
        submissions=writer,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as c:
        yield c
    task.cancel()


async def stored(pool: Pool) -> tuple[int, int, int]:
    row = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM requests) AS r, (SELECT count(*) FROM outbox) AS o,"
        " (SELECT count(*) FROM idempotency_keys) AS k"
    )
    assert row is not None
    return row["r"], row["o"], row["k"]


async def test_a_report_with_every_field_is_stored_with_its_event(
    client: httpx.AsyncClient, pool: Pool
) -> None:
    answer = await client.post(
        "/v1/reports", json=REPORT, headers={"Authorization": "Bearer partner-key"}
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["links"]["open311"] == f"/open311/v2/requests/{body['id']}.json"
    row = await pool.fetchrow("SELECT * FROM requests")
    assert row is not None
    assert (row["service_request_id"], row["token"]) == (body["id"], body["token"])
    assert (row["source"], row["grid_id"], row["address_string"]) == (
        "partner",
        "g-7",
        "青龙路 1 号",
    )
    assert row["reporter"] == {"email": "r@b.cn", "phone": "13900000000", "account_id": "u-42"}
    payload = await pool.fetchval("SELECT payload FROM outbox")
    data = json.loads(payload)["data"]
    assert data["photos"] == REPORT["photos"] and data["tags"]["labels"] == ["night"]
    assert data["source"] == "partner" and data["reporter_ref"].startswith("rep_")
    assert b"r@b.cn" not in payload and b"13900000000" not in payload and b"u-42" not in payload


async def test_the_category_is_inferred_and_a_grid_id_alone_places_the_report(
    client: httpx.AsyncClient, pool: Pool
) -> None:
    report = {k: v for k, v in REPORT.items() if k not in ("service_code", "lat", "long")}
    answer = await client.post("/v1/reports", json=report, headers=CITIZEN)
    assert answer.status_code == 201, answer.text
    data = json.loads(await pool.fetchval("SELECT payload FROM outbox"))["data"]
    # 垃圾堆 names the exposed-garbage category; the grid's own point stands for the place.
    assert data["service_code"] == "exposed-garbage"
    assert data["tags"]["category_source"] == "inferred"
    assert data["tags"]["candidates"][0] == "exposed-garbage"
    assert (data["grid_id"], data["lat"], data["lon"]) == ("g-7", GRID_7["lat"], GRID_7["lon"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"photos": [f"https://img.example/{i}.jpg" for i in range(11)]}, "photos"),
        ({"photos": ["ftp://img.example/a.jpg"]}, "photos.0"),
        ({"tags": ["x" * 51]}, "tags.0"),
        ({"tags": [str(i) for i in range(21)]}, "tags"),
        ({"description": "a\x00b"}, "description"),
        ({"occurred_at": (NOW + timedelta(hours=1)).isoformat()}, "occurred_at"),
        ({"occurred_at": (NOW - timedelta(days=31)).isoformat()}, "occurred_at"),
        ({"occurred_at": "2026-11-02T08:00:00"}, "occurred_at"),
        ({"long": None}, "request"),
        ({"lat": None, "long": None, "grid_id": "g-404"}, "grid_id"),
        ({"lat": 10.0}, "lat, long"),
        ({"service_code": "nope"}, "service_code"),
        ({"service_code": None, "description": "something is wrong"}, "service_code"),
        ({"grid_id": "g-404"}, "grid_id"),
        ({"reporter": {"email": "not-an-email"}}, "reporter.email"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_a_bad_field_is_400_naming_it_and_stores_nothing(
    client: httpx.AsyncClient, pool: Pool, change: dict[str, Any], field: str
) -> None:
    report = {k: v for k, v in {**REPORT, **change}.items() if v is not None}
    answer = await client.post("/v1/reports", json=report, headers=CITIZEN)
    assert answer.status_code == 400, answer.text
    assert answer.json()["detail"].startswith(f"{field}:"), answer.text
    assert await stored(pool) == (0, 0, 0)


async def test_a_key_is_required_and_may_claim_only_its_own_sources(
    client: httpx.AsyncClient, pool: Pool
) -> None:
    assert (await client.post("/v1/reports", json=REPORT)).status_code == 403
    wrong = await client.post("/v1/reports", json=REPORT, headers={"X-Api-Key": "nope"})
    assert wrong.status_code == 403
    claim = await client.post(
        "/v1/reports", json={**REPORT, "source": "grid_worker"}, headers=CITIZEN
    )
    assert claim.status_code == 403 and claim.json()["detail"].startswith("source:")
    assert await stored(pool) == (0, 0, 0)


async def test_idempotency_key_replays_the_answer_and_409s_another_body(
    client: httpx.AsyncClient, pool: Pool
) -> None:
    headers = {**CITIZEN, "Idempotency-Key": "retry-1"}
    first = await client.post("/v1/reports", json=REPORT, headers=headers)
    retry = await client.post("/v1/reports", json=REPORT, headers=headers)
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.content == first.content and retry.headers["Idempotent-Replayed"] == "true"
    other = await client.post("/v1/reports", json={**REPORT, "tags": []}, headers=headers)
    assert other.status_code == 409 and "different request" in other.json()["detail"]
    bad = await client.post(
        "/v1/reports", json=REPORT, headers={**CITIZEN, "Idempotency-Key": "a b"}
    )
    assert bad.status_code == 400 and bad.json()["detail"].startswith("Idempotency-Key:")
    assert await stored(pool) == (1, 1, 1)


async def test_open311_post_honours_the_key_on_both_paths(
    client: httpx.AsyncClient, pool: Pool
) -> None:
    url = "/open311/v2/requests.json"
    form = {
        "api_key": "citizen-key",
        "service_code": "exposed-garbage",
        "lat": "31.78",
        "long": "119.95",
    }
    headers = {"Idempotency-Key": "o-1"}
    fast = await client.post(url, data=form, headers=headers)  # urlencoded: the fast path
    route = await client.post(  # multipart: the route; the same form, so the same request
        url, files={k: (None, v) for k, v in form.items()}, headers=headers
    )
    assert fast.status_code == 200 and route.status_code == 200
    assert route.content == fast.content
    other = await client.post(url, data={**form, "description": "x"}, headers=headers)
    assert other.status_code == 409 and other.json()[0]["code"] == 409
    assert await stored(pool) == (1, 1, 1)


async def test_a_batch_answers_each_item_in_order_and_stores_only_the_accepted(
    client: httpx.AsyncClient, pool: Pool
) -> None:
    items = [
        REPORT,
        {**REPORT, "lat": 10.0},
        {**REPORT, "source": "sensor"},
        {**REPORT, "service_code": None, "description": "xyzzy"},
        # 1.1 km from the first: not merged into its order (并单 within 250 m)
        {**REPORT, "lat": 31.79, "reporter": {"id": "u-43"}},
    ]
    headers = {**CITIZEN, "Idempotency-Key": "b-1"}
    answer = await client.post("/v1/reports/batch", json={"reports": items}, headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["accepted"], body["refused"]) == (2, 3)
    assert [r["status"] for r in body["results"]] == [201, 400, 403, 400, 201]
    assert [r["index"] for r in body["results"]] == list(range(5))
    assert body["results"][3]["detail"].startswith("service_code:")
    ids = {r["id"] for r in body["results"] if r["status"] == 201}
    keys = {r["key"] for r in await pool.fetch("SELECT key FROM outbox")}
    assert keys == ids and await stored(pool) == (2, 2, 1)
    retry = await client.post("/v1/reports/batch", json={"reports": items}, headers=headers)
    assert retry.content == answer.content and await stored(pool) == (2, 2, 1)


async def test_a_batch_over_the_limit_is_413_and_stores_nothing(
    client: httpx.AsyncClient, pool: Pool
) -> None:
    answer = await client.post(
        "/v1/reports/batch", json={"reports": [REPORT] * 501}, headers=CITIZEN
    )
    assert answer.status_code == 413 and "at most 500" in answer.json()["detail"]
    assert await stored(pool) == (0, 0, 0)
