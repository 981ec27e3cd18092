"""Deadlines, resolutions and counters in PostgreSQL (schema `sla`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from gridline.common.pg import Connection


async def set_deadline(
    conn: Connection, order_id: str, seq: int, tier: str, unit_id: str, due_at: datetime
) -> None:
    """Arm the deadline of an assignment; an older assignment's deadline is replaced."""
    await conn.execute(
        "INSERT INTO deadlines (work_order_id, assignment_seq, tier, unit_id, due_at)"
        " VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (work_order_id) DO UPDATE SET assignment_seq = EXCLUDED.assignment_seq,"
        " tier = EXCLUDED.tier, unit_id = EXCLUDED.unit_id, due_at = EXCLUDED.due_at,"
        " fired_at = NULL WHERE deadlines.assignment_seq < EXCLUDED.assignment_seq",
        order_id,
        seq,
        tier,
        unit_id,
        due_at,
    )


async def clear_deadline(conn: Connection, order_id: str) -> None:
    await conn.execute("DELETE FROM deadlines WHERE work_order_id = $1", order_id)


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


async def record_resolution(
    conn: Connection,
    order_id: str,
    tier: str,
    category: str,
    street_id: str | None,
    district_id: str | None,
    opened_at: datetime,
    resolved_at: datetime,
) -> bool:
    inserted = await conn.fetchval(
        "INSERT INTO resolutions (work_order_id, tier, category, street_id, district_id,"
        " opened_at, resolved_at, resolution_seconds) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)"
        " ON CONFLICT (work_order_id) DO NOTHING RETURNING true",
        order_id,
        tier,
        category,
        street_id,
        district_id,
        opened_at,
        resolved_at,
        (resolved_at - opened_at).total_seconds(),
    )
    return bool(inserted)


async def resolved_counts(conn: Connection, since: datetime) -> list[Any]:
    return list(
        await conn.fetch(
            "SELECT district_id, street_id, tier, count(*) AS n FROM resolutions"
            " WHERE resolved_at >= $1 GROUP BY 1, 2, 3",
            since,
        )
    )


def _labels(labels: dict[str, str]) -> str:
    return json.dumps(labels, sort_keys=True, ensure_ascii=False)


async def increment(conn: Connection, metric: str, labels: dict[str, str], by: float = 1.0) -> None:
    await conn.execute(
        "INSERT INTO counters (metric, labels, value) VALUES ($1, $2, $3)"
        " ON CONFLICT (metric, labels) DO UPDATE SET value = counters.value + EXCLUDED.value",
        metric,
        _labels(labels),
        by,
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
