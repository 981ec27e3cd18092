"""Handler keys in PostgreSQL: SHA-256 digests bound to units, with expiry and revocation.
A revoked key stays revoked; binding its digest again is refused."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gridline.common.pg import Connection


@dataclass(frozen=True)
class Binding:
    unit_id: str
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_reason: str | None


async def binding(conn: Connection, key_sha256: str) -> Binding | None:
    row = await conn.fetchrow(
        "SELECT unit_id, expires_at, revoked_at, revoked_reason FROM handler_keys"
        " WHERE key_sha256 = $1",
        key_sha256,
    )
    return Binding(**dict(row)) if row else None


async def revoked_among(conn: Connection, digests: Sequence[str]) -> set[str]:
    """Which of these digests belong to revoked keys."""
    rows = await conn.fetch(
        "SELECT key_sha256 FROM handler_keys"
        " WHERE key_sha256 = ANY($1::text[]) AND revoked_at IS NOT NULL",
        list(digests),
    )
    return {r["key_sha256"] for r in rows}


async def bind(
    conn: Connection, keys: Sequence[tuple[str, str, datetime | None]], now: datetime
) -> None:
    """(digest, unit, expires_at) bound or rebound in one statement; a revoked digest is
    left as it is (the caller refused it already)."""
    if not keys:
        return
    await conn.execute(
        "INSERT INTO handler_keys (key_sha256, unit_id, expires_at, created_at)"
        " SELECT d, u, e, $4 FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS k(d, u, e)"
        " ON CONFLICT (key_sha256) DO UPDATE"
        " SET unit_id = EXCLUDED.unit_id, expires_at = EXCLUDED.expires_at"
        " WHERE handler_keys.revoked_at IS NULL",
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        now,
    )


async def revoke(
    conn: Connection, *, key_sha256: str | None, unit_id: str | None, reason: str, now: datetime
) -> list[str]:
    """Revoke one key (by digest) or every live key of a unit; returns the units whose
    keys were revoked, one entry per key."""
    rows = await conn.fetch(
        "UPDATE handler_keys SET revoked_at = $3, revoked_reason = $4"
        " WHERE revoked_at IS NULL AND (key_sha256 = $1 OR unit_id = $2) RETURNING unit_id",
        key_sha256,
        unit_id,
        now,
        reason,
    )
    return [r["unit_id"] for r in rows]


async def revoke_unknown_units(
    conn: Connection, knows_unit: Callable[[str], bool], reason: str, now: datetime
) -> list[str]:
    """Revoke every live key bound to a unit the new policy lacks: a unit id that a later
    jurisdiction reuses must not inherit it. Returns the units whose keys were revoked."""
    units = [
        r["unit_id"]
        for r in await conn.fetch(
            "SELECT DISTINCT unit_id FROM handler_keys WHERE revoked_at IS NULL"
        )
    ]
    gone = sorted(u for u in units if not knows_unit(u))
    if gone:
        await conn.execute(
            "UPDATE handler_keys SET revoked_at = $2, revoked_reason = $3"
            " WHERE revoked_at IS NULL AND unit_id = ANY($1::text[])",
            gone,
            now,
            reason,
        )
    return gone


async def listing(conn: Connection, unit_id: str | None) -> list[dict[str, Any]]:
    """Every key (or a unit's), newest first: a digest prefix, never the whole digest."""
    rows = await conn.fetch(
        "SELECT left(key_sha256, 12) AS key_sha256_prefix, unit_id, created_at, expires_at,"
        " revoked_at, revoked_reason FROM handler_keys"
        " WHERE $1::text IS NULL OR unit_id = $1 ORDER BY created_at DESC, key_sha256",
        unit_id,
    )
    return [dict(r) for r in rows]
