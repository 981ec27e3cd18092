"""Bearer keys on HTTP requests."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_admin(request: Request, admin_key: str | None) -> None:
    """403 unless the request carries the admin key as `Authorization: Bearer <key>`."""
    token = bearer(request)
    if token is None:
        raise HTTPException(401, "send the admin key as 'Authorization: Bearer <admin_key>'")
    if admin_key is None or not hmac.compare_digest(token.encode(), admin_key.encode()):
        raise HTTPException(403, "the admin key is not valid")
