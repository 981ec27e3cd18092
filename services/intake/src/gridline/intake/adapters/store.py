"""Reports and policy in PostgreSQL (schema `intake`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from gridline.common.pg import OUTBOX_INSERT, Connection, OutboxRows, rows_affected
from gridline.intake.adapters.reports import TIMELINE_INSERT, entry_columns
from gridline.intake.domain.duplicates import (
    CELL_ROW,
    CELLS_PER_DEGREE,
    NewReport,
    Stored,
    box,
    cells_in_box,
)
from gridline.intake.domain.idempotency import Once, Remembered
from gridline.intake.domain.inputs import RequestQuery
from gridline.intake.domain.status import StatusChange
from gridline.intake.domain.submission import Accepted
from gridline.intake.domain.timeline import Entry

# status_notes says how many reports share the work order once duplicates were merged.
MERGED_NOTES = (
    "concat_ws(' ', status_notes, (SELECT count(*) || ' reports merged (并单).' FROM requests m"
    " WHERE m.work_order_id = requests.work_order_id HAVING count(*) > 1)) AS status_notes"
)
REQUEST_COLUMNS = (
    "service_request_id, work_order_id, token, service_code, description, lat, lon,"
    " address_string, media_url, source, requested_datetime, updated_datetime, status,"
    f" {MERGED_NOTES}, agency_responsible, expected_datetime"
)


_REPORT_ROWS = (
    "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[],"
    " $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $13::text[],"
    " $14::timestamptz[], $15::text[], $16::text[], $21::text[], $22::text[], $30::text[],"
    " $31::text[]{claims})"
    " AS u(id, token, code, description, lat, lon, address, media, source, reporter, at,"
    " grid, occurred, photos, labels, dup, attributes, partner, rider{claim})"
    # A report merged into an open order (dup) starts with that order's current status.
    # The order's first report has the order's id and is kept current with every report of
    # the order: one primary-key look-up, however many reports were merged.
    " LEFT JOIN requests o ON u.dup IS NOT NULL AND o.service_request_id = u.dup"
)
_INSERT_REPORTS = (
    "INSERT INTO requests (service_request_id, work_order_id, duplicate_of, token,"
    " service_code, description, lat, lon, address_string, media_url, source, reporter,"
    " requested_datetime, updated_datetime, status, status_notes, agency_responsible,"
    " expected_datetime, event_version, grid_id, occurred_at, photos, labels, attributes,"
    " partner_id, rider_id)"
    " SELECT u.id, coalesce(u.dup, u.id), u.dup, u.token, u.code, u.description, u.lat,"
    " u.lon, u.address, u.media, u.source, u.reporter::jsonb, u.at, u.at,"
    " coalesce(o.status, 'open'), coalesce(o.status_notes, $12), o.agency_responsible,"
    " o.expected_datetime, coalesce(o.event_version, 0), u.grid, u.occurred,"
    " u.photos::jsonb, u.labels::jsonb, u.attributes::jsonb, u.partner, u.rider FROM "
)
_OUTBOX = OUTBOX_INSERT.format(ids="$17", topics="$18", keys="$19", payloads="$20")
_TIMELINE = TIMELINE_INSERT.format(*(f"${i}" for i in range(23, 30)))
# Reports alone (no Idempotency-Key in the batch): the hot path's statement.
_STORE = (
    f"WITH stored AS ({_INSERT_REPORTS}{_REPORT_ROWS.format(claims='', claim='')}),"
    f" entries AS ({_TIMELINE}) {_OUTBOX}"
)
# With keys: a report (and its event) is stored only if its key is claimed in the same
# statement. A key held by another request, unexpired, is not claimed: ON CONFLICT waits
# for a concurrent claimer's commit, so of two requests with one key exactly one wins.
_STORE_ONCE = (
    "WITH claimed AS (INSERT INTO idempotency_keys (scope, key, fingerprint, status, answer,"
    " created_at, expires_at)"
    " SELECT * FROM unnest($33::text[], $34::text[], $35::text[], $36::int[], $37::bytea[],"
    " $38::timestamptz[], $39::timestamptz[])"
    " ON CONFLICT (scope, key) DO UPDATE SET fingerprint=EXCLUDED.fingerprint,"
    " status=EXCLUDED.status, answer=EXCLUDED.answer, created_at=EXCLUDED.created_at,"
    " expires_at=EXCLUDED.expires_at WHERE idempotency_keys.expires_at <= EXCLUDED.created_at"
    " RETURNING scope || ' ' || key AS label),"
    f" stored AS ({_INSERT_REPORTS}{_REPORT_ROWS.format(claims=', $32::text[]', claim=', claim')}"
    " WHERE u.claim IS NULL OR u.claim IN (SELECT label FROM claimed)"
    " RETURNING service_request_id, work_order_id),"
    f" entries AS ({_TIMELINE} WHERE u.report_id IN (SELECT service_request_id FROM stored)),"
    f" events AS ({_OUTBOX} AS o(event_id, topic, key, payload)"
    " WHERE o.key IN (SELECT work_order_id FROM stored))"
    " SELECT label FROM claimed"
)


def cell_sql(table: str = "") -> str:
    """The number of the cell holding a stored report (`table`'s lat and lon), as
    domain/duplicates.py cell_of numbers it: the expression of the look-up's index
    (migrations 0013 and 0014, character for character) and of its condition."""
    lat, lon = (f"{table}.lat", f"{table}.lon") if table else ("lat", "lon")
    return (
        f"((floor({lat} * {CELLS_PER_DEGREE}) + {90 * CELLS_PER_DEGREE}) * {CELL_ROW}"
        f" + floor({lon} * {CELLS_PER_DEGREE}) + {180 * CELLS_PER_DEGREE})::bigint"
    )


# Great-circle distance in metres between a stored report `r` and a new one `u`.
_DISTANCE = (
    "2 * 6371008.8 * asin(least(1, sqrt(sin(radians(r.lat - u.lat) / 2) ^ 2"
    " + cos(radians(u.lat)) * cos(radians(r.lat)) * sin(radians(r.lon - u.lon) / 2) ^ 2)))"
)
# The same category in the cells around the new report (the index, with the time from
# the window's start), in the bounding box of the circle, then within the radius. The cells
# of report u are $10[u.first:u.last].
_NEAR = (
    f"r.service_code = u.code AND {cell_sql('r')} = ANY(($10::bigint[])[u.first:u.last])"
    " AND r.lat BETWEEN u.lat - u.dlat AND u.lat + u.dlat"
    f" AND r.lon BETWEEN u.lon - u.dlon AND u.lon + u.dlon AND {_DISTANCE} <= $7"
)


async def lock_duplicates(conn: Connection) -> None:
    """Serialise the look-up and insert of duplicates across intake instances until the
    transaction ends: two duplicates stored at once by two instances would open two orders."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('intake:duplicates'))")


# For each new report: the earliest open order near it within the window, and whether
# another order was first reported near it within the repeat window ($8, $9). Only the
# reports that opened an order are looked at (the partial index): the reports merged into
# it add nothing to find.
EARLIER_REPORTS = (
    "SELECT d.work_order_id AS open_order, EXISTS (SELECT 1 FROM requests r"
    f"  WHERE {_NEAR} AND r.duplicate_of IS NULL AND r.requested_datetime >= u.at - $9::interval"
    "   AND r.work_order_id IS DISTINCT FROM d.work_order_id) AS repeated"
    " FROM unnest($1::text[], $2::float8[], $3::float8[], $4::timestamptz[],"
    " $5::float8[], $6::float8[], $11::int[], $12::int[])"
    " WITH ORDINALITY AS u(code, lat, lon, at, dlat, dlon, first, last, n)"
    " LEFT JOIN LATERAL (SELECT r.work_order_id FROM requests r"
    f"  WHERE {_NEAR} AND r.duplicate_of IS NULL AND r.status = 'open'"
    "   AND r.requested_datetime >= u.at - $8::interval"
    "  ORDER BY r.requested_datetime, r.service_request_id LIMIT 1) d ON true"
    " ORDER BY u.n"
)


def earlier_arguments(
    reports: Sequence[NewReport], radius_m: float, window: timedelta, repeat_window: timedelta
) -> list[Any]:
    """EARLIER_REPORTS's arguments: one array per column of the new reports, and the
    cells around each (all in one array; report i's are $10[first[i]:last[i]])."""
    boxes = [box(r.lat, radius_m) for r in reports]
    cells: list[int] = []
    first: list[int] = []
    last: list[int] = []
    for r, (dlat, dlon) in zip(reports, boxes, strict=True):
        first.append(len(cells) + 1)
        cells += cells_in_box(r.lat, r.lon, dlat, dlon)
        last.append(len(cells))
    return [
        [r.service_code for r in reports],
        [r.lat for r in reports],
        [r.lon for r in reports],
        [r.at for r in reports],
        [b[0] for b in boxes],
        [b[1] for b in boxes],
        radius_m,
        window,
        repeat_window,
        cells,
        first,
        last,
    ]


async def earlier_reports(
    conn: Connection,
    reports: Sequence[NewReport],
    *,
    radius_m: float,
    window: timedelta,
    repeat_window: timedelta,
) -> list[Stored]:
    """For each new report, in one statement: the earliest open order of its category whose
    first report lies within `radius_m` and was received within `window`, and whether
    another order was first reported there within `repeat_window` (a repeated complaint)."""
    rows = await conn.fetch(
        EARLIER_REPORTS, *earlier_arguments(reports, radius_m, window, repeat_window)
    )
    return [Stored(row["open_order"], row["repeated"]) for row in rows]


async def insert_requests(
    conn: Connection,
    accepted: Sequence[Accepted],
    reporters: Sequence[dict[str, Any]],
    status_notes: str,
    events: OutboxRows,
    joins: Sequence[str | None] | None = None,
    key_ttl: timedelta = timedelta(hours=24),
    entries: Sequence[Entry] = (),
) -> set[str]:
    """Store accepted reports and their events' outbox rows in one statement (a writable
    CTE), atomic without a transaction block. A report's id is also its work order's,
    unless `joins` names the open order it was merged into (并单). Each stored report's
    timeline starts in the same statement (`entries`: received and tagged).

    Reports that carry an idempotency claim are stored only if their key is claimed in the
    same statement (one key row per distinct key: the caller picks one request per key).
    Returns the labels of the keys claimed; a claimed report whose key is not among them
    was not stored."""
    args: list[Any] = [
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
        [a.submission.grid_id for a in accepted],
        [a.submission.occurred_at for a in accepted],
        [json.dumps(a.submission.photos) for a in accepted],
        [json.dumps(a.submission.labels) for a in accepted],
        *events,
        list(joins) if joins is not None else [None] * len(accepted),
        [json.dumps(a.submission.attributes, ensure_ascii=False) for a in accepted],
        *entry_columns(entries),
        [a.partner_id for a in accepted],
        [a.rider_id for a in accepted],
    ]
    claims = {a.claim.once.label: a for a in accepted if a.claim is not None}
    if not claims:
        await conn.execute(_STORE, *args)
        return set()
    keyed = list(claims.values())
    rows = await conn.fetch(
        _STORE_ONCE,
        *args,
        [a.claim.once.label if a.claim else None for a in accepted],
        [a.claim.once.scope for a in keyed if a.claim],
        [a.claim.once.key for a in keyed if a.claim],
        [a.claim.once.fingerprint for a in keyed if a.claim],
        [a.claim.status for a in keyed if a.claim],
        [a.claim.answer for a in keyed if a.claim],
        [a.requested_at for a in keyed],
        [a.requested_at + key_ttl for a in keyed],
    )
    return {r["label"] for r in rows}


async def remembered_answer(conn: Connection, once: Once, now: datetime) -> Remembered | None:
    row = await conn.fetchrow(
        "SELECT fingerprint, status, answer FROM idempotency_keys"
        " WHERE scope=$1 AND key=$2 AND expires_at > $3",
        once.scope,
        once.key,
        now,
    )
    if row is None:
        return None
    return Remembered(row["fingerprint"], row["status"], bytes(row["answer"]))


async def forget_expired_keys(conn: Connection, now: datetime) -> int:
    result = await conn.execute("DELETE FROM idempotency_keys WHERE expires_at <= $1", now)
    return rows_affected(result)


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
    return rows_affected(result)


async def get_request(conn: Connection, request_id: str) -> Any:
    return await conn.fetchrow(
        f"SELECT {REQUEST_COLUMNS} FROM requests WHERE service_request_id=$1", request_id
    )


async def request_id_for_token(conn: Connection, token: str) -> str | None:
    value = await conn.fetchval("SELECT service_request_id FROM requests WHERE token=$1", token)
    return str(value) if value is not None else None


async def find_requests(conn: Connection, query: RequestQuery) -> list[Any]:
    """One page of the requests matching every filter given, newest first (the id breaks
    ties, so pages neither repeat nor skip a request)."""
    where: list[str] = []
    args: list[object] = []
    for column, value, op in (
        ("service_request_id", query.ids, "= ANY($%d::text[])"),
        ("service_code", query.codes, "= ANY($%d::text[])"),
        ("requested_datetime", query.start, ">= $%d"),
        ("requested_datetime", query.end, "<= $%d"),
        ("status", query.statuses, "= ANY($%d::text[])"),
    ):
        if value:
            args.append(value)
            where.append(f"{column} {op % len(args)}")
    sql = f"SELECT {REQUEST_COLUMNS} FROM requests"
    if where:
        sql += " WHERE " + " AND ".join(where)
    args += [query.limit, query.offset]
    sql += (
        " ORDER BY requested_datetime DESC, service_request_id DESC"
        f" LIMIT ${len(args) - 1} OFFSET ${len(args)}"
    )
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
