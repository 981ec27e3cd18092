"""Reports and policy in PostgreSQL (schema `intake`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gridline.common.pg import OUTBOX_INSERT, Connection, OutboxRows
from gridline.intake.adapters.reports import TIMELINE_INSERT, entry_columns
from gridline.intake.domain.status import StatusChange
from gridline.intake.domain.submission import Accepted
from gridline.intake.domain.timeline import Entry

REQUEST_COLUMNS = (
    "service_request_id, work_order_id, token, service_code, description, lat, lon,"
    " address_string, media_url, source, requested_datetime, updated_datetime, status,"
    " status_notes, agency_responsible, expected_datetime"
)


async def insert_requests(
    conn: Connection,
    accepted: Sequence[Accepted],
    reporters: Sequence[dict[str, Any]],
    status_notes: str,
    events: OutboxRows,
    entries: Sequence[Entry],
) -> None:
    """Store accepted reports, their events' outbox rows and their timelines' first
    entries in one statement (writable CTEs), atomic without a transaction block. A
    report's id is also its work order's."""
    await conn.execute(
        "WITH stored AS (INSERT INTO requests (service_request_id, work_order_id, token,"
        " service_code, description, lat, lon, address_string, media_url, source, reporter,"
        " requested_datetime, updated_datetime, status_notes)"
        " SELECT id, id, token, code, description, lat, lon, address, media, source,"
        " reporter::jsonb, at, at, $12"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[],"
        " $6::float8[], $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[])"
        " AS u(id, token, code, description, lat, lon, address, media, source, reporter, at)),"
        f" entries AS ({TIMELINE_INSERT.format(*(f'${i}' for i in range(17, 24)))})"
        f" {OUTBOX_INSERT.format(ids='$13', topics='$14', keys='$15', payloads='$16')}",
        [a.request_id for a in accepted],
        [a.token for a in accepted],
        [a.submission.service_code for a in accepted],
        [a.submission.description for a in accepted],
        [a.submission.lat for a in accepted],
        [a.submission.lon for a in accepted],
        [a.submission.address_string for a in accepted],
        [a.submission.media_url for a in accepted],
        [a.source for a in accepted],
        [json.dumps(r) for r in reporters],
        [a.requested_at for a in accepted],
        status_notes,
        *events,
        *entry_columns(entries),
    )


async def apply_statuses(conn: Connection, changes: Sequence[StatusChange]) -> int:
    """Apply newer work-order states in one statement (at most one change per work order);
    an older or repeated version changes nothing. Returns how many requests changed."""
    if not changes:
        return 0
    result = await conn.execute(
        "UPDATE requests AS r SET status=u.status, agency_responsible=u.agency,"
        " expected_datetime=u.expected, status_notes=u.notes, updated_datetime=u.at,"
        " event_version=u.version, service_code=u.code"
        " FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::timestamptz[],"
        " $6::text[], $7::timestamptz[], $8::text[])"
        " AS u(work_order_id, version, status, agency, expected, notes, at, code)"
        " WHERE r.work_order_id = u.work_order_id AND r.event_version < u.version",
        [c.work_order_id for c in changes],
        [c.version for c in changes],
        [c.view.status for c in changes],
        [c.view.agency_responsible for c in changes],
        [c.view.expected_datetime for c in changes],
        [c.view.status_notes for c in changes],
        [c.at for c in changes],
        [c.service_code for c in changes],
    )
    return int(result.rsplit(" ", 1)[-1])


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


async def reporter_ref_key(conn: Connection) -> str:
    return str(await conn.fetchval("SELECT key FROM reporter_ref_key"))


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
