"""Every policy version ever put into effect (policy_versions): listed, shown, re-read."""

from __future__ import annotations

from typing import Any

from gridline.common.pg import Connection

# In effect: the newest row of its kind (a rollback stores the old document as a new row).
_LISTED = (
    "SELECT id, kind, version, activated_at,"
    " id = max(id) OVER (PARTITION BY kind) AS in_effect,"
    " CASE WHEN kind = 'catalogue' THEN document->>'version' END AS label"
    " FROM policy_versions"
)


async def listing(
    conn: Connection, kind: str | None, limit: int, before_id: int | None
) -> list[dict[str, Any]]:
    """Newest first; `before_id` pages on."""
    rows = await conn.fetch(
        f"SELECT * FROM ({_LISTED}) v WHERE ($1::text IS NULL OR kind = $1)"
        " AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        kind,
        before_id,
        limit,
    )
    return [dict(r) for r in rows]


async def one(conn: Connection, version_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT v.*, p.document FROM ({_LISTED}) v JOIN policy_versions p USING (id)"
        " WHERE v.id = $1",
        version_id,
    )
    return dict(row) if row else None
