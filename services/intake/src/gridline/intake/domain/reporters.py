"""Reporters' opaque references: events, logs and webhooks name a reporter only by this.

The reference is an HMAC of the reporter's most stable identity under a key that never
leaves intake, so the same person gets the same reference (repeated complaints, feedback)
and nobody outside intake can recover a phone number or email from it (a plain hash of a
phone number could be reversed by trying every number)."""

from __future__ import annotations

import hashlib
import hmac


def identity(
    *,
    email: str | None,
    phone: str | None,
    device_id: str | None,
    account_id: str | None,
    client: str,
    partner_id: str | None = None,
    rider_id: str | None = None,
) -> str | None:
    """The most stable thing that names the reporter, or None for an anonymous report.
    An account id is the client's own, so it is namespaced by the client; a partner's
    rider id by the partner (and it wins: it is what the partner knows the rider by)."""
    if partner_id and rider_id:
        return f"rider:{partner_id}:{rider_id}"
    if email:
        return "email:" + email.strip().lower()
    if phone:
        digits = "".join(ch for ch in phone if ch.isdigit())
        if digits:
            return "phone:" + digits
    if device_id:
        return f"device:{client}:{device_id}"
    if account_id:
        return f"account:{client}:{account_id}"
    return None


def reference(key: bytes, who: str | None) -> str | None:
    if who is None:
        return None
    return "rep_" + hmac.new(key, who.encode(), hashlib.sha256).hexdigest()[:24]
