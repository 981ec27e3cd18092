"""Webhook signatures in the Standard Webhooks form: HMAC-SHA256 over "id.timestamp.body"."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence


def sign(secret: str, notification_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: "v1,<base64 HMAC-SHA256>"."""
    signed = f"{notification_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, notification_id: str, timestamp: int, body: bytes, header: str) -> bool:
    """What a receiver does: recompute and compare in constant time (any listed v1 sig)."""
    expected = sign(secret, notification_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in header.split())


def backoff_seconds(attempts: int, base: float, cap: float) -> float:
    """Delay before the next try after `attempts` failures: base x 2^(n-1), capped."""
    return float(min(cap, base * (2 ** max(0, attempts - 1))))


def sign_all(secrets: Sequence[str], notification_id: str, timestamp: int, body: bytes) -> str:
    """One "v1,..." signature per secret, space-separated, as Standard Webhooks allows
    while a secret is being rotated; a receiver accepts any one it can verify."""
    return " ".join(sign(s, notification_id, timestamp, body) for s in secrets)
