"""Duplicates (并单) on the real PostgreSQL: a report near an open one of the same category
joins its work order (the outbox event says so), also within one group-commit batch, and
takes the order's status; the merged count shows in status_notes."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gridline.common.clock import ManualClock
from gridline.common.pg import Pool
from gridline.common.policy.catalogue import load_catalogue_text
from gridline.intake.adapters import store
from gridline.intake.domain.duplicates import METRES_PER_DEGREE
from gridline.intake.domain.status import RequestStatus, StatusChange
from gridline.intake.domain.submission import Accepted, Submission
from gridline.intake.handlers import Intake

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
CATALOGUE_YAML = (Path(__file__).resolve().parents[4] / "config" / "catalogue.yaml").read_text(
    "utf-8"
)
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
