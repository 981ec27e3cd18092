"""Sensors' threshold events through intake's ASGI app on the real PostgreSQL: a breach
opens one urgent report (with its outbox event), further breaches of that sensor are
deduplicated while its order is open, a resolution lets it open a new one, and two
breaches at once open one order."""

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
from gridline.common.consumer import Incoming
from gridline.common.events import WorkOrderResolved, envelope_for
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
GRID_7 = {"id": "g-7", "level": "grid", "name": "青龙第7网格", "lon": 119.951, "lat": 31.781}
SENSOR = {"X-Api-Key": "sensor-key"}
CROWD: dict[str, Any] = {
    "sensor_id": "cam-7",
    "metric": "crowd_density",
    "value": 5.2,
    "observed_at": (NOW - timedelta(minutes=1)).isoformat(),
    "lat": 31.78,
    "long": 119.95,
}


@pytest.fixture
def intake() -> Intake:
    intake = Intake(ManualClock(NOW), "/gridline/intake")
    intake.policy.catalogue = load_catalogue_text(CATALOGUE.read_text())
    intake.policy.extent = Extent.from_geojson(EXTENT)
    intake.policy.places = Gazetteer([GRID_7])
    return intake


@pytest.fixture
async def client(pool: Pool, intake: Intake) -> AsyncIterator[httpx.AsyncClient]:
    async with pool.acquire() as conn:
        await intake.load_reporter_key(conn)
    writer: GroupCommit[Accepted] = GroupCommit(
        pool, intake.store_accepted, wait=0.002, max_rows=256
    )
    task = asyncio.create_task(writer.run())
    app: FastAPI = create_app(IntakeSettings())
    app.state.service = IntakeService(
        runtime=cast(
            Any, SimpleNamespace(pool=pool, relay=SimpleNamespace(stalled_for=lambda: 0.0))
        ),
        intake=intake,
        settings=IntakeSettings(),
        metrics=IntakeMetrics(CollectorRegistry()),
        keys=KeyRing.of(
            {
                Role.SENSOR: ["sensor-key"],
                Role.OPEN311_CLIENT: ["citizen-key"],
                Role.ADMIN: ["admin-key"],
            }
        ),
        submissions=writer,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as c:
        yield c
    task.cancel()


async def counts(pool: Pool) -> tuple[int, int]:
    row = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM requests) AS r, (SELECT count(*) FROM outbox) AS o"
    )
    assert row is not None
    return row["r"], row["o"]


async def submitted(pool: Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT payload FROM outbox WHERE topic = 'gridline.reports' ORDER BY id"
    )
    return [json.loads(r["payload"])["data"] for r in rows]


async def resolve(pool: Pool, intake: Intake, order: str) -> None:
    """Feed intake's work-order handler the resolution routing would publish."""
    event = WorkOrderResolved(
        work_order_id=order,
        report_id=order,
        version=2,
        category="crowd-gathering",
        category_name_en="Crowd gathering over threshold",
        category_name_zh="人员聚集",
        street_id="s1",
        district_id="d1",
        policy_version="p1",
        tier="grid",
        unit_id="g-7",
        unit_name="Grid 7",
        resolved_by_unit_id="g-7",
        opened_at=NOW,
        resolved_at=NOW + timedelta(minutes=20),
        due_at=NOW + timedelta(minutes=30),
    )
    async with pool.acquire() as conn, conn.transaction():
        await intake.on_work_order(
            conn, [Incoming(event, envelope_for(event, source="/test", time=NOW))]
        )


async def test_a_reading_under_the_threshold_stores_nothing(
    client: httpx.AsyncClient, pool: Pool
) -> None:
    answer = await client.post("/v1/sensor-events", json={**CROWD, "value": 3.9}, headers=SENSOR)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "breach": False,
        "metric": "crowd_density",
        "value": 3.9,
        "threshold": 4.0,
    }
    assert await counts(pool) == (0, 0)


async def test_a_breach_opens_an_urgent_report_of_the_metrics_category(
    client: httpx.AsyncClient, pool: Pool
) -> None:
    answer = await client.post("/v1/sensor-events", json=CROWD, headers=SENSOR)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["breach"] is True and body["deduplicated"] is False
    assert body["work_order_id"] == body["report_id"]
    assert (body["severity"], body["service_code"], body["readings"]) == (
        "urgent",
        "crowd-gathering",
        1,
    )
    row = await pool.fetchrow("SELECT * FROM requests")
    assert row is not None
    assert (row["service_request_id"], row["token"]) == (body["report_id"], body["token"])
    assert (row["source"], row["service_code"], row["status"]) == (
        "sensor",
        "crowd-gathering",
        "open",
    )
    assert row["occurred_at"] == NOW - timedelta(minutes=1)
    (event,) = await submitted(pool)
    assert event["report_id"] == body["report_id"]
    assert event["source"] == "sensor"
    assert event["service_code"] == "crowd-gathering"
    assert event["tags"]["severity"] == "urgent"
    assert event["tags"]["labels"] == ["sensor", "crowd_density"]
    assert event["description"].startswith(
        "人群密度 5.2 人/㎡ 超过阈值 4 / crowd density 5.2 persons/m² over the threshold 4"
    )
    # The sensor is named by an opaque reference, the same for each of its breaches.
    assert event["reporter_ref"].startswith("rep_") and "cam-7" not in event["reporter_ref"]


async def test_a_breach_while_the_order_is_open_is_deduplicated_and_counted(
    client: httpx.AsyncClient, pool: Pool
) -> None:
    first = (await client.post("/v1/sensor-events", json=CROWD, headers=SENSOR)).json()
    again = await client.post(
        "/v1/sensor-events", json={**CROWD, "value": 6.0}, headers={"X-Api-Key": "admin-key"}
    )
    assert again.status_code == 200, again.text
    body = again.json()
    assert body["deduplicated"] is True
    assert (body["report_id"], body["work_order_id"], body["readings"]) == (
        first["report_id"],
        first["work_order_id"],
        2,
    )
    assert "token" not in body
    assert await counts(pool) == (1, 1)  # the first report and its event, nothing new
    held = await pool.fetchrow("SELECT readings, last_value FROM sensor_orders")
    assert held is not None and (held["readings"], held["last_value"]) == (2, 6.0)


async def test_after_the_order_is_resolved_a_breach_opens_a_new_one(
    client: httpx.AsyncClient, pool: Pool, intake: Intake
) -> None:
    first = (await client.post("/v1/sensor-events", json=CROWD, headers=SENSOR)).json()
    await resolve(pool, intake, first["work_order_id"])
    again = await client.post("/v1/sensor-events", json=CROWD, headers=SENSOR)
    assert again.status_code == 201, again.text
    second = again.json()
    assert second["deduplicated"] is False
    assert second["work_order_id"] not in (first["work_order_id"], None)
    events = await submitted(pool)
    assert [e["report_id"] for e in events] == [first["report_id"], second["report_id"]]
    # A second order at the same place: a repeated complaint, not merged into a closed one.
    assert events[1]["duplicate_of"] is None
    assert "repeated_complaint" in events[1]["tags"]["flags"]
    assert events[0]["reporter_ref"] == events[1]["reporter_ref"]


async def test_two_breaches_at_once_open_one_order(client: httpx.AsyncClient, pool: Pool) -> None:
    answers = await asyncio.gather(
        *(client.post("/v1/sensor-events", json=CROWD, headers=SENSOR) for _ in range(6))
    )
    assert sorted(a.status_code for a in answers) == [200] * 5 + [201]
    assert len({a.json()["work_order_id"] for a in answers}) == 1
    assert sorted(a.json()["readings"] for a in answers) == [1, 2, 3, 4, 5, 6]
    assert len(await submitted(pool)) == 1
    assert await pool.fetchval("SELECT count(*) FROM requests") == 1


async def test_another_sensor_breaching_nearby_joins_the_open_order(
    client: httpx.AsyncClient, pool: Pool
) -> None:
    first = (await client.post("/v1/sensor-events", json=CROWD, headers=SENSOR)).json()
    other = await client.post(
        "/v1/sensor-events", json={**CROWD, "sensor_id": "cam-8"}, headers=SENSOR
    )
    assert other.status_code == 201, other.text
    body = other.json()
    # Merged (并单) into the open order of the same category here: one order, two reports.
    assert body["report_id"] != first["report_id"]
    assert body["work_order_id"] == first["work_order_id"]
    again = (
        await client.post("/v1/sensor-events", json={**CROWD, "sensor_id": "cam-8"}, headers=SENSOR)
    ).json()
    assert (again["deduplicated"], again["report_id"]) == (True, body["report_id"])


async def test_a_retry_with_the_same_idempotency_key_gets_the_first_answer(
    client: httpx.AsyncClient, pool: Pool
) -> None:
    headers = {**SENSOR, "Idempotency-Key": "reading-1"}
    first = await client.post("/v1/sensor-events", json=CROWD, headers=headers)
    retry = await client.post("/v1/sensor-events", json=CROWD, headers=headers)
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert first.json()["work_order_id"] == first.json()["report_id"]
    assert await pool.fetchval("SELECT count(*) FROM requests") == 1
    other = await client.post("/v1/sensor-events", json={**CROWD, "value": 9}, headers=headers)
    assert other.status_code == 409


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"metric": "noise_db"}, "metric", "known: crowd_density, water_depth"),
        ({"lat": 30.0, "long": 119.95}, "lat, long", "outside the city"),
        ({"lat": None, "long": None, "grid_id": "g-99"}, "grid_id", "not a grid"),
        ({"value": float("nan")}, "value", "finite"),
        ({"value": "high"}, "value", "number"),
        ({"sensor_id": "cam 7/../x"}, "sensor_id", "pattern"),
        ({"observed_at": (NOW + timedelta(hours=1)).isoformat()}, "observed_at", "future"),
        ({"observed_at": (NOW - timedelta(days=2)).isoformat()}, "observed_at", "stale"),
        ({"observed_at": "2026-11-02T08:00:00"}, "observed_at", "timezone"),
        ({"lat": None, "long": None}, "request", "say where"),
        ({"extra": 1}, "extra", "not permitted"),
    ],
)
async def test_a_bad_reading_is_refused_with_400_naming_the_field(
    client: httpx.AsyncClient, pool: Pool, change: dict[str, Any], field: str, words: str
) -> None:
    body = {k: v for k, v in {**CROWD, **change}.items() if v is not None}
    answer = await client.post(
        "/v1/sensor-events",
        content=json.dumps(body),
        headers={**SENSOR, "Content-Type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    detail = answer.json()["detail"]
    assert field in detail and words in detail, detail
    assert await counts(pool) == (0, 0)


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({}, "api key is required"),
        ({"X-Api-Key": "nobody"}, "not valid"),
        ({"X-Api-Key": "citizen-key"}, "sensor key is required"),
    ],
)
async def test_a_reading_without_a_sensor_key_is_refused_with_403(
    client: httpx.AsyncClient, pool: Pool, headers: dict[str, str], words: str
) -> None:
    for body in (CROWD, {"value": "not even a reading"}):  # the key is judged first
        answer = await client.post("/v1/sensor-events", json=body, headers=headers)
        assert answer.status_code == 403
        assert words in answer.json()["detail"]
    assert await counts(pool) == (0, 0)
