"""Partners' signing secrets and the signature of their requests (pure).

A partner's signing secret is derived, not stored: HMAC-SHA256 of the partner's id and the
secret's version under the stack's partner secret key (GRIDLINE_PARTNER_SECRET_KEY), which
intake (verifying requests) and notify (signing callbacks) share. So no table and no event
holds a partner's secret; rotating it is bumping its version.

A partner signs every request (docs/api.md, "Partners"):
    X-Gridline-Timestamp: <unix seconds>
    X-Gridline-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>
The timestamp must lie within REPLAY_WINDOW_S of the receiver's wall clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

TIMESTAMP_HEADER = "x-gridline-timestamp"
SIGNATURE_HEADER = "x-gridline-signature"
REPLAY_WINDOW_S = 300
SECRET_PREFIX = "gps_"


def signing_secret(master_key: str, partner_id: str, version: int) -> str:
    """The partner's signing secret of `version` (shown to the partner once, at issue)."""
    digest = hmac.new(
        master_key.encode(), f"partner-secret.{partner_id}.{version}".encode(), hashlib.sha256
    ).digest()
    return SECRET_PREFIX + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def request_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Gridline-Signature value of a request: "v1=" + hex HMAC-SHA256."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


@dataclass(frozen=True)
class SignatureProblem(Exception):
    """Why a request's signature is refused (401), in words that say what to fix."""

    message: str

    def __str__(self) -> str:
        return self.message


def check_request(
    secrets: list[str], timestamp: str | None, signature: str | None, body: bytes, now: float
) -> None:
    """Raise SignatureProblem unless `signature` is a valid v1 signature of `body` at
    `timestamp` under one of `secrets` (two during a secret's rotation overlap) and the
    timestamp lies within the replay window of `now` (wall-clock unix seconds)."""
    if not timestamp:
        raise SignatureProblem(f"the {TIMESTAMP_HEADER} header (unix seconds) is required")
    if not signature:
        raise SignatureProblem(f"the {SIGNATURE_HEADER} header (v1=<hex HMAC-SHA256>) is required")
    try:
        at = int(timestamp)
    except ValueError:
        raise SignatureProblem(
            f"{TIMESTAMP_HEADER} must be whole unix seconds, got {timestamp[:40]!r}"
        ) from None
    if abs(now - at) > REPLAY_WINDOW_S:
        raise SignatureProblem(
            f"{TIMESTAMP_HEADER} is {now - at:+.0f} s from the server's clock; it must lie within"
            f" ±{REPLAY_WINDOW_S} s (sign each request, and each retry, anew)"
        )
    presented = [s.strip() for s in signature.split(",") if s.strip()]
    for secret in secrets:
        expected = request_signature(secret, timestamp, body)
        if any(hmac.compare_digest(expected, p) for p in presented):
            return
    raise SignatureProblem(
        f"{SIGNATURE_HEADER} does not match: sign '<timestamp>.' followed by the exact body"
        " bytes with HMAC-SHA256 under your signing secret, hex-encoded, prefixed 'v1='"
    )
