"""The measurement's incremental tables in PostgreSQL (schema `sla`, migration 0007):
flows, tier tallies, unit tallies, feedbacks and the natural-key guard `measured`.

Every write is one set-based statement per batch, rows moved in key order (concurrent
transactions then lock rows alike); every read is one index range scan of one scope's or
one ranking's days."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import NamedTuple

from gridline.common.pg import Connection, rows_affected
from gridline.sla.adapters import sql
from gridline.sla.domain import percentiles
from gridline.sla.domain.assessment import KnownUnit, UnitKey, UnitTally
from gridline.sla.domain.flows import Flow, Place, TierKey, TierTally
from gridline.sla.domain.measures import TallyKey, values

_FLOW_COLUMNS = ", ".join(Flow.__slots__)
_UNIT_COLUMNS = ", ".join(UnitTally.__slots__)
FLOW_KEYS = [("scope", "text"), ("category", "text"), ("day", "date")]
UNIT_KEYS = [("parent", "text"), ("level", "text"), ("day", "date"), ("unit", "text")]


async def first_time(conn: Connection, events: Sequence[tuple[str, int]]) -> set[tuple[str, int]]:
    """Of these (work order, version) events, the ones not counted before (now marked)."""
    if not events:
        return set()
    rows = await conn.fetch(
        "INSERT INTO measured (work_order_id, version)"
        " SELECT * FROM unnest($1::text[], $2::int[]) ORDER BY 1, 2"
        " ON CONFLICT DO NOTHING RETURNING work_order_id, version",
        *sql.columns(sorted(set(events)), 2),
    )
    return {(r["work_order_id"], r["version"]) for r in rows}


async def forget_measured(conn: Connection, retention: timedelta) -> int:
    """Forget the (work order, version) marks older than `retention`, as the inbox forgets
    its event ids (gridline.common.inbox); one scan of the table per sweep."""
    return rows_affected(
        await conn.execute(
            "DELETE FROM measured WHERE measured_at < now() - $1::interval", retention
        )
    )


async def add_to_flows(conn: Connection, changes: Mapping[TallyKey, Flow]) -> None:
    rows = [(*key, *values(flow)) for key, flow in changes.items()]
    await sql.add_counts(conn, "flows", FLOW_KEYS, sql.counts(Flow.__slots__), rows)


async def add_to_tiers(conn: Connection, changes: Mapping[TierKey, TierTally]) -> None:
    """The histogram travels as an array literal per row (unnest would flatten a 2-D
    array) and is added element by element."""
    if not changes:
        return
    rows = [
        (*key, t.resolved, t.timed, t.on_time, t.reopened, _array(percentiles.dense(t.buckets)))
        for key, t in sorted(changes.items())
    ]
    await conn.execute(
        "INSERT INTO tier_tallies AS t (scope, category, day, tier, resolved, timed, on_time,"
        " reopened, buckets)"
        " SELECT s, c, d, r, n, tm, ot, ro, b::int[] FROM unnest($1::text[], $2::text[],"
        "  $3::date[], $4::text[], $5::int[], $6::int[], $7::int[], $8::int[], $9::text[])"
        "  AS u(s, c, d, r, n, tm, ot, ro, b)"
        " ON CONFLICT (scope, category, day, tier) DO UPDATE SET"
        " resolved = t.resolved + EXCLUDED.resolved, timed = t.timed + EXCLUDED.timed,"
        " on_time = t.on_time + EXCLUDED.on_time, reopened = t.reopened + EXCLUDED.reopened,"
        " buckets = ARRAY(SELECT x + y FROM unnest(t.buckets, EXCLUDED.buckets)"
        "  WITH ORDINALITY AS a(x, y, i) ORDER BY i)",
        *sql.columns(rows, 9),
    )


def _array(values: Sequence[int]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


async def add_to_units(conn: Connection, changes: Mapping[UnitKey, UnitTally]) -> None:
    rows = [(*key, *values(tally)) for key, tally in changes.items()]
    await sql.add_counts(conn, "unit_tallies", UNIT_KEYS, sql.counts(UnitTally.__slots__), rows)


async def flow_sums(
    conn: Connection, scopes: Sequence[str], category: str, first: date, last: date
) -> dict[str, Flow]:
    found = await sql.sums_by_scope(
        conn, "flows", sql.counts(Flow.__slots__), scopes, category, first, last
    )
    return {scope: Flow(*row) for scope, row in found.items()}


async def tier_sums(
    conn: Connection, scopes: Sequence[str], category: str, first: date, last: date
) -> dict[str, dict[str, TierTally]]:
    """Each scope's tier rows summed over the days (at most a month or so of rows per
    scope and tier), in one statement; the histograms are added here rather than in SQL."""
    rows = await conn.fetch(
        "SELECT scope, tier, resolved, timed, on_time, reopened, buckets FROM tier_tallies"
        " WHERE scope = ANY($1::text[]) AND category = $2 AND day BETWEEN $3 AND $4",
        list(scopes),
        category,
        first,
        last,
    )
    result: dict[str, dict[str, TierTally]] = {scope: {} for scope in scopes}
    for r in rows:
        t = TierTally(
            r["resolved"],
            r["timed"],
            r["on_time"],
            r["reopened"],
            {i: n for i, n in enumerate(r["buckets"]) if n},
        )
        tiers = result[r["scope"]]
        tiers[r["tier"]] = tiers.get(r["tier"], TierTally()) + t
    return result


async def unit_sums(
    conn: Connection, parent: str, level: str, first: date, last: date
) -> dict[str, UnitTally]:
    """Every unit of one ranking summed over the days."""
    sums = ", ".join(f"sum({c})::int" for c in _UNIT_COLUMNS.split(", "))
    rows = await conn.fetch(
        f"SELECT unit, {sums} FROM unit_tallies"
        " WHERE parent = $1 AND level = $2 AND day BETWEEN $3 AND $4 GROUP BY unit",
        parent,
        level,
        first,
        last,
    )
    return {r["unit"]: UnitTally(*list(r.values())[1:]) for r in rows}


class Feedback(NamedTuple):
    feedback_id: str
    work_order_id: str
    satisfaction: int
    outcome: str
    day: date


class Counted(NamedTuple):
    """A feedback whose work order's resolution is known: where and what it counts."""

    place: Place
    category: str
    day: date
    satisfaction: int


async def record_feedbacks(conn: Connection, feedbacks: Sequence[Feedback]) -> list[str]:
    """Store feedbacks not seen before; returns their work orders."""
    if not feedbacks:
        return []
    rows = await conn.fetch(
        "INSERT INTO feedbacks (feedback_id, work_order_id, satisfaction, outcome, day)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::smallint[], $4::text[], $5::date[])"
        " ORDER BY 1 ON CONFLICT DO NOTHING RETURNING work_order_id",
        *sql.columns(sorted(feedbacks), 5),
    )
    return sorted({r["work_order_id"] for r in rows})


async def count_pending_feedbacks(conn: Connection, order_ids: Sequence[str]) -> list[Counted]:
    """Mark counted the pending feedbacks of these orders whose resolution is stored,
    returning them with their resolution's place. The order's lock (taken first, held to
    commit) makes a feedback and its resolution applied at once by two replicas meet:
    whichever commits second sees the other's row."""
    if not order_ids:
        return []
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('sla.feedback:' || o))"
        " FROM unnest($1::text[]) AS o ORDER BY o",
        sorted(set(order_ids)),
    )
    rows = await conn.fetch(
        "UPDATE feedbacks f SET counted = true FROM resolutions r"
        " WHERE f.work_order_id = r.work_order_id AND NOT f.counted"
        " AND f.work_order_id = ANY($1::text[])"
        " RETURNING f.day, f.satisfaction, r.category, r.grid_id, r.community_id,"
        " r.street_id, r.district_id",
        list(order_ids),
    )
    return [
        Counted(
            Place(r["grid_id"], r["community_id"], r["street_id"], r["district_id"]),
            r["category"],
            r["day"],
            r["satisfaction"],
        )
        for r in rows
    ]


async def name_units(conn: Connection, names: Mapping[str, tuple[str | None, str | None]]) -> None:
    """Remember (or update) units' zh and en names. Names already stored are left out
    before the insert: an upsert that changes nothing still locks its row (a WAL record
    each), and nearly every event names units known long before."""
    if not names:
        return
    rows = [(unit, *names[unit]) for unit in sorted(names)]
    await conn.execute(
        "INSERT INTO unit_names (unit, name_zh, name_en)"
        " SELECT u.unit, u.zh, u.en FROM unnest($1::text[], $2::text[], $3::text[])"
        "  AS u(unit, zh, en) LEFT JOIN unit_names n ON n.unit = u.unit"
        " WHERE n.unit IS NULL OR (n.name_zh, n.name_en) IS DISTINCT FROM"
        "  (coalesce(u.zh, n.name_zh), coalesce(u.en, n.name_en))"
        " ORDER BY u.unit"
        " ON CONFLICT (unit) DO UPDATE SET name_zh = coalesce(EXCLUDED.name_zh, unit_names.name_zh),"
        " name_en = coalesce(EXCLUDED.name_en, unit_names.name_en)"
        " WHERE (unit_names.name_zh, unit_names.name_en) IS DISTINCT FROM"
        " (coalesce(EXCLUDED.name_zh, unit_names.name_zh),"
        "  coalesce(EXCLUDED.name_en, unit_names.name_en))",
        *sql.columns(rows, 3),
    )


async def set_known_units(
    conn: Connection, levels: Sequence[str], units: Sequence[KnownUnit]
) -> None:
    """Replace the known units of `levels` (a new jurisdiction's places, or a new
    catalogue's departments)."""
    await conn.execute("DELETE FROM units WHERE level = ANY($1::text[])", list(levels))
    if units:
        await conn.execute(
            "INSERT INTO units (level, id, street, district)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])",
            *sql.columns([(u.level, u.id, u.street, u.district) for u in units], 4),
        )


async def scope_known(conn: Connection, scope: str) -> bool:
    """Whether sla has heard of the scope's unit: named by a jurisdiction or catalogue
    put into effect or by an event, a district with streets, or counted for ever; and
    true while nothing at all is known (no policy has reached sla yet: no judgement)."""
    level, _, unit = scope.partition(":")
    known: bool = await conn.fetchval(
        "SELECT NOT EXISTS (SELECT 1 FROM unit_names)"
        " OR EXISTS (SELECT 1 FROM unit_names WHERE unit = $1)"
        " OR ($2 = 'district' AND EXISTS"
        "  (SELECT 1 FROM units WHERE level = 'street' AND district = $3))"
        " OR EXISTS (SELECT 1 FROM tallies WHERE scope = $1)"
        " OR EXISTS (SELECT 1 FROM flows WHERE scope = $1)"
        " OR EXISTS (SELECT 1 FROM unit_tallies WHERE parent = $1)",
        scope,
        level,
        unit,
    )
    return known


async def known_units(conn: Connection, parent: str, level: str) -> list[str]:
    """The units (`<level>:<id>`) a ranking under `parent` lists even with nothing counted:
    a street's grids or communities, a district's streets, every department."""
    kind, _, parent_id = parent.partition(":")
    column = {"street": "street", "district": "district"}.get(kind)
    if level == "department":
        rows = await conn.fetch("SELECT id FROM units WHERE level = 'department'")
    elif column is not None:
        rows = await conn.fetch(
            f"SELECT id FROM units WHERE level = $1 AND {column} = $2", level, parent_id
        )
    else:
        return []
    return [f"{level}:{r['id']}" for r in rows]


async def unit_names(
    conn: Connection, units: Sequence[str]
) -> dict[str, tuple[str | None, str | None]]:
    rows = await conn.fetch(
        "SELECT unit, name_zh, name_en FROM unit_names WHERE unit = ANY($1::text[])", list(units)
    )
    return {r["unit"]: (r["name_zh"], r["name_en"]) for r in rows}
