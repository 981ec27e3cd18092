"""Reports and policy in PostgreSQL (schema `intake`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gridline.common.pg import Connection
from gridline.intake.domain.status import RequestStatus

REQUEST_COLUMNS = (
    "service_request_id, work_order_id, token, service_code, description, lat, lon,"
    " address_string, media_url, source, requested_datetime, updated_datetime, status,"
    " status_notes, agency_responsible, expected_datetime"
)


async def insert_request(conn: Connection, row: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO requests (service_request_id, work_order_id, token, service_code,"
        " description, lat, lon, address_string, media_url, source, reporter,"
        " requested_datetime, updated_datetime, status_notes)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$12,$13)",
        row["service_request_id"],
        row["work_order_id"],
        row["token"],
        row["service_code"],
        row["description"],
        row["lat"],
        row["lon"],
        row["address_string"],
        row["media_url"],
        row["source"],
        row["reporter"],
        row["requested_datetime"],
        row["status_notes"],
    )


async def apply_status(
    conn: Connection,
    work_order_id: str,
    version: int,
    status: RequestStatus,
    at: datetime,
    service_code: str,
) -> bool:
    """Apply a newer work-order state; an older or repeated one changes nothing. The
    category follows the order's (triage may correct it)."""
    result = await conn.execute(
        "UPDATE requests SET status=$3, agency_responsible=$4, expected_datetime=$5,"
        " status_notes=$6, updated_datetime=$7, event_version=$2, service_code=$8"
        " WHERE work_order_id=$1 AND event_version < $2",
        work_order_id,
        version,
        status.status,
        status.agency_responsible,
        status.expected_datetime,
        status.status_notes,
        at,
        service_code,
    )
    return bool(result.endswith(" 1"))


async def get_request(conn: Connection, request_id: str) -> Any:
    return await conn.fetchrow(
        f"SELECT {REQUEST_COLUMNS} FROM requests WHERE service_request_id=$1", request_id
    )


async def request_id_for_token(conn: Connection, token: str) -> str | None:
    value = await conn.fetchval("SELECT service_request_id FROM requests WHERE token=$1", token)
    return str(value) if value is not None else None


async def find_requests(
    conn: Connection,
    *,
    ids: list[str] | None,
    codes: list[str] | None,
    start: datetime | None,
    end: datetime | None,
    statuses: list[str] | None,
    limit: int,
) -> list[Any]:
    where: list[str] = []
    args: list[object] = []
    for column, value, op in (
        ("service_request_id", ids, "= ANY($%d::text[])"),
        ("service_code", codes, "= ANY($%d::text[])"),
        ("requested_datetime", start, ">= $%d"),
        ("requested_datetime", end, "<= $%d"),
        ("status", statuses, "= ANY($%d::text[])"),
    ):
        if value:
            args.append(value)
            where.append(f"{column} {op % len(args)}")
    args.append(limit)
    sql = f"SELECT {REQUEST_COLUMNS} FROM requests"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY requested_datetime DESC LIMIT ${len(args)}"
    return list(await conn.fetch(sql, *args))


async def save_policy(
    conn: Connection, kind: str, version: str, document: Any, at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO policy (kind, version, document, activated_at) VALUES ($1,$2,$3,$4)"
        " ON CONFLICT (kind) DO UPDATE SET version=EXCLUDED.version,"
        " document=EXCLUDED.document, activated_at=EXCLUDED.activated_at",
        kind,
        version,
        document,
        at,
    )


async def policy_versions(conn: Connection) -> dict[str, str]:
    rows = await conn.fetch("SELECT kind, version FROM policy")
    return {r["kind"]: r["version"] for r in rows}


async def policy_document(conn: Connection, kind: str) -> Any:
    return await conn.fetchval("SELECT document FROM policy WHERE kind=$1", kind)
