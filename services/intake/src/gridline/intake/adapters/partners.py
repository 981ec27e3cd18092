"""Partners and their keys in PostgreSQL (intake's tables `partners`, `partner_keys`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gridline.common.pg import Connection
from gridline.intake.domain.partners import Key, Partner

_COLUMNS = (
    "partner_id, name, active, secret_versions, secret_overlap_until, rate_per_s, burst,"
    " callback_url, created_at, updated_at"
)


def _partner(row: Any) -> Partner:
    return Partner(
        partner_id=row["partner_id"],
        name=row["name"],
        active=row["active"],
        secret_versions=tuple(row["secret_versions"]),
        secret_overlap_until=row["secret_overlap_until"],
        rate_per_s=row["rate_per_s"],
        burst=row["burst"],
        callback_url=row["callback_url"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def insert(conn: Connection, partner: Partner) -> bool:
    """False when a partner of that name exists already."""
    status: str = await conn.execute(
        f"INSERT INTO partners ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (name) DO NOTHING",
        partner.partner_id,
        partner.name,
        partner.active,
        list(partner.secret_versions),
        partner.secret_overlap_until,
        partner.rate_per_s,
        partner.burst,
        partner.callback_url,
        partner.created_at,
        partner.updated_at,
    )
    return status.endswith(" 1")


async def update(conn: Connection, partner: Partner) -> None:
    await conn.execute(
        "UPDATE partners SET active = $2, secret_versions = $3, secret_overlap_until = $4,"
        " rate_per_s = $5, burst = $6, callback_url = $7, updated_at = $8"
        " WHERE partner_id = $1",
        partner.partner_id,
        partner.active,
        list(partner.secret_versions),
        partner.secret_overlap_until,
        partner.rate_per_s,
        partner.burst,
        partner.callback_url,
        partner.updated_at,
    )


async def by_name(conn: Connection, name: str, *, lock: bool = False) -> Partner | None:
    """The partner named `name` (or with that id); locked for a change when `lock`."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM partners WHERE name = $1 OR partner_id = $1"
        + (" FOR UPDATE" if lock else ""),
        name,
    )
    return None if row is None else _partner(row)


async def by_id(conn: Connection, partner_id: str, *, lock: bool = False) -> Partner | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM partners WHERE partner_id = $1" + (" FOR UPDATE" if lock else ""),
        partner_id,
    )
    return None if row is None else _partner(row)


async def all_partners(conn: Connection) -> list[Partner]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM partners ORDER BY created_at, partner_id")
    return [_partner(r) for r in rows]


async def add_key(conn: Connection, digest: bytes, partner_id: str, now: datetime) -> None:
    await conn.execute(
        "INSERT INTO partner_keys (key_digest, partner_id, created_at) VALUES ($1, $2, $3)",
        digest,
        partner_id,
        now,
    )


async def expire_keys(conn: Connection, partner_id: str, at: datetime) -> None:
    """Every key of the partner valid after `at` expires then (an earlier expiry stays)."""
    await conn.execute(
        "UPDATE partner_keys SET expires_at = $2 WHERE partner_id = $1"
        " AND (expires_at IS NULL OR expires_at > $2)",
        partner_id,
        at,
    )


async def key_counts(conn: Connection, now: datetime) -> dict[str, int]:
    """How many keys of each partner are valid at `now`."""
    rows = await conn.fetch(
        "SELECT partner_id, count(*) AS n FROM partner_keys"
        " WHERE expires_at IS NULL OR expires_at > $1 GROUP BY partner_id",
        now,
    )
    return {r["partner_id"]: r["n"] for r in rows}


async def directory(conn: Connection) -> tuple[list[tuple[bytes, Key]], list[Partner]]:
    """Every key and every partner, for the front door's in-memory look-up: one snapshot,
    so a key is never read without its partner."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        keys = await conn.fetch("SELECT key_digest, partner_id, expires_at FROM partner_keys")
        return (
            [(bytes(r["key_digest"]), Key(r["partner_id"], r["expires_at"])) for r in keys],
            await all_partners(conn),
        )
