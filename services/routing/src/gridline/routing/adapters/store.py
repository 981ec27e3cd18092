"""Work orders, policy versions and handler keys in PostgreSQL (schema `routing`)."""

from __future__ import annotations

from typing import Any

from gridline.common.pg import Connection
from gridline.common.policy.tiers import Tier
from gridline.routing.domain.workorder import Place, State, WorkOrder

_COLUMNS = (
    "id, report_id, category, department_id, source, lat, lon, grid_id, community_id,"
    " street_id, district_id, state, tier, unit_id, assignment_seq, assigned_at, due_at,"
    " opened_at, resolved_at, version, policy_version"
)


def _from_row(row: Any) -> WorkOrder:
    return WorkOrder(
        id=row["id"],
        report_id=row["report_id"],
        category=row["category"],
        department_id=row["department_id"],
        source=row["source"],
        lat=row["lat"],
        lon=row["lon"],
        place=Place(row["grid_id"], row["community_id"], row["street_id"], row["district_id"]),
        state=State(row["state"]),
        tier=Tier(row["tier"]) if row["tier"] else None,
        unit_id=row["unit_id"],
        assignment_seq=row["assignment_seq"],
        assigned_at=row["assigned_at"],
        due_at=row["due_at"],
        opened_at=row["opened_at"],
        resolved_at=row["resolved_at"],
        version=row["version"],
        policy_version=row["policy_version"],
    )


async def get(conn: Connection, order_id: str, *, for_update: bool = False) -> WorkOrder | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM work_orders WHERE id = $1{lock}", order_id)
    return _from_row(row) if row else None


async def exists_for_report(conn: Connection, report_id: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM work_orders WHERE report_id = $1", report_id))


async def insert(conn: Connection, order: WorkOrder, description: str) -> None:
    p = order.place
    await conn.execute(
        f"INSERT INTO work_orders ({_COLUMNS}, description) VALUES"
        " ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22)",
        order.id,
        order.report_id,
        order.category,
        order.department_id,
        order.source,
        order.lat,
        order.lon,
        p.grid_id,
        p.community_id,
        p.street_id,
        p.district_id,
        order.state.value,
        order.tier.value if order.tier else None,
        order.unit_id,
        order.assignment_seq,
        order.assigned_at,
        order.due_at,
        order.opened_at,
        order.resolved_at,
        order.version,
        order.policy_version,
        description,
    )


async def update(conn: Connection, order: WorkOrder) -> None:
    p = order.place
    await conn.execute(
        "UPDATE work_orders SET state=$2, tier=$3, unit_id=$4, assignment_seq=$5,"
        " assigned_at=$6, due_at=$7, resolved_at=$8, version=$9, category=$10,"
        " department_id=$11, grid_id=$12, community_id=$13, street_id=$14, district_id=$15"
        " WHERE id=$1",
        order.id,
        order.state.value,
        order.tier.value if order.tier else None,
        order.unit_id,
        order.assignment_seq,
        order.assigned_at,
        order.due_at,
        order.resolved_at,
        order.version,
        order.category,
        order.department_id,
        p.grid_id,
        p.community_id,
        p.street_id,
        p.district_id,
    )


async def record_history(
    conn: Connection, order: WorkOrder, event_type: str, detail: dict[str, Any]
) -> None:
    await conn.execute(
        "INSERT INTO work_order_history (work_order_id, version, event_type, at, detail)"
        " VALUES ($1, $2, $3, $4, $5)",
        order.id,
        order.version,
        event_type,
        order.resolved_at or order.assigned_at,
        detail,
    )


async def history(conn: Connection, order_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT version, event_type, at, detail FROM work_order_history"
        " WHERE work_order_id = $1 ORDER BY version",
        order_id,
    )
    return [dict(r) for r in rows]


async def list_open(conn: Connection, units: list[str] | None, limit: int) -> list[WorkOrder]:
    """Open orders held by `units` (every open order when None), soonest due first."""
    if units is None:
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM work_orders WHERE state <> 'resolved'"
            " ORDER BY due_at NULLS LAST, id LIMIT $1",
            limit,
        )
    else:
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM work_orders WHERE unit_id = ANY($1::text[])"
            " AND state <> 'resolved' ORDER BY due_at NULLS LAST, id LIMIT $2",
            units,
            limit,
        )
    return [_from_row(r) for r in rows]


async def save_policy(conn: Connection, kind: str, version: str, document: Any, at: Any) -> None:
    await conn.execute(
        "INSERT INTO policy_versions (kind, version, document, activated_at) VALUES ($1,$2,$3,$4)",
        kind,
        version,
        document,
        at,
    )


async def latest_version(conn: Connection, kind: str) -> str | None:
    value = await conn.fetchval(
        "SELECT version FROM policy_versions WHERE kind = $1 ORDER BY id DESC LIMIT 1", kind
    )
    return str(value) if value is not None else None


async def latest_policy(conn: Connection, kind: str) -> Any | None:
    return await conn.fetchval(
        "SELECT document FROM policy_versions WHERE kind = $1 ORDER BY id DESC LIMIT 1", kind
    )


async def put_handler_keys(conn: Connection, keys: list[tuple[str, str]]) -> None:
    await conn.executemany(
        "INSERT INTO handler_keys (key_sha256, unit_id) VALUES ($1, $2)"
        " ON CONFLICT (key_sha256) DO UPDATE SET unit_id = EXCLUDED.unit_id",
        keys,
    )


async def unit_of_key(conn: Connection, key_sha256: str) -> str | None:
    value = await conn.fetchval(
        "SELECT unit_id FROM handler_keys WHERE key_sha256 = $1", key_sha256
    )
    return str(value) if value is not None else None
