"""Partners' status callbacks against the real PostgreSQL and local receivers: sent once
per status change, in order, signed with the partner's derived secrets (each in force
during a rotation), never twice for a redelivered event, parked until the partner is
known, and stopped for a revoked partner."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from gridline.common.consumer import Incoming
from gridline.common.events import PartnerUpdated, TipStatus, TipStatusChanged, envelope_for
from gridline.common.partners import signing_secret
from gridline.common.pg import Pool
from gridline.notify.adapters import webhook
from gridline.notify.domain.attempts import RetryPolicy
from gridline.notify.handlers import Notify
from gridline.notify.metrics import NotifyMetrics

from .conftest import Receiver, Receivers, new_dispatcher, running, until

pytestmark = pytest.mark.integration

KEY = "k" * 40  # GRIDLINE_PARTNER_SECRET_KEY
AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PENDING = "SELECT count(*) FROM deliveries WHERE delivered_at IS NULL AND dead_at IS NULL"


def partner(
    pid: str, url: str | None, versions: list[int], at: datetime = AT, active: bool = True
) -> Incoming[PartnerUpdated]:
    event = PartnerUpdated(
        partner_id=pid,
        name=f"{pid} riders",
        active=active,
        callback_url=url,
        secret_versions=versions,
        updated_at=at,
    )
    return Incoming(event, envelope_for(event, source="/test", time=at))


STATUSES: list[tuple[TipStatus, str | None, int]] = [
    ("assigned", "grid", 0),
    ("escalated", "community", 0),
    ("resolved", "community", 5),
]


def tips(
    pid: str, order: str, partner_at: datetime | None = None
) -> list[Incoming[TipStatusChanged]]:
    """A tip's work order assigned (version 1), escalated (2) and resolved (3), emitted
    while intake held the partner as of `partner_at`."""
    out = []
    for version, (status, tier, points) in enumerate(STATUSES, start=1):
        event = TipStatusChanged(
            partner_id=pid,
            report_id=f"r-{order}",
            rider_id="rider-7",
            work_order_id=order,
            version=version,
            status=status,
            duplicate=False,
            category="exposed-garbage",
            tier=tier,
            unit_name="Unit 1",
            due_at=AT + timedelta(days=1) if status != "resolved" else None,
            points=points,
            changed_at=AT + timedelta(minutes=version),
            partner_updated_at=partner_at,
        )
        out.append(Incoming(event, envelope_for(event, source="/test", time=AT)))
    return out


async def apply(pool: Pool, *batches: list[Any]) -> None:
    """As the consumer does: each batch in the transaction, one call per handler and layer."""
    notify = Notify([])
    async with pool.acquire() as conn, conn.transaction():
        for batch in batches:
            if isinstance(batch[0].data, PartnerUpdated):
                await notify.on_partner_updates(conn, batch)
            else:
                await notify.on_tip_status_changes(conn, batch)


@asynccontextmanager
async def dispatching(
    pool: Pool, schema: str, key: str | None = KEY, registry: CollectorRegistry | None = None
) -> AsyncIterator[None]:
    async with webhook.open_client(5.0, connections=0, per_receiver=10) as client:
        dispatcher = new_dispatcher(
            pool,
            client,
            schema,
            [],
            secret=None,
            partner_secret_key=key,
            policy=RetryPolicy(max_attempts=5, backoff_base=0.05, backoff_max=0.1),
            metrics=NotifyMetrics(registry or CollectorRegistry()),
            slots_per_subscription=4,
            poll_interval=0.2,
        )
        async with running(dispatcher):
            yield


def partner_verifies(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a partner's engineer writes from docs/api.md: HMAC-SHA256 under the secret of
    "<webhook-id>.<webhook-timestamp>.<body>", base64, compared with each "v1,..." given."""
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest())
    return any(
        hmac.compare_digest(sig.removeprefix("v1,").encode(), expected)
        for sig in headers["webhook-signature"].split(" ")
    )


def accepted(receiver: Receiver, refused_ids: list[str]) -> list[dict[str, Any]]:
    """The bodies the receiver answered 2xx, in the order received."""
    with receiver.lock:
        bodies = [json.loads(b) for b in receiver.bodies]
    out, refusals = [], list(refused_ids)
    for body in bodies:
        if body["id"] in refusals:
            refusals.remove(body["id"])
        else:
            out.append(body)
    return out


async def test_a_refusing_partner_gets_each_status_once_in_order_and_signed(
    pool: Pool, scratch_schema: str, receivers: Receivers
) -> None:
    refused: list[str] = []

    def answer(body: dict[str, Any]) -> int:
        if len(refused) < 2:  # the first two attempts fail
            refused.append(body["id"])
            return 500
        return 204

    receiver = receivers(0.0, answer)
    await apply(pool, [partner("p1", receiver.url, [1])])
    events = tips("p1", "wo-1")
    await apply(pool, *[[e] for e in events])  # one per layer: one order's events
    async with dispatching(pool, scratch_schema):
        await until(lambda: len(receiver.bodies) == 5, 20, "three callbacks, two refused")
        await until(lambda: pool.fetchval(f"SELECT ({PENDING}) = 0"), 5, "all recorded")
        # A redelivered event (same id) makes no second delivery.
        await apply(pool, *[[e] for e in events])
        await asyncio.sleep(0.5)
    assert len(receiver.bodies) == 5
    assert refused[0] == refused[1]  # the first callback, tried again under the same id
    got = accepted(receiver, refused)
    assert [b["status"] for b in got] == ["assigned", "escalated", "resolved"]
    assert len({b["id"] for b in got}) == 3
    assert (
        await pool.fetchval("SELECT count(*) FROM deliveries WHERE delivered_at IS NOT NULL") == 3
    )

    secret = signing_secret(KEY, "p1", 1)
    with receiver.lock:
        sent = list(zip(receiver.headers, receiver.bodies, strict=True))
    for headers, raw in sent:
        assert partner_verifies(secret, headers, raw)
        assert not partner_verifies(signing_secret(KEY, "p2", 1), headers, raw)
        assert headers["webhook-id"] == json.loads(raw)["id"]
    resolved = got[2]
    assert resolved == {
        "id": resolved["id"],
        "type": "tip.status_changed",
        "report_id": "r-wo-1",
        "rider_id": "rider-7",
        "work_order_id": "wo-1",
        "status": "resolved",
        "duplicate": False,
        "category": "exposed-garbage",
        "tier": "community",
        "unit_name": "Unit 1",
        "due_at": None,
        "points": 5,
        "changed_at": "2026-11-02T09:03:00Z",
        "message": resolved["message"],
    }
    assert "5" in resolved["message"]["zh-CN"] and "5 points" in resolved["message"]["en"]


async def test_an_older_partner_update_never_overwrites_a_newer_one(
    pool: Pool, scratch_schema: str, receivers: Receivers
) -> None:
    new, old = receivers(0.0), receivers(0.0)
    await apply(pool, [partner("p1", new.url, [2, 1], at=AT + timedelta(hours=1))])
    await apply(pool, [partner("p1", old.url, [1], at=AT)])
    row = await pool.fetchrow("SELECT callback_url, secret_versions FROM partners")
    assert (row["callback_url"], row["secret_versions"]) == (new.url, [2, 1])
    await apply(pool, tips("p1", "wo-1")[:1])
    async with dispatching(pool, scratch_schema):
        await until(lambda: len(new.bodies) == 1, 10, "the callback at the newer URL")
    assert old.bodies == []


async def test_during_a_rotation_each_secret_in_force_verifies_the_callback(
    pool: Pool, scratch_schema: str, receivers: Receivers
) -> None:
    receiver = receivers(0.0)
    await apply(pool, [partner("p1", receiver.url, [2, 1])])
    await apply(pool, tips("p1", "wo-1")[:1])
    async with dispatching(pool, scratch_schema):
        await until(lambda: len(receiver.bodies) == 1, 10, "the callback")
    headers, raw = receiver.headers[0], receiver.bodies[0]
    assert len(headers["webhook-signature"].split(" ")) == 2
    for version in (2, 1):  # the partner may hold either secret while it rotates
        assert partner_verifies(signing_secret(KEY, "p1", version), headers, raw)
    assert not partner_verifies(signing_secret(KEY, "p1", 3), headers, raw)


async def test_a_revoked_partner_is_sent_nothing(
    pool: Pool, scratch_schema: str, receivers: Receivers
) -> None:
    refusing = receivers(0.0, lambda _: 503)
    await apply(pool, [partner("p1", refusing.url, [1])])
    await apply(pool, tips("p1", "wo-1")[:1])
    async with dispatching(pool, scratch_schema):
        await until(lambda: len(refusing.bodies) >= 1, 10, "a refused attempt")
        await apply(
            pool, [partner("p1", refusing.url, [1], at=AT + timedelta(hours=1), active=False)]
        )
        tried = len(refusing.bodies)
        await apply(pool, tips("p1", "wo-2")[:1])  # after the revocation: not even stored
        await asyncio.sleep(0.6)  # several retry delays
    # At most the attempt in flight when revoked; then nothing.
    assert len(refusing.bodies) <= tried + 1
    rows = await pool.fetch("SELECT work_order_id, dead_at, last_error FROM deliveries")
    assert [(r["work_order_id"], r["last_error"]) for r in rows] == [("wo-1", "partner revoked")]
    assert rows[0]["dead_at"] is not None


async def test_a_callback_claimed_after_a_revocation_is_marked_dead_not_sent(
    pool: Pool, scratch_schema: str, receivers: Receivers
) -> None:
    receiver = receivers(0.0)
    await apply(pool, [partner("p1", receiver.url, [1]), partner("p2", receiver.url, [1])])
    await apply(pool, tips("p1", "wo-1")[:1] + tips("p2", "wo-2")[:1])
    # As if the revocation committed while the tip's transaction was still open.
    await pool.execute("UPDATE partners SET active = false WHERE partner_id = 'p1'")
    await pool.execute("UPDATE partners SET callback_url = NULL WHERE partner_id = 'p2'")
    async with dispatching(pool, scratch_schema):
        await until(lambda: pool.fetchval(f"SELECT ({PENDING}) = 0"), 10, "both given up")
    assert receiver.bodies == []
    reasons = await pool.fetch("SELECT subscription, last_error FROM deliveries ORDER BY 1")
    assert [(r["subscription"], r["last_error"]) for r in reasons] == [
        ("partner:p1", "partner revoked"),
        ("partner:p2", "partner has no callback URL"),
    ]


async def test_a_tip_before_its_partner_waits_for_it_then_goes_out_or_dies(
    pool: Pool, scratch_schema: str, receivers: Receivers
) -> None:
    receiver = receivers(0.0)
    # Tips of p1 and p2 consumed before either partner's PartnerUpdated.
    wo1 = tips("p1", "wo-1")
    await apply(pool, [wo1[0], *tips("p2", "wo-2")[:1]], [wo1[1]])
    assert await pool.fetchval(PENDING) == 3
    async with dispatching(pool, scratch_schema):
        await asyncio.sleep(0.5)
        assert receiver.bodies == []  # parked: nowhere to send them yet
        await apply(pool, [partner("p1", receiver.url, [1]), partner("p2", None, [1])])
        await until(lambda: len(receiver.bodies) == 2, 10, "p1's parked callbacks")
        # Received is not yet recorded: stopping now would leave the last one claimed.
        await until(lambda: pool.fetchval(f"SELECT ({PENDING}) = 0"), 10, "all recorded")
    got = accepted(receiver, [])
    assert [(b["work_order_id"], b["status"]) for b in got] == [
        ("wo-1", "assigned"),
        ("wo-1", "escalated"),
    ]
    rows = await pool.fetch("SELECT work_order_id, delivered_at, last_error FROM deliveries")
    outcome = sorted(
        (r["work_order_id"], r["delivered_at"] is not None, r["last_error"]) for r in rows
    )
    assert outcome == [
        ("wo-1", True, None),
        ("wo-1", True, None),
        ("wo-2", False, "partner has no callback URL"),
    ]


async def test_a_callback_url_set_just_before_the_tip_is_waited_for_not_missed(
    pool: Pool, scratch_schema: str, receivers: Receivers
) -> None:
    """The partner was registered without a URL (AT) and set one (AT + 1 s) before its
    tip; intake emitted the tip's changes under that newer state. notify may consume them
    before the PartnerUpdated that carries the URL, or even before the registration."""
    receiver = receivers(0.0)
    set_url = AT + timedelta(seconds=1)
    wo1, wo2 = tips("p1", "wo-1", partner_at=set_url), tips("p1", "wo-2", partner_at=AT)
    await apply(pool, wo1[:1])  # before the registration too: a placeholder
    await apply(pool, [partner("p1", None, [1], at=AT)])  # the older state: no URL
    await apply(pool, wo1[1:2])  # still behind what intake had
    await apply(pool, wo2[:1])  # emitted before the URL was set: nothing to send
    rows = await pool.fetch("SELECT work_order_id, next_attempt_at, dead_at FROM deliveries")
    assert sorted((r["work_order_id"], r["dead_at"]) for r in rows) == [
        ("wo-1", None),
        ("wo-1", None),
    ]  # parked, not given up for the older state's missing URL
    async with dispatching(pool, scratch_schema):
        await asyncio.sleep(0.5)
        assert receiver.bodies == []
        await apply(pool, [partner("p1", receiver.url, [1], at=set_url)])
        await until(lambda: len(receiver.bodies) == 2, 10, "the callbacks waiting for the URL")
        await until(lambda: pool.fetchval(f"SELECT ({PENDING}) = 0"), 10, "all recorded")
    got = accepted(receiver, [])
    assert [(b["work_order_id"], b["status"]) for b in got] == [
        ("wo-1", "assigned"),
        ("wo-1", "escalated"),
    ]
    assert await pool.fetchval("SELECT count(*) FROM deliveries WHERE attempts <> 1") == 0


async def test_without_the_partner_secret_key_callbacks_wait_stored(
    pool: Pool, scratch_schema: str, receivers: Receivers, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = receivers(0.0)
    await apply(pool, [partner("p1", receiver.url, [1])])
    await apply(pool, tips("p1", "wo-1")[:1])
    registry = CollectorRegistry()
    async with dispatching(pool, scratch_schema, key=None, registry=registry):
        await asyncio.sleep(0.3)
        await apply(pool, [partner("p2", receiver.url, [1])])  # partners change: no new warning
        await asyncio.sleep(0.3)
    assert registry.get_sample_value("gridline_notify_partner_signing_enabled") == 0
    warnings = [r for r in caplog.records if "GRIDLINE_PARTNER_SECRET_KEY" in r.getMessage()]
    assert len(warnings) == 1
    assert receiver.bodies == []
    assert await pool.fetchval(PENDING) == 1
    async with dispatching(pool, scratch_schema):  # restarted with the key
        await until(lambda: len(receiver.bodies) == 1, 10, "the waiting callback")
