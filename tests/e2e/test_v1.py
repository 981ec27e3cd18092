"""The native API (/v1) and Idempotency-Key against the running stack: a retried or
concurrent write opens one work order, a batch opens one per accepted item."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from typing import Any

import asyncpg
import httpx

from gridline.common.policy.catalogue import Catalogue

from .stack import Stack, wait_until, work_orders_per_report
from .test_pipeline import grid_point


def _report(stack: Stack, catalogue: Catalogue, **fields: Any) -> dict[str, Any]:
    lat, lon = grid_point(stack, stack.handler_key("grid")[0])
    return {
        "service_code": catalogue.categories[0].code,
        "lat": lat,
        "long": lon,
        "description": f"e2e {uuid.uuid4()}",
        **fields,
    }


def _stored(description: str) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(os.environ["DATABASE_URL"])
        try:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM intake.requests WHERE description=$1", description
                )
            )
        finally:
            await conn.close()

    return asyncio.run(count())


def _one_work_order(report_id: str) -> None:
    database = os.environ["DATABASE_URL"]
    wait_until(
        lambda: work_orders_per_report(database, [report_id]) == {report_id: 1},
        what=f"one work order for {report_id}",
    )


def test_a_retry_after_a_timeout_gets_the_same_report_and_one_work_order(
    stack: Stack, catalogue: Catalogue
) -> None:
    url = f"{stack.url('intake')}/v1/reports"
    report = _report(stack, catalogue, tags=["e2e"])
    headers = {
        "X-Api-Key": stack.credentials["open311_api_key"],
        "Idempotency-Key": str(uuid.uuid4()),
    }
    # The client gives up before the answer (it may or may not have been stored): retry.
    impatient = httpx.Client(timeout=httpx.Timeout(10, read=0.0005))
    with impatient, contextlib.suppress(httpx.TimeoutException):
        impatient.post(url, json=report, headers=headers)
    with httpx.Client(timeout=10) as client:
        retry = client.post(url, json=report, headers=headers)
        again = client.post(url, json=report, headers=headers)
        assert retry.status_code == 201, retry.text
        assert again.status_code == 201 and again.content == retry.content
        assert again.headers["Idempotent-Replayed"] == "true"
        other = client.post(url, json={**report, "tags": ["other"]}, headers=headers)
        assert other.status_code == 409, other.text
    _one_work_order(retry.json()["id"])
    assert _stored(report["description"]) == 1


def test_open311_post_with_an_idempotency_key_stores_one_report(
    stack: Stack, catalogue: Catalogue
) -> None:
    report = _report(stack, catalogue)
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    url = f"{stack.url('intake')}/open311/v2/requests.json"
    form = {"api_key": stack.credentials["open311_api_key"], **report}
    with httpx.Client(timeout=10) as client:
        first = client.post(url, data=form, headers=headers)
        retry = client.post(url, data=form, headers=headers)
        other = client.post(url, data={**form, "description": "other"}, headers=headers)
    assert first.status_code == 200 and retry.content == first.content
    assert other.status_code == 409 and other.json()[0]["code"] == 409
    _one_work_order(first.json()[0]["service_request_id"])
    assert _stored(report["description"]) == 1


def test_a_mixed_batch_opens_a_work_order_per_accepted_item_only(
    stack: Stack, catalogue: Catalogue
) -> None:
    good = [_report(stack, catalogue) for _ in range(3)]
    bad = [{**good[0], "lat": 39.9, "long": 116.4}, {**good[1], "photos": ["file:///x"]}]
    items = [good[0], bad[0], good[1], bad[1], good[2]]
    with httpx.Client(timeout=30) as client:
        body = json.dumps({"reports": items}).encode()
        answer = client.post(
            f"{stack.url('intake')}/v1/reports/batch",
            content=body,
            headers=stack.partner_headers(body),
        )
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [201, 400, 201, 400, 201]
    ids = [r["id"] for r in results if r["status"] == 201]
    database = os.environ["DATABASE_URL"]
    wait_until(
        lambda: work_orders_per_report(database, ids) == dict.fromkeys(ids, 1),
        what="a work order per accepted item",
    )
    assert [_stored(g["description"]) for g in good] == [1, 1, 1]


def test_concurrent_requests_with_one_key_open_one_work_order(
    stack: Stack, catalogue: Catalogue
) -> None:
    report = _report(stack, catalogue)
    body = json.dumps(report).encode()
    headers = {**stack.partner_headers(body), "Idempotency-Key": str(uuid.uuid4())}

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post(f"{stack.url('intake')}/v1/reports", content=body, headers=headers)
                    for _ in range(8)
                )
            )

    answers = asyncio.run(race())
    assert {a.status_code for a in answers} == {201}
    assert len({a.content for a in answers}) == 1
    _one_work_order(answers[0].json()["id"])
    assert _stored(report["description"]) == 1
