"""Duplicates (并单) on the real PostgreSQL: a report near an open one of the same category
joins its work order (the outbox event says so), also within one group-commit batch, and
takes the order's status; the merged count shows in status_notes."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gridline.common.clock import ManualClock
from gridline.common.pg import Pool
from gridline.common.policy.catalogue import load_catalogue_text
from gridline.intake.adapters import store
from gridline.intake.domain.duplicates import (
    CELLS_PER_DEGREE,
    METRES_PER_DEGREE,
    NewReport,
    cell_of,
)
from gridline.intake.domain.status import RequestStatus, StatusChange
from gridline.intake.domain.submission import Accepted, Submission
from gridline.intake.handlers import Intake

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
CATALOGUE_YAML = (Path(__file__).resolve().parents[4] / "config" / "catalogue.yaml").read_text(
    "utf-8"
)
MIGRATIONS = Path(__file__).resolve().parents[2] / "src" / "gridline" / "intake" / "migrations"
M = 1 / METRES_PER_DEGREE  # one metre north, in degrees of latitude
HERE = Submission(
    service_code="exposed-garbage",
    lat=31.78,
    lon=119.95,
    description="路边有垃圾，旁边住着独居老人",
    address_string=None,
    media_url=None,
    email="x@y.cn",
    phone=None,
    first_name=None,
    last_name=None,
    device_id=None,
    account_id=None,
)


@pytest.fixture
async def intake(pool: Pool) -> Intake:
    intake = Intake(ManualClock(NOW), "/gridline/intake")
    catalogue = load_catalogue_text(CATALOGUE_YAML)
    intake.policy.apply("catalogue", catalogue.version_hash, {"catalogue": catalogue.to_dict()})
    async with pool.acquire() as conn:
        await intake.load_reporter_key(conn)
    return intake


async def store_batch(pool: Pool, intake: Intake, batch: list[Accepted]) -> None:
    async with pool.acquire() as conn:
        await intake.store_accepted(conn, batch)


async def events(pool: Pool) -> dict[str, dict[str, Any]]:
    rows = await pool.fetch("SELECT payload FROM outbox")
    data = [json.loads(r["payload"])["data"] for r in rows]
    return {d["report_id"]: d for d in data}


def at(intake: Intake, submission: Submission, minutes: float = 0, north_m: float = 0) -> Accepted:
    intake.clock = ManualClock(NOW + timedelta(minutes=minutes))
    return intake.accept(replace(submission, lat=submission.lat + north_m * M), "citizen")


async def test_a_report_50_m_from_an_open_one_joins_its_work_order_and_status(
    pool: Pool, intake: Intake
) -> None:
    first = at(intake, HERE)
    await store_batch(pool, intake, [first])
    # Routing assigned the first: intake's view of that order changed.
    assigned = RequestStatus("open", "Grid 7", NOW + timedelta(hours=8), "Assigned to Grid 7.")
    async with pool.acquire() as conn:
        await store.apply_statuses(
            conn, [StatusChange(first.request_id, 1, assigned, NOW, "exposed-garbage")]
        )
    second = at(intake, HERE, minutes=30, north_m=50)
    far = at(intake, HERE, minutes=31, north_m=400)
    other = at(intake, replace(HERE, service_code="damaged-bin"), minutes=32)
    await store_batch(pool, intake, [second, far, other])

    sent = await events(pool)
    assert sent[second.request_id]["work_order_id"] == first.request_id
    assert sent[second.request_id]["duplicate_of"] == first.request_id
    for alone in (first, far, other):
        assert sent[alone.request_id]["work_order_id"] == alone.request_id
        assert sent[alone.request_id]["duplicate_of"] is None
    # Tags travel on every event: the rule flags of the text.
    assert sent[first.request_id]["tags"]["flags"] == ["vulnerable_person"]
    assert sent[first.request_id]["tags"]["severity"] == "urgent"

    # The second reporter sees the order's status at once, with the merged count.
    async with pool.acquire() as conn:
        row = await store.get_request(conn, second.request_id)
        first_row = await store.get_request(conn, first.request_id)
    assert row["work_order_id"] == first.request_id
    assert row["agency_responsible"] == "Grid 7"
    assert row["status_notes"] == "Assigned to Grid 7. 2 reports merged (并单)."
    assert first_row["status_notes"] == row["status_notes"]

    # A later status of the order reaches both reports.
    resolved = RequestStatus("closed", "Grid 7", None, "Resolved.")
    async with pool.acquire() as conn:
        changed = await store.apply_statuses(
            conn, [StatusChange(first.request_id, 2, resolved, NOW, "exposed-garbage")]
        )
    assert changed == 2


async def test_two_duplicates_in_one_batch_share_the_first_ones_order(
    pool: Pool, intake: Intake
) -> None:
    a = at(intake, HERE)
    b = at(intake, HERE, minutes=1, north_m=50)
    c = at(intake, HERE, minutes=2, north_m=120)
    await store_batch(pool, intake, [a, b, c])
    sent = await events(pool)
    assert {sent[x.request_id]["work_order_id"] for x in (a, b, c)} == {a.request_id}
    assert [sent[x.request_id]["duplicate_of"] for x in (a, b, c)] == [
        None,
        a.request_id,
        a.request_id,
    ]
    keys = await pool.fetch("SELECT key FROM outbox")
    assert {k["key"] for k in keys} == {a.request_id}  # one order: one Kafka key


async def test_a_closed_or_old_report_opens_a_new_order_flagged_repeated(
    pool: Pool, intake: Intake
) -> None:
    first = at(intake, HERE)
    await store_batch(pool, intake, [first])
    closed = RequestStatus("closed", "Grid 7", None, "Resolved.")
    async with pool.acquire() as conn:
        await store.apply_statuses(
            conn, [StatusChange(first.request_id, 2, closed, NOW, "exposed-garbage")]
        )
    again = at(intake, HERE, minutes=60 * 24 * 5, north_m=30)  # five days later
    much_later = at(intake, HERE, minutes=60 * 24 * 40, north_m=30)  # beyond 30 days
    await store_batch(pool, intake, [again])
    await store_batch(pool, intake, [much_later])
    sent = await events(pool)
    assert sent[again.request_id]["work_order_id"] == again.request_id
    assert "repeated_complaint" in sent[again.request_id]["tags"]["flags"]
    # 40 days after the first and 35 after `again`: both beyond the 30-day repeat window.
    assert sent[much_later.request_id]["duplicate_of"] is None
    assert "repeated_complaint" not in sent[much_later.request_id]["tags"]["flags"]


async def test_merging_off_when_the_radius_is_zero(pool: Pool, intake: Intake) -> None:
    doc = load_catalogue_text(CATALOGUE_YAML).to_dict()
    doc["tagging"]["duplicate_radius_m"] = 0
    intake.policy.apply("catalogue", "off", {"catalogue": doc})
    a, b = at(intake, HERE), at(intake, HERE, minutes=1)
    await store_batch(pool, intake, [a, b])
    sent = await events(pool)
    assert sent[b.request_id]["work_order_id"] == b.request_id


def plan_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for child in node.get("Plans", []) for n in plan_nodes(child))]


async def look_up_plan(pool: Pool, intake: Intake, radius_m: float | None = None) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of the place look-up for one new report at HERE."""
    tagging = intake.policy.catalogue.tagging  # type: ignore[union-attr]
    new = [NewReport("new", HERE.service_code, HERE.lat, HERE.lon, NOW)]
    args = store.earlier_arguments(
        new,
        tagging.duplicate_radius_m if radius_m is None else radius_m,
        timedelta(hours=tagging.duplicate_window_hours),
        timedelta(days=tagging.repeat_window_days),
    )
    await pool.execute("ANALYZE requests")
    out = await pool.fetchval(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + store.EARLIER_REPORTS, *args
    )
    return (json.loads(out) if isinstance(out, str) else out)[0]["Plan"]  # type: ignore[no-any-return]


async def reports_elsewhere(pool: Pool, n: int, start: int) -> None:
    """`n` open orders' first reports of HERE's category received in the last 29 days
    (inside both windows), in HERE's band of latitude (450 m north and south of it) over
    60 km of longitude, but none within 1.1 km of it: what both of the look-up's former
    indexes read whole (the category's reports within the window; those in the band)."""
    await pool.execute(
        "INSERT INTO requests (service_request_id, work_order_id, token, service_code, lat,"
        " lon, source, requested_datetime, updated_datetime)"
        " SELECT 'other-' || i, 'other-' || i, 'other-token-' || i, $1, p.lat, p.lon,"
        "  'citizen', t, t"
        " FROM generate_series($5::int, $5 + $6 - 1) AS i,"
        "  LATERAL (SELECT $2 + ((i % 81) - 40) * 0.0001 AS lat,"
        "   $3 - 0.3 + ((i * 7919) % 6007) * 0.0001 AS lon) AS p,"
        "  LATERAL (SELECT $4::timestamptz - make_interval(mins => 60 + i % (29 * 1440))) AS w(t)"
        " WHERE abs(p.lon - $3) > 0.012",
        HERE.service_code,
        HERE.lat,
        HERE.lon,
        NOW,
        start,
        n,
    )


async def test_the_look_up_reads_the_cells_around_a_report_not_its_band_of_latitude(
    pool: Pool, intake: Intake
) -> None:
    """It read every report of the category received within the repeat window across the
    city (or, by the other index, every one in the band of latitude of the radius's box, of
    all time): a cost that grew with the city's reports, not with those near the new one."""
    await store_batch(pool, intake, [at(intake, HERE, minutes=-60, north_m=30)])
    await reports_elsewhere(pool, 10_000, 0)
    before = await look_up_plan(pool, intake)
    await reports_elsewhere(pool, 90_000, 10_000)  # ten times as many
    after = await look_up_plan(pool, intake)

    def read(plan: dict[str, Any]) -> int:
        return sum(
            n.get("Shared Hit Blocks", 0) + n.get("Shared Read Blocks", 0)
            for n in plan_nodes(plan)
            if n.get("Relation Name") == "requests"
        )

    # Both searches (the open order, the repeated complaint) go by the cells.
    indexes = [n.get("Index Name") for n in plan_nodes(after) if n.get("Relation Name")]
    assert indexes == ["requests_roots_near", "requests_roots_near"], indexes
    # What it reads does not grow with the reports elsewhere.
    # (A level more in the index's tree costs a page per cell searched.)
    assert read(after) <= read(before) + 10, (read(before), read(after))
    # And it still finds the order 30 m away, an hour old.
    async with pool.acquire() as conn:
        found = await store.earlier_reports(
            conn,
            [NewReport("new", HERE.service_code, HERE.lat, HERE.lon, NOW)],
            radius_m=250,
            window=timedelta(hours=72),
            repeat_window=timedelta(days=30),
        )
    assert found[0].open_order is not None and found[0].open_order.startswith("01")


async def test_postgresql_numbers_a_point_s_cell_as_the_look_up_does(pool: Pool) -> None:
    """The index holds PostgreSQL's cell numbers; the look-up asks for Python's."""
    rng = random.Random(7)
    points = [(rng.uniform(-89, 89), rng.uniform(-179, 179)) for _ in range(5_000)]
    points += [
        (y / CELLS_PER_DEGREE, x / CELLS_PER_DEGREE) for y in (-1, 0, 6396) for x in (-1, 0, 23990)
    ]
    points += [(31.98 - 1e-12, 119.95 + 1e-12), (-0.0, -0.0), (89.999999, 179.999999)]
    rows = await pool.fetch(
        f"SELECT {store.cell_sql()} AS cell FROM unnest($1::float8[], $2::float8[])"
        " WITH ORDINALITY AS t(lat, lon, n) ORDER BY n",
        [p[0] for p in points],
        [p[1] for p in points],
    )
    assert [r["cell"] for r in rows] == [cell_of(lat, lon) for lat, lon in points]


async def test_the_look_up_reads_from_the_table_only_the_reports_inside_the_box(
    pool: Pool, intake: Intake
) -> None:
    """In a busy cell, most reports of the window lie outside a small radius's box; they
    are left out on the index entries (the coordinates are its last keys), not read."""
    y, x = (
        int(HERE.lat * CELLS_PER_DEGREE) / CELLS_PER_DEGREE,
        int(HERE.lon * CELLS_PER_DEGREE) / CELLS_PER_DEGREE,
    )
    # 400 first reports of open orders spread over HERE's cell, an hour old, each at
    # least 20 m from HERE (a look-up with a 5 m radius's box holds none of them).
    await pool.execute(
        "INSERT INTO requests (service_request_id, work_order_id, token, service_code, lat,"
        " lon, source, requested_datetime, updated_datetime)"
        " SELECT 'cell-' || i, 'cell-' || i, 'cell-token-' || i, $1, p.lat, p.lon,"
        "  'citizen', $4::timestamptz - interval '1 hour', $4::timestamptz - interval '1 hour'"
        " FROM generate_series(0, 399) AS i,"
        "  LATERAL (SELECT $2 + (i / 20 + 0.5) / 20 / $5 AS lat,"
        "   $3 + (i % 20 + 0.5) / 20 / $5 AS lon) AS p",
        HERE.service_code,
        y,
        x,
        NOW,
        float(CELLS_PER_DEGREE),
    )
    assert (
        await pool.fetchval(
            f"SELECT count(DISTINCT {store.cell_sql()}) FROM requests WHERE service_request_id"
            " LIKE 'cell-%'"
        )
        == 1
    )
    near = await pool.fetchval(
        "SELECT count(*) FROM requests WHERE abs(lat - $1) < 20 * $3 AND abs(lon - $2) < 24 * $3",
        HERE.lat,
        HERE.lon,
        M,
    )
    assert near == 0
    plan = await look_up_plan(pool, intake, radius_m=5.0)
    scans = [n for n in plan_nodes(plan) if n.get("Relation Name") == "requests"]
    assert [n["Index Name"] for n in scans] == ["requests_roots_near"] * 2
    # None of the 400 was read and dropped: both searches found nothing to read.
    assert [n.get("Rows Removed by Filter", 0) for n in scans] == [0, 0]
    assert [n["Actual Rows"] for n in scans] == [0, 0]


async def test_the_cell_index_can_be_built_before_the_migration_runs(pool: Pool) -> None:
    """docs/operations.md, Upgrades: on a large city the index is built CONCURRENTLY first;
    the migration then finds it and only drops the old one."""
    sql = (MIGRATIONS / "0014_roots_near.sql").read_text("utf-8")
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(sql)  # already applied at start: built, old one dropped
    indexes = await pool.fetch(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'requests'"
        " AND indexname LIKE 'requests_roots_%'"
    )
    assert [r["indexname"] for r in indexes] == ["requests_roots_near"]
