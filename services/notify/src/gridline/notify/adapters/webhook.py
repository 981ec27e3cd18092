"""Posting one signed notification to a receiver (Standard Webhooks headers)."""

from __future__ import annotations

import time

import httpx

from gridline.notify.domain.signing import sign


async def post(
    client: httpx.AsyncClient, url: str, notification_id: str, body: bytes, secret: str
) -> str | None:
    """None when the receiver acknowledged with a 2xx, else what went wrong."""
    ts = int(time.time())
    headers = {
        "content-type": "application/json; charset=utf-8",
        "webhook-id": notification_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, notification_id, ts, body),
    }
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}"
