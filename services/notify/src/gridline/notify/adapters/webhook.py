"""Posting signed notifications to receivers (Standard Webhooks headers) over one
keep-alive client."""

from __future__ import annotations

import time

import httpx

from gridline.notify.domain.signing import sign


def open_client(timeout: float, connections: int) -> httpx.AsyncClient:
    """The one client of the process: connections kept alive and bounded in number; every
    phase of a request (connect, write, read, waiting for a pooled connection) timed out.

    `connections` must cover every sending slot of every subscription, or a slow receiver
    holding its connections would make the others wait for one."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(
            max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=30
        ),
    )


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
