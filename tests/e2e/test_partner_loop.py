"""A rider's tip through the whole loop on the running stack, as a delivery platform meets it
(docs/api.md, "Partners"): discover (a signed tip with the rider's opaque id) → handle (the
grid worker resolves the order) → feed back (signed status callbacks to the partner's URL,
retried while it refuses, in order) → reward (the rider's balance and the street's monthly
leaderboard). The rider's phone number and name, sent with the tip, reach no topic, no
callback and no log."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from gridline.common.policy.catalogue import Catalogue
from gridline.common.settings import KafkaSettings
from gridline.notify.domain.signing import verify

from .receiver import Receiver
from .stack import Stack, rider_mark, wait_until
from .test_personal_data import read_topics
from .test_pipeline import grid_point

pytestmark = pytest.mark.e2e


def signed_get(stack: Stack, partner: dict[str, Any], path: str) -> httpx.Response:
    headers = stack.partner_headers(b"", partner["key"], partner["secret"])
    return httpx.get(f"{stack.url('intake')}{path}", headers=headers, timeout=15)


def test_a_riders_tip_is_handled_called_back_and_rewarded_exactly_once(
    stack: Stack, catalogue: Catalogue
) -> None:
    callbacks = Receiver(refuse_first=2)  # the partner's endpoint refuses the first attempts
    callbacks.start()
    try:
        run(stack, catalogue, callbacks)
    finally:
        callbacks.stop()


def run(stack: Stack, catalogue: Catalogue, callbacks: Receiver) -> None:
    admin = {"Authorization": f"Bearer {stack.credentials['admin_key']}"}
    intake = stack.url("intake")
    mark = uuid.uuid4().hex[:8]
    answer = httpx.post(
        f"{intake}/admin/partners",
        json={"name": f"loop-{mark}", "rate_per_s": 50, "burst": 50},
        headers=admin,
        timeout=15,
    )
    assert answer.status_code == 201, answer.text
    partner = answer.json()
    body = json.dumps({"url": callbacks.url}).encode()
    put = httpx.put(
        f"{intake}/v1/partner/callback",
        content=body,
        headers=stack.partner_headers(body, partner["key"], partner["secret"]),
        timeout=15,
    )
    assert put.status_code == 200, put.text

    grid_unit, grid_key = stack.handler_key("grid")
    lat, lon = grid_point(stack, grid_unit)
    category = next(
        c for c in catalogue.categories if c.entry_tier.value == "grid" and c.points > 0
    )
    rider = f"rider-{rider_mark()}"
    phone, name = f"+86 138 {int(mark, 16) % 10**8:08d}", f"Zhang{mark}"
    tip = json.dumps(
        {
            "service_code": category.code,
            "lat": lat,
            "long": lon,
            "description": f"骑手随手拍 {mark}: {category.name_zh}",
            "rider_id": rider,
            "reporter": {"phone": phone, "first_name": name},
        }
    ).encode()
    sent = httpx.post(
        f"{intake}/v1/reports",
        content=tip,
        headers=stack.partner_headers(tip, partner["key"], partner["secret"]),
        timeout=15,
    )
    assert sent.status_code == 201, sent.text
    report_id = sent.json()["id"]

    def statuses() -> list[str]:
        return [d.json["status"] for d in callbacks.deliveries if d.json["report_id"] == report_id]

    wait_until(lambda: "assigned" in statuses(), timeout=60, what="the assigned callback")
    resolved = httpx.post(
        f"{stack.url('routing')}/v1/workorders/{report_id}/resolve",
        headers={"authorization": f"Bearer {grid_key}"},
        timeout=15,
    )
    assert resolved.status_code == 200, resolved.text
    wait_until(lambda: "resolved" in statuses(), timeout=60, what="the resolved callback")

    # Feed back: each status once, in order, signed with the partner's secret; the refused
    # attempts were retried under the same webhook id.
    assert callbacks.refused == 2
    assert statuses() == ["assigned", "resolved"]
    mine = [d for d in callbacks.deliveries if d.json["report_id"] == report_id]
    for d in mine:
        h = d.headers
        assert verify(
            partner["secret"], h["webhook-id"], int(h["webhook-timestamp"]), d.body,
            h["webhook-signature"],
        )  # fmt: skip
        assert not verify("gps_not-the-secret", h["webhook-id"], int(h["webhook-timestamp"]),
                          d.body, h["webhook-signature"])  # fmt: skip
    done = mine[-1].json
    assert done["rider_id"] == rider and done["work_order_id"] == report_id
    assert done["points"] == category.points and not done["duplicate"]
    assert category.name_zh in done["message"]["zh-CN"]

    # Reward: the rider's balance and history, and the street's leaderboard this month.
    points = signed_get(stack, partner, f"/v1/partner/riders/{rider}/points")
    assert points.status_code == 200, points.text
    assert points.json()["balance"] == category.points
    assert [e["report_id"] for e in points.json()["entries"]] == [report_id]
    street = points.json()["entries"][0]["street_id"]
    month = datetime.now(ZoneInfo(catalogue.timezone)).strftime("%Y-%m")
    board = signed_get(stack, partner, f"/v1/partner/leaderboard?street_id={street}&month={month}")
    assert board.status_code == 200, board.text
    assert board.json()["riders"] == [
        {"rank": 1, "rider_id": rider, "points": category.points, "tips": 1}
    ]
    # Another partner sees none of it.
    demo = {"key": stack.credentials["partner_key"], "secret": stack.credentials["partner_secret"]}
    assert signed_get(stack, demo, f"/v1/partner/riders/{rider}/points").json()["balance"] == 0

    # The rider's phone number and name went nowhere but intake's own table.
    topics = asyncio.run(read_topics(KafkaSettings().bootstrap))
    digits = "".join(ch for ch in phone if ch.isdigit())
    leaks = [
        f"{topic}: {value}"
        for topic, records in topics.items()
        for record in records
        for value in (phone, digits, name)
        if value.encode() in record
    ]
    leaks += [f"callback: {v}" for d in mine for v in (phone, digits, name) if v.encode() in d.body]
    for log in stack.workdir.glob("*.log"):
        text = log.read_text(encoding="utf-8", errors="replace")
        leaks += [f"{log.name}: {v}" for v in (phone, digits, name) if v in text]
    assert not leaks, leaks
    tips_topic = [r for r in topics["gridline.tips"] if report_id.encode() in r]
    assert len(tips_topic) == 2 and all(rider.encode() in r for r in tips_topic)
