"""Deadlines, resolutions and counters in PostgreSQL (schema `sla`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

from gridline.common.pg import Connection
from gridline.sla.adapters import sql
from gridline.sla.domain.measures import HourKey, Tally, TallyKey, values


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
    grid_id: str | None
    community_id: str | None
    due_at: datetime | None
    day: date


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
        *sql.columns(deadlines, 5),
    )


async def clear_deadlines(conn: Connection, order_ids: Sequence[str]) -> None:
    await conn.execute("DELETE FROM deadlines WHERE work_order_id = ANY($1::text[])", order_ids)


async def claim_due(
    conn: Connection, now: datetime, limit: int, after: datetime | None = None
) -> list[Any]:
    """Take up to `limit` passed, unfired deadlines, oldest first, and mark them fired in
    one statement (the caller's transaction writes their breaches). Rows another scheduler
    holds are skipped: its transaction fires them; one it committed meanwhile is no longer
    unfired when the lock is taken (PostgreSQL re-checks a locked row's newest version).

    `after` starts the index scan there instead of at the oldest entry: rows fired since
    the last vacuum leave dead entries at the front of the partial index, which a scan
    from the start walks over, more of them every round of a burst."""
    return list(
        await conn.fetch(
            "UPDATE deadlines d SET fired_at = $1 FROM (SELECT work_order_id FROM deadlines"
            "  WHERE fired_at IS NULL AND due_at <= $1"
            "  AND due_at >= coalesce($3::timestamptz, '-infinity') ORDER BY due_at LIMIT $2"
            "  FOR UPDATE SKIP LOCKED) c"
            " WHERE d.work_order_id = c.work_order_id"
            " RETURNING d.work_order_id, d.assignment_seq, d.tier, d.unit_id, d.due_at",
            now,
            limit,
            after,
        )
    )


async def next_due(conn: Connection) -> datetime | None:
    """The earliest unfired deadline, warning or report-in call: the first entry of each
    partial index (None when nothing is pending)."""
    at: datetime | None = await conn.fetchval(
        "SELECT least((SELECT min(due_at) FROM deadlines WHERE fired_at IS NULL),"
        " (SELECT min(warn_at) FROM warnings WHERE fired_at IS NULL),"
        " (SELECT min(due_at) FROM report_in_deadlines WHERE fired_at IS NULL))"
    )
    return at


async def overdue(conn: Connection, now: datetime) -> dict[str, int]:
    """Open work orders past their current assignment's due time, by that tier: fired
    ones waiting for their escalation, and department ones (nothing escalates them).
    Two partial-index ranges (migration 0009), never the deadlines still ahead."""
    rows = await conn.fetch(
        "SELECT tier, count(*) AS n FROM ("
        " SELECT tier FROM deadlines WHERE fired_at IS NULL AND due_at <= $1"
        " UNION ALL SELECT tier FROM deadlines WHERE fired_at IS NOT NULL) AS past"
        " GROUP BY tier",
        now,
    )
    return {r["tier"]: r["n"] for r in rows}


async def record_resolutions(
    conn: Connection, resolutions: Sequence[Resolution]
) -> tuple[set[str], list[Resolution]]:
    """Store resolutions newer than the order's stored one (a reopened order resolved
    again replaces it). Returns the work orders whose resolution was new (one redelivered
    under another event id is not), and the stored rows those replaced."""
    if not resolutions:
        return set(), []
    earlier = await conn.fetch(
        "SELECT * FROM resolutions WHERE work_order_id = ANY($1::text[])"
        " ORDER BY work_order_id FOR UPDATE",
        [r.work_order_id for r in resolutions],
    )
    seconds = [(r.resolved_at - r.opened_at).total_seconds() for r in resolutions]
    rows = await conn.fetch(
        "INSERT INTO resolutions (work_order_id, tier, category, street_id, district_id,"
        " opened_at, resolved_at, version, grid_id, community_id, due_at, day,"
        " resolution_seconds)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
        "  $6::timestamptz[], $7::timestamptz[], $8::int[], $9::text[], $10::text[],"
        "  $11::timestamptz[], $12::date[], $13::float8[])"
        " ON CONFLICT (work_order_id) DO UPDATE SET tier = EXCLUDED.tier,"
        " category = EXCLUDED.category, street_id = EXCLUDED.street_id,"
        " district_id = EXCLUDED.district_id, resolved_at = EXCLUDED.resolved_at,"
        " version = EXCLUDED.version, resolution_seconds = EXCLUDED.resolution_seconds,"
        " grid_id = EXCLUDED.grid_id, community_id = EXCLUDED.community_id,"
        " due_at = EXCLUDED.due_at, day = EXCLUDED.day"
        " WHERE resolutions.version < EXCLUDED.version RETURNING work_order_id",
        *sql.columns(resolutions, 12),
        seconds,
    )
    fresh = {r["work_order_id"] for r in rows}
    return fresh, [
        Resolution(*(r[name] for name in Resolution._fields))
        for r in earlier
        if r["work_order_id"] in fresh
    ]


TALLY_KEYS = [("scope", "text"), ("category", "text"), ("day", "date")]
TALLY_COUNTS = [(n, "float8" if n == "seconds" else "int") for n in Tally.__slots__]
HOUR_KEYS = [("hour", "timestamptz"), ("scope", "text")]
HOUR_COUNTS = sql.counts(["at_grid", "at_community", "at_street", "at_department"])


async def add_to_tallies(conn: Connection, changes: Mapping[TallyKey, Tally]) -> None:
    """Move the tally rows by `changes`."""
    rows = [(*key, *values(t)) for key, t in changes.items()]
    await sql.add_counts(conn, "tallies", TALLY_KEYS, TALLY_COUNTS, rows)


async def tally_sums(
    conn: Connection, scopes: Sequence[str], category: str, first: date, last: date
) -> dict[str, Tally]:
    """Each scope's tallies of one category summed over local days first..last: at most a
    month or so of rows per scope, in one statement."""
    found = await sql.sums_by_scope(conn, "tallies", TALLY_COUNTS, scopes, category, first, last)
    return {scope: Tally(*row) for scope, row in found.items()}


async def tally_sum(conn: Connection, scope: str, category: str, first: date, last: date) -> Tally:
    return (await tally_sums(conn, [scope], category, first, last))[scope]


async def add_to_hourly(conn: Connection, changes: Mapping[HourKey, Tally]) -> None:
    """Move /metrics' hourly rows by `changes` (their tier counts)."""
    rows = [
        (hour, scope, t.at_grid, t.at_community, t.at_street, t.at_department)
        for (hour, scope), t in changes.items()
    ]
    await sql.add_counts(conn, "hourly", HOUR_KEYS, HOUR_COUNTS, rows)


async def hourly_sums(conn: Connection, since: datetime) -> dict[str, Tally]:
    """Each scope's tier counts summed over the hours from `since` on: a range scan of the
    hours' rows, never of the resolutions."""
    rows = await conn.fetch(
        "SELECT scope, sum(at_grid) AS g, sum(at_community) AS c, sum(at_street) AS s,"
        " sum(at_department) AS d FROM hourly WHERE hour >= $1 GROUP BY scope",
        since,
    )
    return {r["scope"]: Tally(int(r["g"]), int(r["c"]), int(r["s"]), int(r["d"])) for r in rows}


async def drop_hours_before(conn: Connection, before: datetime) -> None:
    await conn.execute("DELETE FROM hourly WHERE hour < $1", before)


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


async def set_targets(
    conn: Connection, catalogue_version: str, targets: dict[str, float], time_zone: str
) -> None:
    await conn.executemany(
        "INSERT INTO targets (tier, ratio, catalogue_version, time_zone) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (tier) DO UPDATE SET ratio = EXCLUDED.ratio,"
        " catalogue_version = EXCLUDED.catalogue_version, time_zone = EXCLUDED.time_zone",
        [(tier, ratio, catalogue_version, time_zone) for tier, ratio in targets.items()],
    )


async def time_zone(conn: Connection) -> str:
    """The time zone of the catalogue in effect (UTC before any)."""
    zone: str | None = await conn.fetchval("SELECT time_zone FROM targets LIMIT 1")
    return zone or "UTC"


async def targets(conn: Connection) -> dict[str, float]:
    rows = await conn.fetch("SELECT tier, ratio FROM targets")
    return {r["tier"]: r["ratio"] for r in rows}
