"""Deadlines, resolutions and counters in PostgreSQL (schema `sla`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from gridline.common.pg import Connection


class Deadline(NamedTuple):
    work_order_id: str
    seq: int
    tier: str
    unit_id: str
    due_at: datetime


class Resolution(NamedTuple):
    work_order_id: str
    tier: str
    category: str
    street_id: str | None
    district_id: str | None
    opened_at: datetime
    resolved_at: datetime
    version: int


async def set_deadlines(conn: Connection, deadlines: Sequence[Deadline]) -> None:
    """Arm the deadlines of assignments (one per work order); an older assignment's
    deadline is replaced, a newer one's is kept."""
    if not deadlines:
        return
    await conn.execute(
        "INSERT INTO deadlines (work_order_id, assignment_seq, tier, unit_id, due_at)"
        " SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::timestamptz[])"
        " ON CONFLICT (work_order_id) DO UPDATE SET assignment_seq = EXCLUDED.assignment_seq,"
        " tier = EXCLUDED.tier, unit_id = EXCLUDED.unit_id, due_at = EXCLUDED.due_at,"
        " fired_at = NULL WHERE deadlines.assignment_seq < EXCLUDED.assignment_seq",
        *_columns(deadlines, 5),
    )


async def clear_deadlines(conn: Connection, order_ids: Sequence[str]) -> None:
    await conn.execute("DELETE FROM deadlines WHERE work_order_id = ANY($1::text[])", order_ids)


async def claim_due(conn: Connection, now: datetime, limit: int) -> list[Any]:
    """Lock deadlines that passed and have not fired; other scanners skip them."""
    return list(
        await conn.fetch(
            "SELECT work_order_id, assignment_seq, tier, unit_id, due_at FROM deadlines"
            " WHERE fired_at IS NULL AND due_at <= $1 ORDER BY due_at LIMIT $2"
            " FOR UPDATE SKIP LOCKED",
            now,
            limit,
        )
    )


async def mark_fired(conn: Connection, order_ids: list[str], now: datetime) -> None:
    await conn.execute(
        "UPDATE deadlines SET fired_at = $2 WHERE work_order_id = ANY($1::text[])", order_ids, now
    )


async def overdue(conn: Connection, now: datetime) -> dict[str, int]:
    """Open work orders past their current assignment's due time, by that tier: fired
    ones waiting for their escalation, and department ones (nothing escalates them)."""
    rows = await conn.fetch(
        "SELECT tier, count(*) AS n FROM deadlines WHERE due_at <= $1 GROUP BY tier", now
    )
    return {r["tier"]: r["n"] for r in rows}


async def record_resolutions(conn: Connection, resolutions: Sequence[Resolution]) -> set[str]:
    """Store resolutions newer than the order's stored one (a reopened order resolved
    again replaces it); returns the work orders whose resolution was new (one redelivered
    under another event id is not)."""
    if not resolutions:
        return set()
    columns = _columns(resolutions, 8)
    seconds = [(r.resolved_at - r.opened_at).total_seconds() for r in resolutions]
    rows = await conn.fetch(
        "INSERT INTO resolutions (work_order_id, tier, category, street_id, district_id,"
        " opened_at, resolved_at, version, resolution_seconds)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
        "  $6::timestamptz[], $7::timestamptz[], $8::int[], $9::float8[])"
        " ON CONFLICT (work_order_id) DO UPDATE SET tier = EXCLUDED.tier,"
        " category = EXCLUDED.category, street_id = EXCLUDED.street_id,"
        " district_id = EXCLUDED.district_id, resolved_at = EXCLUDED.resolved_at,"
        " version = EXCLUDED.version, resolution_seconds = EXCLUDED.resolution_seconds"
        " WHERE resolutions.version < EXCLUDED.version RETURNING work_order_id",
        *columns,
        seconds,
    )
    return {r["work_order_id"] for r in rows}


async def resolved_counts(conn: Connection, since: datetime) -> list[Any]:
    return list(
        await conn.fetch(
            "SELECT district_id, street_id, tier, count(*) AS n FROM resolutions"
            " WHERE resolved_at >= $1 GROUP BY 1, 2, 3",
            since,
        )
    )


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as the column arrays `unnest` takes."""
    return [[row[i] for row in rows] for i in range(width)]


def _labels(labels: dict[str, str]) -> str:
    return json.dumps(labels, sort_keys=True, ensure_ascii=False)


async def add_to_counters(
    conn: Connection, increments: Sequence[tuple[str, dict[str, str], float]]
) -> None:
    """Add to many counters in one statement; each (metric, labels) must appear once."""
    if not increments:
        return
    await conn.execute(
        "INSERT INTO counters (metric, labels, value)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::float8[])"
        " ON CONFLICT (metric, labels) DO UPDATE SET value = counters.value + EXCLUDED.value",
        [metric for metric, _, _ in increments],
        [_labels(labels) for _, labels, _ in increments],
        [by for _, _, by in increments],
    )


async def counters(conn: Connection) -> list[tuple[str, dict[str, str], float]]:
    rows = await conn.fetch("SELECT metric, labels, value FROM counters ORDER BY metric, labels")
    return [(r["metric"], json.loads(r["labels"]), r["value"]) for r in rows]


async def set_targets(conn: Connection, catalogue_version: str, targets: dict[str, float]) -> None:
    await conn.executemany(
        "INSERT INTO targets (tier, ratio, catalogue_version) VALUES ($1, $2, $3)"
        " ON CONFLICT (tier) DO UPDATE SET ratio = EXCLUDED.ratio,"
        " catalogue_version = EXCLUDED.catalogue_version",
        [(tier, ratio, catalogue_version) for tier, ratio in targets.items()],
    )


async def targets(conn: Connection) -> dict[str, float]:
    rows = await conn.fetch("SELECT tier, ratio FROM targets")
    return {r["tier"]: r["ratio"] for r in rows}
