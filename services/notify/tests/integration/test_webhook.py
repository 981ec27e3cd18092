"""The webhook client against local receivers: Standard Webhooks headers, one kept-alive
connection, and what each kind of failure is recorded as."""

from __future__ import annotations

import json
import socket
import time

import pytest

from gridline.notify.adapters import webhook
from gridline.notify.domain.signing import verify

from .conftest import Receivers

pytestmark = pytest.mark.integration

SECRET = "s" * 24


def body(nid: str) -> bytes:
    data = {"work_order_id": "wo-1", "version": 1}
    return json.dumps({"id": nid, "message": {"en": "工单"}, "event": {"data": data}}).encode()


async def test_signed_posts_share_one_kept_alive_connection(receivers: Receivers) -> None:
    receiver = receivers(0.0, lambda _: 200)  # a 200 with a body, read before reuse
    async with webhook.open_client(5.0, connections=4, per_receiver=4) as client:
        for n in range(3):
            before = int(time.time())
            assert (
                await webhook.post(client, receiver.url, f"n{n}", body(f"n{n}"), [SECRET]) is None
            )
    assert len(receiver.connections) == 1
    assert [nid for _, _, nid in receiver.received] == ["n0", "n1", "n2"]
    headers, sent = receiver.headers[-1], receiver.bodies[-1]
    assert sent == body("n2")
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["webhook-id"] == "n2"
    ts = int(headers["webhook-timestamp"])
    assert before <= ts <= time.time()
    assert verify(SECRET, "n2", ts, sent, headers["webhook-signature"])


async def test_a_refusal_or_a_redirect_is_recorded_as_its_status(receivers: Receivers) -> None:
    refusing, redirecting = receivers(0.0, lambda _: 503), receivers(0.0, lambda _: 302)
    async with webhook.open_client(5.0, connections=4, per_receiver=4) as client:
        assert await webhook.post(client, refusing.url, "n1", body("n1"), [SECRET]) == "HTTP 503"
        assert await webhook.post(client, redirecting.url, "n2", body("n2"), [SECRET]) == "HTTP 302"
    assert len(redirecting.received) == 1  # not followed to /elsewhere


async def test_transport_failures_and_timeouts_are_recorded_as_errors(
    receivers: Receivers,
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    slow = receivers(2.0)
    async with webhook.open_client(0.3, connections=4, per_receiver=4) as client:
        refused = await webhook.post(client, closed, "n1", body("n1"), [SECRET])
        assert refused is not None and refused.startswith("ClientConnectorError: "), refused
        started = time.monotonic()
        late = await webhook.post(client, slow.url, "n2", body("n2"), [SECRET])
        assert late == "TimeoutError: no answer within 0.3 s"
        assert time.monotonic() - started < 1.5
        # https is spoken as TLS: a plain-HTTP receiver cannot acknowledge it.
        tls = await webhook.post(client, slow.url.replace("http:", "https:"), "n3", b"{}", [SECRET])
        assert tls is not None and not tls.startswith("HTTP"), tls
