"""Partners through intake's ASGI app on the real PostgreSQL: registration by an operator,
signed tips with rider ids, the replay window, the rate limit, key rotation and revocation,
callbacks, and the PartnerUpdated events each change leaves in the outbox."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from gridline.common.clock import ManualClock
from gridline.common.partners import request_signature, signing_secret
from gridline.common.pg import Pool
from gridline.common.policy.catalogue import load_catalogue_text
from gridline.common.policy.extent import Extent
from gridline.intake.adapters.group_commit import GroupCommit
from gridline.intake.bootstrap import IntakeService
from gridline.intake.config import IntakeSettings
from gridline.intake.domain.submission import Accepted
from gridline.intake.entrypoints.api import create_app
from gridline.intake.handlers import Intake
from gridline.intake.metrics import IntakeMetrics
from gridline.intake.partner_cases import PartnerRegistry

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
ADMIN_KEY = "admin-key-0123456789abcdef"
MASTER = "partner-secret-key-0123456789abcdef-xyz"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
TIP: dict[str, Any] = {
    "service_code": "exposed-garbage",
    "description": "路边垃圾堆",
    "lat": 31.78,
    "long": 119.95,
    "rider_id": "rider-0042",
    "reporter": {"phone": "13912345678", "first_name": "小王"},
}


@dataclass
class App:
    client: httpx.AsyncClient
    clock: ManualClock
    pool: Pool
    registry: PartnerRegistry


@pytest.fixture
async def app(pool: Pool) -> AsyncIterator[App]:
    clock = ManualClock(NOW)
    intake = Intake(clock, "/gridline/intake")
    async with pool.acquire() as conn:
        await intake.load_reporter_key(conn)
    intake.policy.catalogue = load_catalogue_text(CATALOGUE.read_text())
    intake.policy.extent = Extent.from_geojson(EXTENT)
    writer: GroupCommit[Accepted] = GroupCommit(
        pool, intake.store_accepted, wait=0.002, max_rows=256
    )
    task = asyncio.create_task(writer.run())
    settings = IntakeSettings(GRIDLINE_ADMIN_KEY=ADMIN_KEY, GRIDLINE_PARTNER_SECRET_KEY=MASTER)
    registry = PartnerRegistry(settings.partner_secret_key)
    fastapi: FastAPI = create_app(settings)
    fastapi.state.service = IntakeService(
        runtime=cast(
            Any, SimpleNamespace(pool=pool, relay=SimpleNamespace(stalled_for=lambda: 0.0))
        ),
        intake=intake,
        settings=settings,
        metrics=IntakeMetrics(CollectorRegistry()),
        keys=settings.key_ring(),
        submissions=writer,
        partners=registry,
    )
    transport = httpx.ASGITransport(app=fastapi)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as c:
        yield App(c, clock, pool, registry)
    task.cancel()


async def register(app: App, name: str = "RiderCo", **limits: Any) -> dict[str, Any]:
    answer = await app.client.post(
        "/admin/partners",
        json={"name": name, "rate_per_s": 50, "burst": 50, **limits},
        headers=ADMIN,
    )
    assert answer.status_code == 201, answer.text
    issued: dict[str, Any] = answer.json()
    return issued


def signed(key: str, secret: str, body: bytes = b"", at: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    return {
        "X-Api-Key": key,
        "X-Gridline-Timestamp": timestamp,
        "X-Gridline-Signature": request_signature(secret, timestamp, body),
        "Content-Type": "application/json",
    }


async def tip(app: App, key: str, secret: str, report: Any = None, **kw: Any) -> httpx.Response:
    body = json.dumps(TIP if report is None else report).encode()
    return await app.client.post(
        "/v1/reports", content=body, headers=signed(key, secret, body, **kw)
    )


async def count(pool: Pool, sql: str, *args: Any) -> int:
    value: int = await pool.fetchval(sql, *args)
    return value


async def partner_events(pool: Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT payload FROM outbox WHERE topic = 'gridline.partners' ORDER BY id"
    )
    return [json.loads(r["payload"])["data"] for r in rows]


async def test_registration_shows_key_and_derived_secret_once_and_announces_the_partner(
    app: App,
) -> None:
    issued = await register(app, callback_url="https://rider.example/cb")
    assert issued["partner_id"].startswith("ptn_") and issued["key"].startswith("gpk_")
    assert issued["secret"] == signing_secret(MASTER, issued["partner_id"], 1)
    stored = await app.pool.fetchrow("SELECT * FROM partner_keys")
    assert stored is not None and bytes(stored["key_digest"]) != issued["key"].encode()
    assert [e["partner_id"] for e in await partner_events(app.pool)] == [issued["partner_id"]]
    event = (await partner_events(app.pool))[0]
    assert event["active"] and event["secret_versions"] == [1]
    assert event["callback_url"] == "https://rider.example/cb"
    assert issued["secret"] not in json.dumps(event)
    listing = (await app.client.get("/admin/partners", headers=ADMIN)).json()
    assert [(p["name"], p["keys"]) for p in listing] == [("RiderCo", 1)]
    assert "key" not in listing[0] and "secret" not in listing[0]
    again = await app.client.post("/admin/partners", json={"name": "RiderCo"}, headers=ADMIN)
    assert again.status_code == 409


async def test_a_signed_tip_is_stored_with_partner_and_rider_but_no_rider_data_in_its_event(
    app: App,
) -> None:
    p = await register(app)
    answer = await tip(app, p["key"], p["secret"])
    assert answer.status_code == 201, answer.text
    row = await app.pool.fetchrow("SELECT * FROM requests")
    assert row is not None
    assert (row["partner_id"], row["rider_id"], row["source"]) == (
        p["partner_id"],
        "rider-0042",
        "partner",
    )
    assert row["reporter"] == {"phone": "13912345678", "first_name": "小王"}
    payload = await app.pool.fetchval("SELECT payload FROM outbox WHERE topic = 'gridline.reports'")
    assert b"rider-0042" not in payload and b"13912345678" not in payload
    assert "小王".encode() not in payload
    ref = json.loads(payload)["data"]["reporter_ref"]
    # The rider, not the phone, names the reporter: the same rider, the same reference.
    second = dict(TIP, reporter={"phone": "13700000000"})
    assert (await tip(app, p["key"], p["secret"], second)).status_code == 201
    refs = await app.pool.fetch(
        "SELECT payload FROM outbox WHERE topic = 'gridline.reports' ORDER BY id"
    )
    assert {json.loads(r["payload"])["data"]["reporter_ref"] for r in refs} == {ref}


async def test_a_signed_batch_of_tips_stores_each_with_its_rider(app: App) -> None:
    p = await register(app)
    batch = {"reports": [dict(TIP, rider_id="r-1"), dict(TIP, rider_id="13800138000")]}
    body = json.dumps(batch).encode()
    answer = await app.client.post(
        "/v1/reports/batch", content=body, headers=signed(p["key"], p["secret"], body)
    )
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [201, 400]
    assert results[1]["detail"] == "rider_id must be your own opaque id, not a phone number"
    assert [
        tuple(r) for r in await app.pool.fetch("SELECT partner_id, rider_id FROM requests")
    ] == [(p["partner_id"], "r-1")]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("missing", "x-gridline-signature header"),
        ("wrong", "does not match"),
        ("other-body", "does not match"),
        ("past", "within ±300 s"),
        ("future", "within ±300 s"),
        ("no-timestamp", "x-gridline-timestamp header"),
    ],
)
async def test_an_unsigned_wrongly_signed_or_stale_request_is_401_and_stores_nothing(
    app: App, change: str, why: str
) -> None:
    p = await register(app)
    body = json.dumps(TIP).encode()
    headers = signed(p["key"], p["secret"], body)
    if change == "missing":
        del headers["X-Gridline-Signature"]
    elif change == "wrong":
        headers = signed(p["key"], "gps_not-the-secret", body)
    elif change == "other-body":
        headers = signed(p["key"], p["secret"], body.replace(b"0042", b"0043"))
    elif change == "past":
        headers = signed(p["key"], p["secret"], body, at=time.time() - 301)
    elif change == "future":
        headers = signed(p["key"], p["secret"], body, at=time.time() + 301)
    else:
        del headers["X-Gridline-Timestamp"]
    answer = await app.client.post("/v1/reports", content=body, headers=headers)
    assert answer.status_code == 401, answer.text
    assert why in answer.json()["detail"]
    assert await count(app.pool, "SELECT count(*) FROM requests") == 0


async def test_a_timestamp_within_the_window_is_taken(app: App) -> None:
    p = await register(app)
    answer = await tip(app, p["key"], p["secret"], at=time.time() - 290)
    assert answer.status_code == 201, answer.text


async def test_over_the_rate_limit_is_429_with_retry_after_then_recovers(app: App) -> None:
    p = await register(app, rate_per_s=1, burst=2)
    assert [(await tip(app, p["key"], p["secret"])).status_code for _ in range(2)] == [201, 201]
    refused = await tip(app, p["key"], p["secret"])
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert "1 requests a second (bursts of up to 2)" in refused.json()["detail"]
    assert await count(app.pool, "SELECT count(*) FROM requests") == 2
    await asyncio.sleep(1.05)
    assert (await tip(app, p["key"], p["secret"])).status_code == 201
    # The operator raises the limit: it holds at once in this process (a tenth of a
    # second refills 10 tokens at 100/s, where 1/s would refill none).
    changed = await app.client.patch(
        f"/admin/partners/{p['name']}", json={"rate_per_s": 100, "burst": 10}, headers=ADMIN
    )
    assert changed.status_code == 200, changed.text
    await asyncio.sleep(0.1)
    codes = [(await tip(app, p["key"], p["secret"])).status_code for _ in range(5)]
    assert codes == [201] * 5


async def test_a_rotated_key_works_within_the_overlap_and_is_refused_after(app: App) -> None:
    p = await register(app)
    rotated = await app.client.post(
        "/admin/partners/RiderCo/rotate", json={"overlap_hours": 2}, headers=ADMIN
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["key"] != p["key"] and new["secret"] is None
    assert (await tip(app, p["key"], p["secret"])).status_code == 201
    assert (await tip(app, new["key"], p["secret"])).status_code == 201
    app.clock.advance(timedelta(hours=2))
    old = await tip(app, p["key"], p["secret"])
    assert old.status_code == 403
    assert "expired" in old.json()["detail"]
    assert (await tip(app, new["key"], p["secret"])).status_code == 201
    assert len(await partner_events(app.pool)) == 2


async def test_a_rotated_secret_is_accepted_beside_the_old_one_until_the_overlap_ends(
    app: App,
) -> None:
    p = await register(app)
    rotated = await app.client.post(
        "/admin/partners/RiderCo/rotate", json={"overlap_hours": 1, "secret": True}, headers=ADMIN
    )
    new = rotated.json()
    assert new["secret"] == signing_secret(MASTER, p["partner_id"], 2)
    assert new["secret_versions"] == [2, 1]
    assert (await partner_events(app.pool))[-1]["secret_versions"] == [2, 1]
    assert (await tip(app, new["key"], p["secret"])).status_code == 201
    assert (await tip(app, new["key"], new["secret"])).status_code == 201
    app.clock.advance(timedelta(hours=1))
    assert (await tip(app, new["key"], p["secret"])).status_code == 401
    assert (await tip(app, new["key"], new["secret"])).status_code == 201


async def test_revocation_refuses_every_key_at_once(app: App) -> None:
    p = await register(app)
    rotated = (
        await app.client.post("/admin/partners/RiderCo/rotate", json={}, headers=ADMIN)
    ).json()
    revoked = await app.client.post("/admin/partners/RiderCo/revoke", headers=ADMIN)
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    for key in (p["key"], rotated["key"]):
        answer = await tip(app, key, p["secret"])
        assert answer.status_code == 403
        assert "revoked" in answer.json()["detail"]
    events = await partner_events(app.pool)
    assert [e["active"] for e in events] == [True, True, False]
    assert await count(app.pool, "SELECT count(*) FROM requests") == 0


async def test_a_partner_sets_reads_and_removes_its_callback_signed(app: App) -> None:
    p = await register(app)
    body = json.dumps({"url": "https://rider.example/gridline"}).encode()
    put = await app.client.put(
        "/v1/partner/callback", content=body, headers=signed(p["key"], p["secret"], body)
    )
    assert put.status_code == 200, put.text
    assert put.json() == {"partner_id": p["partner_id"], "url": "https://rider.example/gridline"}
    got = await app.client.get("/v1/partner/callback", headers=signed(p["key"], p["secret"]))
    assert got.json()["url"] == "https://rider.example/gridline"
    assert (await partner_events(app.pool))[-1]["callback_url"] == "https://rider.example/gridline"
    unsigned = await app.client.get("/v1/partner/callback", headers={"X-Api-Key": p["key"]})
    assert unsigned.status_code == 401
    bad = json.dumps({"url": "ftp://rider.example/x"}).encode()
    refused = await app.client.put(
        "/v1/partner/callback", content=bad, headers=signed(p["key"], p["secret"], bad)
    )
    assert refused.status_code == 400 and "url" in refused.json()["detail"]
    gone = await app.client.delete("/v1/partner/callback", headers=signed(p["key"], p["secret"]))
    assert gone.json()["url"] is None
    assert (await partner_events(app.pool))[-1]["callback_url"] is None


async def test_partner_endpoints_refuse_other_keys_and_rider_ids_need_a_partner(
    app: App,
) -> None:
    answer = await app.client.get("/v1/partner/callback", headers={"X-Api-Key": ADMIN_KEY})
    assert answer.status_code == 403 and "for partners" in answer.json()["detail"]
    by_admin = await app.client.post("/v1/reports", json=TIP, headers=ADMIN)
    assert by_admin.status_code == 400
    assert by_admin.json()["detail"].startswith("rider_id: only a partner")


async def test_a_phone_number_as_rider_id_is_refused_and_nothing_stored(app: App) -> None:
    p = await register(app)
    answer = await tip(app, p["key"], p["secret"], dict(TIP, rider_id="13912345678"))
    assert answer.status_code == 400
    assert answer.json()["detail"] == "rider_id must be your own opaque id, not a phone number"
    assert await count(app.pool, "SELECT count(*) FROM requests") == 0


async def test_without_a_partner_secret_key_registration_says_what_to_set(pool: Pool) -> None:
    settings = IntakeSettings(GRIDLINE_ADMIN_KEY=ADMIN_KEY)
    fastapi = create_app(settings)
    fastapi.state.service = IntakeService(
        runtime=cast(
            Any, SimpleNamespace(pool=pool, relay=SimpleNamespace(stalled_for=lambda: 0.0))
        ),
        intake=Intake(ManualClock(NOW), "/gridline/intake"),
        settings=settings,
        metrics=IntakeMetrics(CollectorRegistry()),
        keys=settings.key_ring(),
        submissions=cast(Any, None),
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fastapi), base_url="http://intake"
    ) as c:
        answer = await c.post("/admin/partners", json={"name": "X"}, headers=ADMIN)
    assert answer.status_code == 409
    assert "GRIDLINE_PARTNER_SECRET_KEY" in answer.json()["detail"]
    assert await pool.fetchval("SELECT count(*) FROM partners") == 0


class _SlowReads:
    """A pool whose connection holds back what its first read found until `go` is set
    (and says when it has read): the periodic refresh, caught between reading the
    directory and installing it."""

    def __init__(self, pool: Pool) -> None:
        self.pool, self.read, self.go = pool, asyncio.Event(), asyncio.Event()

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        read, go = self.read, self.go

        class Held:
            def __init__(self, conn: Any) -> None:
                self.conn, self.first = conn, True

            def __getattr__(self, name: str) -> Any:
                return getattr(self.conn, name)

            async def fetch(self, *args: Any) -> Any:
                rows = await self.conn.fetch(*args)
                if self.first:
                    self.first = False
                    read.set()
                    await go.wait()
                return rows

        async with self.pool.acquire() as conn:
            yield Held(conn)


async def test_a_partner_registered_during_a_periodic_refresh_can_use_its_key_at_once(
    app: App,
) -> None:
    slow = _SlowReads(app.pool)
    periodic = asyncio.create_task(app.registry.refresh(cast(Pool, slow)))
    await slow.read.wait()  # it has read the directory, without the partner to come
    registration = asyncio.create_task(register(app))
    # Its own refresh may wait for the periodic one (as it should), so give it a moment.
    await asyncio.wait({registration}, timeout=0.5)
    slow.go.set()  # the stale read is installed only now, after the registration committed
    p = await registration
    await periodic
    answer = await tip(app, p["key"], p["secret"])
    assert answer.status_code == 201, answer.text
