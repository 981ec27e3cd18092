"""Sensors' open work orders in PostgreSQL (schema `intake`, table sensor_orders)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gridline.common.pg import Connection
from gridline.intake.domain.idempotency import Once


@dataclass(frozen=True)
class OpenOrder:
    report_id: str
    work_order_id: str
    readings: int


async def lock(conn: Connection, sensor_id: str, metric: str) -> None:
    """Serialise one sensor's breaches of one metric until the transaction ends: of two
    breaches at once, the second sees the order the first opened."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        f"intake:sensor:{metric}:{sensor_id}",
    )


async def count_if_open(
    conn: Connection, sensor_id: str, metric: str, value: float, observed_at: datetime
) -> OpenOrder | None:
    """Count a breach against the sensor's order if that order is still open (its report's
    status, which follows the work order); None when there is none or it was resolved."""
    row = await conn.fetchrow(
        "UPDATE sensor_orders s SET readings = s.readings + 1, last_value = $3,"
        " last_observed_at = greatest(s.last_observed_at, $4)"
        " FROM requests r WHERE s.sensor_id = $1 AND s.metric = $2"
        " AND r.service_request_id = s.report_id AND r.status = 'open'"
        " RETURNING s.report_id, s.work_order_id, s.readings",
        sensor_id,
        metric,
        value,
        observed_at,
    )
    if row is None:
        return None
    return OpenOrder(row["report_id"], row["work_order_id"], row["readings"])


async def record_order(
    conn: Connection,
    sensor_id: str,
    metric: str,
    report_id: str,
    value: float,
    observed_at: datetime,
    opened_at: datetime,
) -> str:
    """Make the report just stored the sensor's open order (replacing a resolved one).
    Returns its work order: the report's own, or the open order it was merged into (并单)."""
    work_order_id: str = await conn.fetchval(
        "INSERT INTO sensor_orders (sensor_id, metric, report_id, work_order_id, opened_at,"
        " readings, last_value, last_observed_at)"
        " SELECT $1, $2, r.service_request_id, r.work_order_id, $5, 1, $3, $4"
        " FROM requests r WHERE r.service_request_id = $6"
        " ON CONFLICT (sensor_id, metric) DO UPDATE SET report_id = EXCLUDED.report_id,"
        " work_order_id = EXCLUDED.work_order_id, opened_at = EXCLUDED.opened_at,"
        " readings = 1, last_value = EXCLUDED.last_value,"
        " last_observed_at = EXCLUDED.last_observed_at"
        " RETURNING work_order_id",
        sensor_id,
        metric,
        value,
        observed_at,
        opened_at,
        report_id,
    )
    return work_order_id


async def remember_answer(conn: Connection, once: Once, answer: bytes) -> None:
    """Replace the answer stored with an Idempotency-Key by the final one (it names the
    work order, known only once the report is stored)."""
    await conn.execute(
        "UPDATE idempotency_keys SET answer = $3 WHERE scope = $1 AND key = $2",
        once.scope,
        once.key,
        answer,
    )
